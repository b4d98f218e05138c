package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"actorim/node"
	"actorim/persistence/clickhouse"
)

func bindArchiveFlags(fs *flag.FlagSet, c *node.Config, d node.Config) {
	a, da := &c.Archive, d.Archive
	fs.StringVar(&a.ClickHouse.Addr, "clickhouse", da.ClickHouse.Addr, "ClickHouse native protocol host:port of the message archive (empty: no archive, no outbox)")
	fs.StringVar(&a.ClickHouse.Database, "clickhouse-database", da.ClickHouse.Database, "ClickHouse database of the archive")
	fs.StringVar(&a.ClickHouse.Username, "clickhouse-user", da.ClickHouse.Username, "ClickHouse user")
	fs.StringVar(&a.ClickHouse.Password, "clickhouse-password", da.ClickHouse.Password, "ClickHouse password")
	fs.BoolVar(&a.Migrate, "clickhouse-migrate", da.Migrate, "apply the archive's schema at start (as imnode migrate does)")
	fs.IntVar(&a.BatchSize, "archive-batch", da.BatchSize, "timeline items per ClickHouse insert")
	fs.DurationVar(&a.HotRetention, "hot-retention", da.HotRetention, "with an archive: delete archived entries older than this from the hot store (0: keep everything)")
	fs.DurationVar(&a.TrimInterval, "trim-interval", da.TrimInterval, "time between passes that trim the hot store")
}

// runMigrate is `imnode migrate [flags]`: it applies the archive's schema
// and exits.
func runMigrate(args []string) error {
	cfg, logger, err := parseConfig(args)
	if err != nil {
		return err
	}
	if !cfg.Archive.Enabled() {
		return fmt.Errorf("migrate: no archive configured: give --clickhouse host:port")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	chCfg, err := cfg.Archive.ClickHouseConfig()
	if err != nil {
		return err
	}
	if err := clickhouse.Migrate(ctx, chCfg, logger); err != nil {
		return err
	}
	logger.Info("archive schema is up to date", "clickhouse", cfg.Archive.ClickHouse.Addr, "database", cfg.Archive.ClickHouse.Database)
	return nil
}
