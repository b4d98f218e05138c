package hooks

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"actorim/persistence"
	"actorim/persistence/embedded"
)

// fast retries and polls, so that tests take milliseconds.
var fastConfig = Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Poll: 20 * time.Millisecond, StatsEvery: 20 * time.Millisecond}

func openStore(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startDeliverer starts a Deliverer, shut down when the test ends.
func startDeliverer(t *testing.T, q Queue, targets Targets, reg prometheus.Registerer, cfg Config) *Deliverer {
	t.Helper()
	d := NewDeliverer(q, targets, nil, reg, cfg)
	d.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

func stored(app string, id uint64) persistence.HookItem {
	m := textMessage("alice", "bob", fmt.Sprint("c", id), "hi")
	m.Id, m.SentAtMs = id, uint64(time.Now().UnixMilli())
	return MessageStored(app, m)
}

func TestDeliverRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	s := openStore(t, t.TempDir())
	reg := prometheus.NewRegistry()
	d := startDeliverer(t, s, StaticTargets{"default": rc.target()}, reg, fastConfig)
	if err := d.Enqueue(context.Background(), stored("default", 7)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "delivered", func() bool {
		st, _ := s.HookStats(context.Background(), time.Now().UnixMilli())
		return st.Queued == 0
	})
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.id != "msg-default-7" || r.event != EventMessageStored || r.sigErr != nil || string(r.body) != string(reqs[0].body) {
			t.Fatalf("request %+v", r)
		}
	}
	if n := testutil.ToFloat64(d.m.failed.WithLabelValues("default", EventMessageStored)); n != 2 {
		t.Fatalf("failed counter %v", n)
	}
	if n := testutil.ToFloat64(d.m.delivered.WithLabelValues("default", EventMessageStored)); n != 1 {
		t.Fatalf("delivered counter %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "actorim_webhook_delivered_total", "actorim_webhook_queue_items"); err != nil || n < 2 {
		t.Fatalf("registered metrics: %d, %v", n, err)
	}
}

func TestDeliverDeadLetter(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	s := openStore(t, t.TempDir())
	cfg := fastConfig
	cfg.MaxAttempts = 3
	d := startDeliverer(t, s, StaticTargets{"default": rc.target()}, nil, cfg)
	if err := d.Enqueue(context.Background(), stored("default", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "dead-lettered", func() bool {
		st, _ := s.HookStats(context.Background(), time.Now().UnixMilli())
		return st.Dead == 1 && st.Queued == 0
	})
	dead, err := s.DeadHooks(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].ID != "msg-default-1" || dead[0].LastError != "status 500" || dead[0].Attempts != 3 {
		t.Fatalf("dead %+v, %v", dead, err)
	}
	if n := len(rc.requests()); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
	if n := testutil.ToFloat64(d.m.dead.WithLabelValues("default", EventMessageStored)); n != 1 {
		t.Fatalf("dead counter %v", n)
	}
	eventually(t, 2*time.Second, "dead gauge", func() bool { return testutil.ToFloat64(d.m.queue.WithLabelValues("dead")) == 1 })
}

func TestDeliverDedupByID(t *testing.T) {
	rc := newReceiver(t, ok)
	s := openStore(t, t.TempDir())
	d := startDeliverer(t, s, StaticTargets{"default": rc.target()}, nil, fastConfig)
	ctx := context.Background()
	if err := d.Enqueue(ctx, stored("default", 5), stored("default", 5)); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(ctx, stored("default", 5)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "delivered", func() bool { return len(rc.requests()) >= 1 })
	// Enqueued again after its delivery: still once.
	if err := d.Enqueue(ctx, stored("default", 5), stored("default", 6)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "second delivered", func() bool { return len(rc.requests()) >= 2 })
	time.Sleep(100 * time.Millisecond)
	reqs := rc.requests()
	if len(reqs) != 2 || reqs[0].id != "msg-default-5" || reqs[1].id != "msg-default-6" {
		t.Fatalf("receiver got %d requests: %v", len(reqs), reqs)
	}
}

// TestDeliverAfterCrash: a node dies with an item in flight (its receiver
// never answered, its store is closed under it); the store reopened by a
// new Deliverer delivers the item once the lease has passed.
func TestDeliverAfterCrash(t *testing.T) {
	hung := make(chan struct{})
	stuck := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	})
	defer close(hung)
	good := newReceiver(t, ok)
	dir := t.TempDir()
	s1, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig
	cfg.Lease, cfg.Timeout = 400*time.Millisecond, 150*time.Millisecond
	a := NewDeliverer(s1, StaticTargets{"default": stuck.target()}, nil, nil, cfg)
	a.Start(context.Background())
	if err := a.Enqueue(context.Background(), stored("default", 9)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("first node never sent the item")
	}
	// The crash: the store goes away under the worker, which can neither
	// ack nor release the item.
	claimedAt := time.Now()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = a.Shutdown(ctx)

	s2 := openStore(t, dir)
	startDeliverer(t, s2, StaticTargets{"default": good.target()}, nil, fastConfig)
	var r received
	select {
	case r = <-good.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the item was never delivered after the crash")
	}
	if r.id != "msg-default-9" || r.sigErr != nil {
		t.Fatalf("delivered %+v", r)
	}
	if since := time.Since(claimedAt); since < 300*time.Millisecond {
		t.Fatalf("delivered again %v after the claim, inside its lease", since)
	}
	eventually(t, 5*time.Second, "acked", func() bool {
		st, _ := s2.HookStats(context.Background(), time.Now().UnixMilli())
		return st.Queued == 0
	})
}

// TestDeliverSlowAppDoesNotStarveOthers: an app whose receiver hangs holds
// at most its share of the workers; another app's items go through, and
// Enqueue stays fast.
func TestDeliverSlowAppDoesNotStarveOthers(t *testing.T) {
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	slow := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var once sync.Once
	defer once.Do(func() { close(release) })
	fast := newReceiver(t, ok)
	s := openStore(t, t.TempDir())
	cfg := fastConfig
	cfg.Workers, cfg.AppWorkers = 8, 2
	d := startDeliverer(t, s, StaticTargets{"slow": slow.target(), "fast": fast.target()}, nil, cfg)
	ctx := context.Background()
	for i := range 20 {
		if err := d.Enqueue(ctx, stored("slow", uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "slow app's share busy", func() bool { return inFlight.Load() == 2 })
	start := time.Now()
	for i := range 30 {
		if err := d.Enqueue(ctx, stored("fast", uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("30 Enqueues took %v with a hung receiver", took)
	}
	eventually(t, 5*time.Second, "fast app delivered", func() bool { return len(fast.requests()) == 30 })
	if m := most.Load(); m > 2 {
		t.Fatalf("the slow app held %d workers at once, its share is 2", m)
	}
	once.Do(func() { close(release) })
	eventually(t, 10*time.Second, "slow app delivered", func() bool {
		st, _ := s.HookStats(ctx, time.Now().UnixMilli())
		return st.Queued == 0
	})
}

func TestDeliverSkipsUnsubscribed(t *testing.T) {
	rc := newReceiver(t, ok)
	s := openStore(t, t.TempDir())
	target := rc.target()
	target.Events = []string{EventUserOnline}
	d := startDeliverer(t, s, StaticTargets{"default": target}, nil, fastConfig)
	ctx := context.Background()
	if err := d.Enqueue(ctx, stored("default", 1), UserOnline("default", PresenceData{User: "alice"}, 1), stored("nobody", 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "queue empty", func() bool {
		st, _ := s.HookStats(ctx, time.Now().UnixMilli())
		return st.Queued == 0
	})
	if reqs := rc.requests(); len(reqs) != 1 || reqs[0].event != EventUserOnline {
		t.Fatalf("requests %v", reqs)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 10: 512 * time.Second, 11: 10 * time.Minute, 100: 10 * time.Minute} {
		for range 50 {
			if got := Backoff(attempt, time.Second, 10*time.Minute); got < want/2 || got > want {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}
