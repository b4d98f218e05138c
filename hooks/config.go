package hooks

import (
	"log/slog"
	"time"
)

// Config tunes a Caller and a Deliverer. The zero value is ready to use:
// every zero field means the default written beside it.
type Config struct {
	// Workers is how many deliveries run at once. Zero means 32.
	Workers int
	// AppWorkers caps the deliveries of one app at once, so that one slow
	// or dead receiver never holds every worker. Zero means Workers/4 (at
	// least 1).
	AppWorkers int
	// MaxAttempts is how many deliveries of an item fail before it is
	// dead-lettered. Zero means 12.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: the n-th
	// retry waits a random time up to MinBackoff*2^(n-1), at least half of
	// it, and never more than MaxBackoff. Zero means 1 s and 10 min.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one delivery request when its Target sets none. Zero
	// means 10 s.
	Timeout time.Duration
	// BeforeSendTimeout bounds a before-send call when its Target sets no
	// Timeout. Zero means 2 s.
	BeforeSendTimeout time.Duration
	// Lease is how long a claimed item stays hidden from other workers and
	// nodes; after it, a crashed worker's items are delivered again. Zero
	// means 30 s; it is raised to twice the longest request timeout.
	Lease time.Duration
	// Poll is how often idle workers look for due items that no Enqueue on
	// this node announced (retries, other nodes' items). Zero means 1 s.
	Poll time.Duration
	// StatsEvery is how often the queue gauges are refreshed. Zero means 15 s.
	StatsEvery time.Duration
	// MaxResponseBytes bounds the before-send response read. Zero means 1 MiB.
	MaxResponseBytes int64
	// BeforeSendConns caps the connections a Caller keeps to one receiver
	// for before-send calls (when NewCaller chose the client); calls beyond
	// wait for one. Each sending connection actor can have a call in
	// flight, so a cap below the senders at once makes calls queue for a
	// connection while the CPU idles: with 1,000 senders in imbench a cap
	// of 256 cost a quarter of the throughput. Zero means 1024.
	BeforeSendConns int
	// Logger receives delivery failures at debug level and store errors at
	// warn level. Nil discards them.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.AppWorkers <= 0 {
		c.AppWorkers = max(c.Workers/4, 1)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 12
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.BeforeSendTimeout <= 0 {
		c.BeforeSendTimeout = 2 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	c.Lease = max(c.Lease, 2*c.Timeout)
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.StatsEvery <= 0 {
		c.StatsEvery = 15 * time.Second
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 1 << 20
	}
	if c.BeforeSendConns <= 0 {
		c.BeforeSendConns = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
