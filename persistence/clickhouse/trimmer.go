package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/persistence"
)

// TrimmerConfig tunes a Trimmer.
type TrimmerConfig struct {
	// Retention is how long entries stay in the hot store after they were
	// appended. Entries older than that which the archive holds are deleted
	// from the hot store; history reads find them in the archive. Zero
	// disables trimming.
	Retention time.Duration
	// Interval is the time between trimming passes. Default 1 minute.
	Interval time.Duration
}

// trimSlack widens each pass's window back in time, for entries archived
// late (during an outage) after the previous pass looked.
const trimSlack = 30 * time.Minute

// Trimmer deletes archived entries older than the retention from the hot
// store. It asks the archive which timelines have entries past the
// retention, and moves a timeline's trim floor only past seqs the archive
// holds every one of (from seq 1 on): a timeline with entries from before
// archiving was turned on is left alone. The newest entry of a timeline is
// never deleted (the store keeps it so that its last seq stays known).
type Trimmer struct {
	cfg     TrimmerConfig
	db      *DB
	store   persistence.Trimmer
	log     *slog.Logger
	trimmed prometheus.Counter

	// since is the cutoff of the last complete pass: timelines with no
	// entry appended after it were handled then.
	since uint64

	worker
}

// NewTrimmer returns a trimmer of store; Start runs it.
func NewTrimmer(cfg TrimmerConfig, db *DB, store persistence.Trimmer, reg prometheus.Registerer, logger *slog.Logger) *Trimmer {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Trimmer{cfg: cfg, db: db, store: store, log: logger, worker: newWorker(),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_trimmed_timelines_total", Help: "Timelines whose archived old entries were deleted from the hot store."})}
	if reg != nil {
		reg.MustRegister(t.trimmed)
	}
	return t
}

// Start runs passes every Interval until Shutdown.
func (t *Trimmer) Start() {
	t.start(func(ctx context.Context) {
		tick := time.NewTicker(t.cfg.Interval)
		defer tick.Stop()
		for {
			if n, err := t.Pass(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("archive: trim pass failed", "err", err)
			} else if n > 0 {
				t.log.Debug("archive: trimmed", "timelines", n)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	})
}

// Shutdown stops the trimmer.
func (t *Trimmer) Shutdown(ctx context.Context) error {
	return t.shutdown(ctx)
}

// Pass trims every timeline with archived entries older than the
// retention, and returns how many it trimmed.
func (t *Trimmer) Pass(ctx context.Context) (int, error) {
	if t.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := uint64(time.Now().Add(-t.cfg.Retention).UnixMilli())
	// Within one timeline, seqs and append times grow together, so the
	// entries older than cutoff are seqs 1..max(seq); they are all archived
	// when there are max(seq) distinct ones.
	rs, err := t.db.conn.Query(ctx, `
		SELECT user_id, max(seq) AS top, uniqExact(seq) AS n
		FROM timeline
		WHERE at_ms < ? AND user_id IN (SELECT user_id FROM timeline WHERE at_ms >= ? AND at_ms < ?)
		GROUP BY user_id`, cutoff, t.since-min(t.since, uint64(trimSlack.Milliseconds())), cutoff)
	if err != nil {
		return 0, fmt.Errorf("clickhouse: trim candidates: %w", err)
	}
	type cand struct {
		user   string
		top, n uint64
	}
	var cands []cand
	for rs.Next() {
		var c cand
		if err := rs.Scan(&c.user, &c.top, &c.n); err != nil {
			_ = rs.Close()
			return 0, err
		}
		cands = append(cands, c)
	}
	err = rs.Err()
	_ = rs.Close()
	if err != nil {
		return 0, err
	}
	trimmed := 0
	for _, c := range cands {
		if c.n != c.top {
			t.log.Debug("archive: not trimming a timeline the archive does not hold from seq 1", "user", c.user, "max", c.top, "archived", c.n)
			continue
		}
		if _, err := t.store.TrimTimeline(ctx, c.user, c.top+1); err != nil {
			return trimmed, err
		}
		trimmed++
		t.trimmed.Inc()
	}
	t.since = cutoff
	return trimmed, nil
}
