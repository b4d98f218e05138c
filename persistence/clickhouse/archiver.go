package clickhouse

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/persistence"
)

// ArchiverConfig tunes an Archiver. Zero values are the defaults.
type ArchiverConfig struct {
	// BatchSize is how many outbox items one insert carries. Default 20000.
	// It bounds the archiver's memory: one batch is held at a time.
	BatchSize int
	// Idle is how long the archiver waits when the outbox is empty before
	// looking again. Default 100ms.
	Idle time.Duration
	// RetryMin and RetryMax bound the backoff while ClickHouse fails.
	// Defaults 200ms and 10s.
	RetryMin, RetryMax time.Duration
	// Owner names this archiver in the store's lease (the node's address).
	Owner string
	// LeaseTTL is how long a lease held by a node that stopped renewing it
	// keeps other nodes from archiving. Default 10s.
	LeaseTTL time.Duration
}

func (c *ArchiverConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 20000
	}
	if c.Idle <= 0 {
		c.Idle = 100 * time.Millisecond
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 200 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.Owner == "" {
		c.Owner = "archiver"
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
}

// Archiver copies the store's outbox into ClickHouse: it reads a batch of
// items, inserts them, and only once ClickHouse has acknowledged the inserts
// confirms (deletes) them in the store. A crash or an outage at any point
// leaves the items in the outbox, to be inserted again: delivery is at least
// once, and the tables' ReplacingMergeTree keys plus query-time dedup make
// the copies harmless.
//
// In a cluster the nodes share one outbox; a lease in the store lets one node
// archive at a time, and the others take over when it stops renewing it.
type Archiver struct {
	cfg     ArchiverConfig
	db      *DB
	outbox  persistence.Outbox
	log     *slog.Logger
	metrics *archiverMetrics

	// oldestMs is the append time of the oldest unconfirmed item this
	// archiver knows of, 0 when the outbox was empty at last look.
	oldestMs atomic.Uint64
	backlog  atomic.Int64
	// archivedN counts confirmed items, as the archived metric does.
	archivedN atomic.Uint64

	worker
}

type archiverMetrics struct {
	archived   prometheus.Counter
	positions  prometheus.Counter
	batches    prometheus.Counter
	errors     prometheus.Counter
	insertSecs prometheus.Histogram
}

// NewArchiver returns an archiver of outbox into db; Start runs it. Its
// metrics are registered with reg when reg is not nil.
func NewArchiver(cfg ArchiverConfig, db *DB, outbox persistence.Outbox, reg prometheus.Registerer, logger *slog.Logger) *Archiver {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Archiver{cfg: cfg, db: db, outbox: outbox, log: logger,
		worker: newWorker()}
	a.metrics = &archiverMetrics{
		archived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_messages_total", Help: "Timeline items (messages and events) inserted into ClickHouse and confirmed."}),
		positions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_timeline_rows_total", Help: "Timeline positions (one per recipient of an item) inserted into ClickHouse."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_batches_total", Help: "Batches inserted into ClickHouse."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_errors_total", Help: "Failed attempts to archive a batch (retried)."}),
		insertSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "actorim_archive_insert_seconds", Help: "Time to insert one batch into ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(a.metrics.archived, a.metrics.positions, a.metrics.batches, a.metrics.errors, a.metrics.insertSecs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "actorim_archive_lag_seconds",
				Help: "Age of the oldest timeline item not yet confirmed in ClickHouse (0 when all are)."},
				func() float64 { return a.Lag().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "actorim_archive_backlog_items", Help: "Outbox items waiting to be archived, at last look."},
				func() float64 { return float64(a.backlog.Load()) }),
		)
	}
	return a
}

// Lag is the age of the oldest item not yet confirmed, 0 when none is known.
func (a *Archiver) Lag() time.Duration {
	ms := a.oldestMs.Load()
	if ms == 0 {
		return 0
	}
	return max(time.Since(time.UnixMilli(int64(ms))), 0)
}

// Archived returns how many items this archiver has confirmed.
func (a *Archiver) Archived() uint64 {
	return a.archivedN.Load()
}

// Start runs the archiver until Shutdown.
func (a *Archiver) Start() {
	a.start(a.run)
}

// Shutdown stops the archiver, waiting for the batch in flight (bounded by ctx).
func (a *Archiver) Shutdown(ctx context.Context) error {
	return a.shutdown(ctx)
}

func (a *Archiver) run(ctx context.Context) {
	var r rows
	delay := a.cfg.RetryMin
	var leaseAt time.Time
	holding := false
	lastBacklog := time.Time{}
	for ctx.Err() == nil {
		if time.Since(leaseAt) > a.cfg.LeaseTTL/3 {
			ok, err := a.outbox.AcquireOutbox(ctx, a.cfg.Owner, a.cfg.LeaseTTL.Milliseconds())
			if err != nil {
				a.log.Warn("archive: lease", "err", err)
			}
			if ok != holding {
				a.log.Info("archive: lease changed", "holding", ok, "owner", a.cfg.Owner)
			}
			holding, leaseAt = ok && err == nil, time.Now()
		}
		if !holding {
			a.oldestMs.Store(0) // another node archives; its lag is its own
			a.sleep(ctx, a.cfg.LeaseTTL/3)
			continue
		}
		if time.Since(lastBacklog) > time.Second {
			if n, _, err := a.outbox.OutboxBacklog(ctx); err == nil {
				a.backlog.Store(n)
			}
			lastBacklog = time.Now()
		}
		items, err := a.outbox.ReadOutbox(ctx, a.cfg.BatchSize)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("archive: read outbox", "err", err)
			}
			a.sleep(ctx, delay)
			continue
		}
		if len(items) == 0 {
			a.oldestMs.Store(0)
			a.backlog.Store(0)
			a.sleep(ctx, a.cfg.Idle)
			continue
		}
		a.oldestMs.Store(items[0].AtMs)
		r.reset()
		for i := range items {
			r.add(&items[i])
		}
		for ctx.Err() == nil {
			start := time.Now()
			err := a.db.insert(ctx, &r)
			if err == nil {
				a.metrics.insertSecs.Observe(time.Since(start).Seconds())
				break
			}
			a.metrics.errors.Inc()
			if ctx.Err() == nil {
				a.log.Warn("archive: insert failed; retrying", "items", len(items), "retry_in", delay, "err", err)
			}
			a.sleep(ctx, delay)
			delay = min(delay*2, a.cfg.RetryMax)
		}
		if ctx.Err() != nil {
			return
		}
		delay = a.cfg.RetryMin
		last := items[len(items)-1].ID
		for {
			err := a.outbox.ConfirmOutbox(ctx, last)
			if err == nil || ctx.Err() != nil {
				break
			}
			a.log.Warn("archive: confirm", "err", err)
			a.sleep(ctx, a.cfg.RetryMin)
		}
		a.metrics.batches.Inc()
		a.metrics.archived.Add(float64(len(items)))
		a.archivedN.Add(uint64(len(items)))
		a.metrics.positions.Add(float64(len(r.t.user)))
		if len(items) < a.cfg.BatchSize {
			a.oldestMs.Store(0)
		}
	}
}

func (a *Archiver) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Drain archives until the outbox is empty or ctx ends; for tests and
// tools. It returns the number of items it confirmed.
func (a *Archiver) Drain(ctx context.Context) (int, error) {
	var r rows
	total := 0
	for {
		items, err := a.outbox.ReadOutbox(ctx, a.cfg.BatchSize)
		if err != nil || len(items) == 0 {
			return total, err
		}
		r.reset()
		for i := range items {
			r.add(&items[i])
		}
		if err := a.db.insert(ctx, &r); err != nil {
			return total, err
		}
		if err := a.outbox.ConfirmOutbox(ctx, items[len(items)-1].ID); err != nil {
			return total, err
		}
		total += len(items)
	}
}
