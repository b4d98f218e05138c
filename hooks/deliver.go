package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/persistence"
)

// Queue is the part of persistence.HookQueue a Deliverer uses.
type Queue interface {
	EnqueueHooks(ctx context.Context, items ...persistence.HookItem) (int, error)
	ClaimHooks(ctx context.Context, c persistence.HookClaim) ([]persistence.HookItem, error)
	AckHook(ctx context.Context, id string) error
	RetryHook(ctx context.Context, id string, nextAtMs int64, lastErr string) error
	DeadLetterHook(ctx context.Context, id, lastErr string) error
	HookStats(ctx context.Context, nowMs int64) (persistence.HookStats, error)
}

// storeTimeout bounds a worker's store call; it runs even during Shutdown,
// so that an answered delivery is acked.
const storeTimeout = 5 * time.Second

// Deliverer delivers the queue's items to the apps' targets, at least
// once: background workers claim due items from the store (leased, so a
// crashed node's items are delivered by another after the lease), POST them
// signed, ack them on a 2xx, and otherwise retry them with exponential
// backoff until Config.MaxAttempts, then dead-letter them. No app holds
// more than Config.AppWorkers workers, and Enqueue only writes to the
// store: a slow or dead receiver never blocks it.
type Deliverer struct {
	q       Queue
	targets Targets
	client  *http.Client
	cfg     Config
	m       *deliverMetrics
	log     *slog.Logger

	work  chan persistence.HookItem
	wake  chan struct{} // an Enqueue or a finished delivery: claim now
	stop  chan struct{} // closed by Shutdown
	mu    sync.Mutex
	load  map[string]int // items in flight per app
	busy  int            // items in flight
	start sync.Once
	halt  sync.Once

	cancel  context.CancelFunc // ends in-flight requests
	running sync.WaitGroup
}

// NewDeliverer returns a Deliverer over q that finds targets with targets
// and posts with client (NewClient's when nil). Its metrics go to reg (nil:
// not registered). It delivers nothing until Start.
func NewDeliverer(q Queue, targets Targets, client *http.Client, reg prometheus.Registerer, cfg Config) *Deliverer {
	if client == nil {
		client = NewClient()
	}
	cfg = cfg.WithDefaults()
	return &Deliverer{
		q: q, targets: targets, client: client, cfg: cfg, m: newDeliverMetrics(reg), log: cfg.Logger,
		work: make(chan persistence.HookItem, cfg.Workers),
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
		load: map[string]int{},
	}
}

// Enqueue queues items durably (see persistence.HookQueue.EnqueueHooks)
// and wakes the workers. It never waits for a delivery.
func (d *Deliverer) Enqueue(ctx context.Context, items ...persistence.HookItem) error {
	if _, err := d.q.EnqueueHooks(ctx, items...); err != nil {
		return fmt.Errorf("hooks: enqueue: %w", err)
	}
	d.poke()
	return nil
}

func (d *Deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start starts the workers; they run until Shutdown (ctx's values are
// kept, its cancellation is not). A second Start does nothing.
func (d *Deliverer) Start(ctx context.Context) {
	d.start.Do(func() {
		run, cancel := context.WithCancel(context.WithoutCancel(ctx))
		d.cancel = cancel
		d.running.Add(2 + d.cfg.Workers)
		go d.dispatch(run)
		go d.stats(run)
		for range d.cfg.Workers {
			go d.worker(run)
		}
	})
}

// Shutdown stops claiming, lets the deliveries in flight finish until ctx
// ends, then cancels the rest (their items are retried: released at once,
// or after their lease if the release fails) and waits for the workers.
func (d *Deliverer) Shutdown(ctx context.Context) error {
	d.halt.Do(func() { close(d.stop) })
	d.start.Do(func() {}) // a Deliverer never started has nothing to stop
	if d.cancel == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { d.running.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return ctx.Err()
	}
}

// dispatch claims due items for free workers until Shutdown.
func (d *Deliverer) dispatch(ctx context.Context) {
	defer d.running.Done()
	defer close(d.work)
	timer := time.NewTimer(d.cfg.Poll)
	defer timer.Stop()
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		claimed, err := d.claim(ctx)
		if err != nil {
			d.log.Warn("webhooks: claim", "err", err)
		}
		if claimed > 0 {
			continue
		}
		timer.Reset(d.cfg.Poll)
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// claim takes as many due items as there are free workers and hands them
// out. An app at its share of workers is skipped, and no app gets more
// than its remaining share in one claim.
func (d *Deliverer) claim(ctx context.Context) (int, error) {
	d.mu.Lock()
	free := d.cfg.Workers - d.busy
	var skip []string
	most := 0
	for app, n := range d.load {
		if n >= d.cfg.AppWorkers {
			skip = append(skip, app)
		} else {
			most = max(most, n)
		}
	}
	d.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	items, err := d.q.ClaimHooks(ctx, persistence.HookClaim{
		NowMs: time.Now().UnixMilli(), LeaseMs: d.cfg.Lease.Milliseconds(),
		Limit: free, PerApp: d.cfg.AppWorkers - most, Skip: skip,
	})
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	for _, it := range items {
		d.load[it.App]++
		d.busy++
	}
	d.mu.Unlock()
	for _, it := range items {
		d.work <- it // never blocks: busy <= Workers = cap(work)
	}
	return len(items), nil
}

func (d *Deliverer) worker(ctx context.Context) {
	defer d.running.Done()
	for it := range d.work {
		d.deliver(ctx, it)
		d.mu.Lock()
		d.busy--
		if d.load[it.App]--; d.load[it.App] <= 0 {
			delete(d.load, it.App)
		}
		d.mu.Unlock()
		d.poke()
	}
}

// deliver makes one attempt at it and records the outcome in the store.
func (d *Deliverer) deliver(ctx context.Context, it persistence.HookItem) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	t, ok, err := d.targets.HookTarget(ctx, it.App)
	if err == nil && (!ok || !t.Wants(it.Event)) {
		// Nobody to tell: the app has no webhook or does not want the event.
		d.storeErr("ack", it, d.q.AckHook(sctx, it.ID))
		return
	}
	if err == nil {
		start := time.Now()
		var status int
		status, _, err = post(ctx, d.client, t, d.cfg.Timeout, it.ID, it.Event, it.Payload, 0)
		d.m.seconds.Observe(time.Since(start).Seconds())
		if err == nil && status >= 200 && status <= 299 {
			d.m.delivered.WithLabelValues(it.App, it.Event).Inc()
			d.storeErr("ack", it, d.q.AckHook(sctx, it.ID))
			return
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Shutdown cut the attempt short: it was no fault of the receiver's.
		d.storeErr("release", it, d.q.RetryHook(sctx, it.ID, time.Now().UnixMilli(), it.LastError))
		return
	}
	d.log.Debug("webhooks: delivery failed", "app", it.App, "event", it.Event, "id", it.ID, "attempt", it.Attempts, "err", err)
	if it.Attempts >= d.cfg.MaxAttempts {
		d.m.dead.WithLabelValues(it.App, it.Event).Inc()
		d.storeErr("dead-letter", it, d.q.DeadLetterHook(sctx, it.ID, err.Error()))
		return
	}
	d.m.failed.WithLabelValues(it.App, it.Event).Inc()
	next := time.Now().Add(Backoff(it.Attempts, d.cfg.MinBackoff, d.cfg.MaxBackoff))
	d.storeErr("retry", it, d.q.RetryHook(sctx, it.ID, next.UnixMilli(), err.Error()))
}

// storeErr logs a failed store call; the item's lease brings it back.
func (d *Deliverer) storeErr(op string, it persistence.HookItem, err error) {
	if err != nil {
		d.log.Warn("webhooks: "+op, "app", it.App, "id", it.ID, "err", err)
	}
}

// Backoff is the wait after the attempt-th failed attempt (1-based): a
// random duration in [b/2, b], b = lo*2^(attempt-1) capped at hi. The
// jitter spreads the retries of items that failed together.
//
// It is a function of the attempt because the attempt count lives in the
// store, not in a retry loop's memory (which is what backoff libraries
// such as cenkalti/backoff keep their state in).
func Backoff(attempt int, lo, hi time.Duration) time.Duration {
	b := hi
	attempt = max(attempt, 1)
	if attempt <= 62 {
		if v := lo << (attempt - 1); v > 0 && v < hi {
			b = v
		}
	}
	half := b / 2
	return half + rand.N(b-half+1)
}

// stats refreshes the queue gauges until Shutdown.
func (d *Deliverer) stats(ctx context.Context) {
	defer d.running.Done()
	tick := time.NewTicker(d.cfg.StatsEvery)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		st, err := d.q.HookStats(sctx, time.Now().UnixMilli())
		cancel()
		if err == nil {
			d.m.queue.WithLabelValues("queued").Set(float64(st.Queued))
			d.m.queue.WithLabelValues("due").Set(float64(st.Due))
			d.m.queue.WithLabelValues("dead").Set(float64(st.Dead))
		} else if ctx.Err() == nil {
			d.log.Warn("webhooks: queue stats", "err", err)
		}
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
	}
}
