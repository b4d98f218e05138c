package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"actorim/persistence"
	"actorim/persistence/embedded"
)

// Store backends.
const (
	StoreEmbedded = "embedded"
	StoreRedis    = "redis"
)

// StoreConfig selects and configures the hot store.
type StoreConfig struct {
	// Backend is "embedded" (default: Pebble in DataDir, single node) or
	// "redis" (shared by every node of a cluster).
	Backend string
	// Redis configures the redis backend.
	Redis RedisConfig
}

// RedisConfig locates the Redis primary.
type RedisConfig struct {
	// Addr is host:port. Default "127.0.0.1:6379".
	Addr string
	// Username and Password authenticate (Redis ACL user). Default: the
	// default user, no password.
	Username, Password string
	// TLS connects over TLS. Default: plain TCP.
	TLS ClientTLS
	// DB is the database number. Default 0.
	DB int
	// Prefix namespaces every key. Default "actorim:".
	Prefix string
}

// hotStore is what a node opens: the store its grains use (persistence.Store,
// which actors takes), the outbox its archive drains and the trimming that
// sheds what the archive holds. Both backends are all of it.
type hotStore interface {
	persistence.Store
	persistence.Outbox
	persistence.Trimmer
	persistence.HookQueue
}

func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (hotStore, error) {
	switch cfg.Store.Backend {
	case "", StoreEmbedded:
		if cfg.clustered() {
			return nil, fmt.Errorf("node: a cluster needs a shared store: --store redis")
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("node: data dir: %w", err)
		}
		st, err := embedded.Open(filepath.Join(cfg.DataDir, "store"), embedded.Options{Logger: logger, Outbox: cfg.Archive.Enabled()})
		if err != nil {
			return nil, fmt.Errorf("node: open store: %w", err)
		}
		return st, nil
	case StoreRedis:
		return openRedis(ctx, cfg.Store.Redis, cfg.Archive.Enabled(), logger)
	}
	return nil, fmt.Errorf("node: unknown store %q (want embedded or redis)", cfg.Store.Backend)
}
