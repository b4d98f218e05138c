package redisstore

import (
	"context"
	"testing"
	"time"

	"actorim/persistence/storetest"
)

func TestOutboxRedis(t *testing.T) {
	storetest.Outbox(t,
		func(t *testing.T) storetest.OutboxStore { return openStore(t, shared.addr(), Options{Outbox: true}) },
		func(t *testing.T) storetest.OutboxStore { return openStore(t, shared.addr(), Options{}) })
}

func TestTrimmerRedis(t *testing.T) {
	storetest.Trimmer(t, func(t *testing.T) storetest.TrimmerStore {
		return openStore(t, shared.addr(), Options{Outbox: true})
	})
}

// TestOutboxLeaseOneHolder: of two nodes sharing a Redis, one holds the
// archiving lease until it lapses.
func TestOutboxLeaseOneHolder(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix()
	a := openStore(t, shared.addr(), Options{Outbox: true, Prefix: prefix})
	b := openStore(t, shared.addr(), Options{Outbox: true, Prefix: prefix})
	if ok, err := a.AcquireOutbox(ctx, "a", 200); err != nil || !ok {
		t.Fatalf("a: %v, %v", ok, err)
	}
	if ok, err := b.AcquireOutbox(ctx, "b", 200); err != nil || ok {
		t.Fatalf("b took a held lease: %v, %v", ok, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		ok, err := b.AcquireOutbox(ctx, "b", 200)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease never lapsed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
