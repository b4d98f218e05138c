package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"actorim/persistence"
)

// HookStore is what the HookQueue suite runs over.
type HookStore interface {
	persistence.HookQueue
	io.Closer
}

// HookQueue is the conformance suite of persistence.HookQueue.
func HookQueue(t *testing.T, open func(t *testing.T) HookStore, known ...Known) {
	runSuite(t, open, known, []test[HookStore]{
		{"ClaimDueInOrder", testHookClaimOrder},
		{"AckRemoves", testHookAck},
		{"Dedup", testHookDedup},
		{"LeaseExpiry", testHookLease},
		{"Retry", testHookRetry},
		{"DeadLetter", testHookDead},
		{"DeadListCapped", testHookDeadCap},
		{"UnknownIDsIgnored", testHookUnknown},
		{"BadItems", testHookBad},
		{"AppsTakeTurns", testHookFair},
		{"ConcurrentClaimsOnce", testHookConcurrent},
		{"CanceledContext", func(t *testing.T, s HookStore) { checkCanceled(t, hookCalls(s)) }},
		{"Closed", func(t *testing.T, s HookStore) { checkClosed(t, s, hookCalls(s)) }},
	})
}

// HookDurability checks that queued items, claims and dedup records outlive
// a Close. reopen opens the same store each time it is called.
func HookDurability(t *testing.T, reopen func(t *testing.T) HookStore) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	s := reopen(t)
	enqueue(t, s, 3, hook("d1", "app", now), hook("d2", "app", now+1), hook("d3", "app", now+2))
	got := claim(t, s, persistence.HookClaim{NowMs: now + 10, LeaseMs: 60_000, Limit: 1})
	if len(got) != 1 || got[0].ID != "d1" {
		t.Fatalf("claimed %v, want d1", hookIDs(got))
	}
	if err := s.AckHook(ctx, "d2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t)
	if st := stats(t, s, now+10); st.Queued != 2 || st.Due != 1 {
		t.Fatalf("after reopen: %+v, want 2 queued, 1 due", st)
	}
	enqueue(t, s, 0, hook("d2", "app", now))
	got = claim(t, s, persistence.HookClaim{NowMs: now + 60_010, LeaseMs: 1000, Limit: 10})
	if !slices.Equal(hookIDs(got), []string{"d3", "d1"}) || got[1].Attempts != 2 {
		t.Fatalf("after reopen claimed %v (%+v), want d3 then d1 on its second attempt", hookIDs(got), got)
	}
}

func hook(id, app string, nextAtMs int64) persistence.HookItem {
	return persistence.HookItem{
		ID: id, App: app, Event: "message.stored", NextAtMs: nextAtMs,
		Payload: []byte(`{"v":1,"id":"` + id + `"}`),
	}
}

func enqueue(t *testing.T, s persistence.HookQueue, want int, items ...persistence.HookItem) {
	t.Helper()
	n, err := s.EnqueueHooks(context.Background(), items...)
	if err != nil || n != want {
		t.Fatalf("EnqueueHooks(%v) = %d, %v; want %d queued", hookIDs(items), n, err, want)
	}
}

func claim(t *testing.T, s persistence.HookQueue, c persistence.HookClaim) []persistence.HookItem {
	t.Helper()
	items, err := s.ClaimHooks(context.Background(), c)
	if err != nil {
		t.Fatalf("ClaimHooks(%+v): %v", c, err)
	}
	return items
}

func stats(t *testing.T, s persistence.HookQueue, nowMs int64) persistence.HookStats {
	t.Helper()
	st, err := s.HookStats(context.Background(), nowMs)
	if err != nil {
		t.Fatalf("HookStats: %v", err)
	}
	return st
}

func hookIDs(items []persistence.HookItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func testHookClaimOrder(t *testing.T, s HookStore) {
	now := time.Now().UnixMilli()
	enqueue(t, s, 4, hook("c", "app", now-10), hook("a", "app", now-30), hook("later", "app", now+5000), hook("b", "app", now-20))
	if st := stats(t, s, now); st != (persistence.HookStats{Queued: 4, Due: 3}) {
		t.Fatalf("stats %+v", st)
	}
	got := claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 30_000, Limit: 10})
	if !slices.Equal(hookIDs(got), []string{"a", "b", "c"}) {
		t.Fatalf("claimed %v, want a b c", hookIDs(got))
	}
	for _, it := range got {
		if it.Attempts != 1 || it.NextAtMs != now+30_000 || it.App != "app" || it.Event != "message.stored" ||
			string(it.Payload) != `{"v":1,"id":"`+it.ID+`"}` || it.CreatedAtMs < now-60_000 || it.CreatedAtMs > now+60_000 {
			t.Fatalf("claimed item %+v", it)
		}
	}
	if st := stats(t, s, now); st.Due != 0 || st.Queued != 4 {
		t.Fatalf("leased items still due: %+v", st)
	}
	if got := claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 30_000, Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed leased items %v", hookIDs(got))
	}
}

func testHookAck(t *testing.T, s HookStore) {
	now := time.Now().UnixMilli()
	enqueue(t, s, 2, hook("x", "app", now), hook("y", "app", now))
	got := claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 1, Limit: 10})
	if len(got) != 2 {
		t.Fatalf("claimed %v", hookIDs(got))
	}
	if err := s.AckHook(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s, now+10); st != (persistence.HookStats{Queued: 1, Due: 1}) {
		t.Fatalf("stats after ack %+v", st)
	}
	if got := claim(t, s, persistence.HookClaim{NowMs: now + 10, LeaseMs: 1, Limit: 10}); !slices.Equal(hookIDs(got), []string{"y"}) {
		t.Fatalf("claimed %v after ack, want y", hookIDs(got))
	}
}

func testHookDedup(t *testing.T, s HookStore) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	enqueue(t, s, 2, hook("a", "app", now), hook("b", "app", now), hook("a", "app", now))
	enqueue(t, s, 1, hook("a", "app", now), hook("c", "app", now))
	if err := s.AckHook(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeadLetterHook(ctx, "b", "gone"); err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, 0, hook("a", "app", now), hook("b", "other", now))
	if st := stats(t, s, now); st != (persistence.HookStats{Queued: 1, Due: 1, Dead: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func testHookLease(t *testing.T, s HookStore) {
	now := time.Now().UnixMilli()
	enqueue(t, s, 1, hook("l", "app", now))
	if got := claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 100, Limit: 1}); len(got) != 1 {
		t.Fatalf("first claim %v", hookIDs(got))
	}
	if got := claim(t, s, persistence.HookClaim{NowMs: now + 99, LeaseMs: 100, Limit: 1}); len(got) != 0 {
		t.Fatalf("claimed within the lease: %v", hookIDs(got))
	}
	got := claim(t, s, persistence.HookClaim{NowMs: now + 100, LeaseMs: 100, Limit: 1})
	if len(got) != 1 || got[0].Attempts != 2 || got[0].NextAtMs != now+200 {
		t.Fatalf("after the lease claimed %+v, want l on attempt 2", got)
	}
}

func testHookRetry(t *testing.T, s HookStore) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	enqueue(t, s, 1, hook("r", "app", now))
	claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 10_000, Limit: 1})
	if err := s.RetryHook(ctx, "r", now+1000, "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, persistence.HookClaim{NowMs: now + 999, LeaseMs: 10_000, Limit: 1}); len(got) != 0 {
		t.Fatalf("claimed before its retry time: %v", hookIDs(got))
	}
	got := claim(t, s, persistence.HookClaim{NowMs: now + 1000, LeaseMs: 10_000, Limit: 1})
	if len(got) != 1 || got[0].LastError != "503 Service Unavailable" || got[0].Attempts != 2 {
		t.Fatalf("retry claimed %+v", got)
	}
}

func testHookDead(t *testing.T, s HookStore) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	enqueue(t, s, 3, hook("d1", "app", now), hook("d2", "app", now), hook("ok", "app", now))
	claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 10, Limit: 10})
	for _, id := range []string{"d1", "d2"} {
		if err := s.DeadLetterHook(ctx, id, "timeout "+id); err != nil {
			t.Fatal(err)
		}
	}
	if st := stats(t, s, now+10); st != (persistence.HookStats{Queued: 1, Due: 1, Dead: 2}) {
		t.Fatalf("stats %+v", st)
	}
	dead, err := s.DeadHooks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hookIDs(dead), []string{"d2", "d1"}) || dead[0].LastError != "timeout d2" || dead[0].App != "app" ||
		dead[0].Attempts != 1 || string(dead[0].Payload) != `{"v":1,"id":"d2"}` {
		t.Fatalf("dead %+v", dead)
	}
	if dead, err := s.DeadHooks(ctx, 1); err != nil || len(dead) != 1 {
		t.Fatalf("DeadHooks(1) = %v, %v", hookIDs(dead), err)
	}
	if got := claim(t, s, persistence.HookClaim{NowMs: now + 10, LeaseMs: 10, Limit: 10}); !slices.Equal(hookIDs(got), []string{"ok"}) {
		t.Fatalf("claimed %v, want only ok", hookIDs(got))
	}
}

func testHookDeadCap(t *testing.T, s HookStore) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	now := time.Now().UnixMilli()
	var items []persistence.HookItem
	for i := range persistence.HookDeadCap + 2 {
		items = append(items, hook(fmt.Sprint("d", i), "app", now))
	}
	enqueue(t, s, len(items), items...)
	// The first ones concurrently, which lets a backend share its writes;
	// the last two in order.
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < persistence.HookDeadCap; i += 32 {
				if err := s.DeadLetterHook(ctx, items[i].ID, "x"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, it := range items[persistence.HookDeadCap:] {
		if err := s.DeadLetterHook(ctx, it.ID, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if st := stats(t, s, now); st != (persistence.HookStats{Dead: persistence.HookDeadCap}) {
		t.Fatalf("stats %+v, want %d dead", st, persistence.HookDeadCap)
	}
	dead, err := s.DeadHooks(ctx, persistence.HookDeadCap+10)
	if err != nil || len(dead) != persistence.HookDeadCap {
		t.Fatalf("DeadHooks = %d items, %v", len(dead), err)
	}
	if dead[0].ID != fmt.Sprint("d", persistence.HookDeadCap+1) || dead[1].ID != fmt.Sprint("d", persistence.HookDeadCap) {
		t.Fatalf("dead list starts %s, %s, want the newest first", dead[0].ID, dead[1].ID)
	}
}

func testHookUnknown(t *testing.T, s HookStore) {
	ctx := context.Background()
	for name, err := range map[string]error{
		"AckHook":        s.AckHook(ctx, "nope"),
		"RetryHook":      s.RetryHook(ctx, "nope", 1, "x"),
		"DeadLetterHook": s.DeadLetterHook(ctx, "nope", "x"),
	} {
		if err != nil {
			t.Errorf("%s of an unknown id: %v", name, err)
		}
	}
	if st := stats(t, s, time.Now().UnixMilli()); st != (persistence.HookStats{}) {
		t.Fatalf("stats %+v", st)
	}
}

func testHookBad(t *testing.T, s HookStore) {
	for _, it := range []persistence.HookItem{
		{ID: "", App: "app"},
		{ID: "x", App: ""},
		{ID: "x", App: "a/b"},
		{ID: string(make([]byte, 513)), App: "app"},
	} {
		if _, err := s.EnqueueHooks(context.Background(), hook("fine", "app", 1), it); !errors.Is(err, persistence.ErrBadHook) {
			t.Errorf("EnqueueHooks(%q, %q) = %v, want ErrBadHook", it.ID, it.App, err)
		}
	}
	if st := stats(t, s, time.Now().UnixMilli()); st.Queued != 0 {
		t.Fatalf("a refused call queued items: %+v", st)
	}
}

// testHookFair: a backlog of one app never hides another's due items.
func testHookFair(t *testing.T, s HookStore) {
	now := time.Now().UnixMilli()
	var backlog []persistence.HookItem
	for i := range 20 {
		backlog = append(backlog, hook(fmt.Sprint("a", i), "big", now-1000+int64(i)))
	}
	enqueue(t, s, 20, backlog...)
	enqueue(t, s, 2, hook("s1", "small", now), hook("s2", "small", now))
	got := claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 1000, Limit: 4, PerApp: 2})
	if !slices.Equal(hookIDs(got), []string{"a0", "a1", "s1", "s2"}) {
		t.Fatalf("claimed %v, want a0 a1 s1 s2", hookIDs(got))
	}
	enqueue(t, s, 1, hook("s3", "small", now))
	got = claim(t, s, persistence.HookClaim{NowMs: now, LeaseMs: 1000, Limit: 4, Skip: []string{"big"}})
	if !slices.Equal(hookIDs(got), []string{"s3"}) {
		t.Fatalf("claimed %v skipping big, want s3", hookIDs(got))
	}
}

func testHookConcurrent(t *testing.T, s HookStore) {
	now := time.Now().UnixMilli()
	var items []persistence.HookItem
	for i := range 200 {
		items = append(items, hook(fmt.Sprint("i", i), fmt.Sprint("app", i%3), now))
	}
	enqueue(t, s, 200, items...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				got, err := s.ClaimHooks(context.Background(), persistence.HookClaim{NowMs: now, LeaseMs: 60_000, Limit: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					seen[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("claimed %d distinct items, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
}

// hookCalls returns a call of every HookQueue method, by name.
func hookCalls(s persistence.HookQueue) map[string]call {
	return map[string]call{
		"EnqueueHooks": func(ctx context.Context) error {
			_, err := s.EnqueueHooks(ctx, hook("x", "app", 1))
			return err
		},
		"ClaimHooks": func(ctx context.Context) error {
			_, err := s.ClaimHooks(ctx, persistence.HookClaim{NowMs: 1, LeaseMs: 1, Limit: 1})
			return err
		},
		"AckHook":        func(ctx context.Context) error { return s.AckHook(ctx, "x") },
		"RetryHook":      func(ctx context.Context) error { return s.RetryHook(ctx, "x", 1, "") },
		"DeadLetterHook": func(ctx context.Context) error { return s.DeadLetterHook(ctx, "x", "") },
		"HookStats": func(ctx context.Context) error {
			_, err := s.HookStats(ctx, 1)
			return err
		},
		"DeadHooks": func(ctx context.Context) error {
			_, err := s.DeadHooks(ctx, 1)
			return err
		},
	}
}
