package node

import (
	"actorim/persistence/clickhouse"
	redisstore "actorim/persistence/redis"
)

// WithDefaults returns c with every zero field that has a default set to
// it, its own and those of the configurations it holds (store, archive,
// cluster, actors, gateway, media): the values a node started with c runs with.
// cmd/imnode takes its flags' defaults from it, so that each default is
// written once, in the package that applies it.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	c.Store = c.Store.WithDefaults()
	c.Archive = c.Archive.WithDefaults()
	c.Cluster = c.Cluster.WithDefaults()
	c.Actors = c.Actors.WithDefaults()
	c.Gateway = c.Gateway.WithDefaults()
	c.Media = c.Media.WithDefaults()
	return c
}

// WithDefaults returns c with its backend and Redis defaults set.
func (c StoreConfig) WithDefaults() StoreConfig {
	if c.Backend == "" {
		c.Backend = StoreEmbedded
	}
	c.Redis = c.Redis.WithDefaults()
	return c
}

// WithDefaults returns c with the Redis store's defaults set.
func (c RedisConfig) WithDefaults() RedisConfig {
	o := redisstore.Options{Addr: c.Addr, Prefix: c.Prefix}.WithDefaults()
	c.Addr, c.Prefix = o.Addr, o.Prefix
	return c
}

// WithDefaults returns c with the defaults of the ClickHouse connection,
// archiver and trimmer set. ClickHouse.Addr stays empty (no archive) unless
// given.
func (c ArchiveConfig) WithDefaults() ArchiveConfig {
	c.ClickHouse = c.ClickHouse.WithDefaults()
	c.BatchSize = clickhouse.ArchiverConfig{BatchSize: c.BatchSize}.WithDefaults().BatchSize
	c.TrimInterval = clickhouse.TrimmerConfig{Interval: c.TrimInterval}.WithDefaults().Interval
	return c
}
