package node

import (
	"context"
	"fmt"
	"log/slog"

	redisstore "actorim/persistence/redis"
)

func openRedis(ctx context.Context, cfg RedisConfig, outbox bool, logger *slog.Logger) (hotStore, error) {
	tlsCfg, err := cfg.TLS.config(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("node: redis: %w", err)
	}
	st, err := redisstore.Open(ctx, redisstore.Options{
		Addr: cfg.Addr, Username: cfg.Username, Password: cfg.Password, TLSConfig: tlsCfg,
		DB: cfg.DB, Prefix: cfg.Prefix, Logger: logger, Outbox: outbox,
	})
	if err != nil {
		return nil, fmt.Errorf("node: open redis store: %w", err)
	}
	return st, nil
}
