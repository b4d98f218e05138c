package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"actorim/persistence"
)

// OutboxStore is what the Outbox suite runs over: the contract, and the
// accounts and timelines whose appends fill the outbox.
type OutboxStore interface {
	persistence.Outbox
	persistence.Timelines
	persistence.Accounts
}

// Outbox is the conformance suite of persistence.Outbox. withOutbox opens a
// fresh, empty store with its outbox on, without one with it off.
func Outbox(t *testing.T, withOutbox, without func(t *testing.T) OutboxStore, known ...Known) {
	runSuite(t, withOutbox, known, []test[OutboxStore]{
		{"RecordsAppends", testOutboxRecords},
		{"ConfirmDeletes", testOutboxConfirm},
		{"NothingForRejectedOrDuplicate", testOutboxRejected},
		{"ConcurrentAppendsOnce", testOutboxConcurrent},
		{"Lease", testOutboxLease},
	})
	run(t, "OffRecordsNothing", known, func(t *testing.T) {
		s := without(t)
		CreateAccounts(t, s, "alice", "bob")
		mustAppend(t, s, newReq("alice", "bob", "x1", "alice", "bob"))
		if items := readOutbox(t, s, 10); len(items) != 0 {
			t.Fatalf("outbox off: %d items recorded", len(items))
		}
	})
}

func readOutbox(t *testing.T, s persistence.Outbox, limit int) []persistence.OutboxItem {
	t.Helper()
	items, err := s.ReadOutbox(context.Background(), limit)
	if err != nil {
		t.Fatalf("ReadOutbox: %v", err)
	}
	return items
}

func testOutboxRecords(t *testing.T, s OutboxStore) {
	CreateAccounts(t, s, "alice", "bob", "carol")
	var want []*persistence.AppendResult
	want = append(want, mustAppend(t, s, newReq("alice", "bob", "r1", "alice", "bob")))
	want = append(want, mustAppend(t, s, newReq("bob", "alice", "r2", "bob", "alice")))
	want = append(want, mustAppend(t, s, newReq("carol", "bob", "r3", "carol", "bob")))
	items := readOutbox(t, s, 100)
	if len(items) != len(want) {
		t.Fatalf("outbox has %d items, want %d", len(items), len(want))
	}
	for i, it := range items {
		msg := want[i].Entries[0].GetMessage()
		got := it.Entry.GetMessage()
		if got.GetId() != msg.GetId() || got.GetSentAtMs() != msg.GetSentAtMs() ||
			got.GetFrom() != msg.GetFrom() || got.GetContent().GetText() != msg.GetContent().GetText() ||
			got.GetConversationId() != msg.GetConversationId() || got.GetClientMsgId() != msg.GetClientMsgId() {
			t.Fatalf("item %d holds %v, want %v", i, got, msg)
		}
		if it.AtMs != msg.GetSentAtMs() {
			t.Fatalf("item %d AtMs %d, want the message's sent time %d", i, it.AtMs, msg.GetSentAtMs())
		}
		if it.Entry.GetSeq() != 0 {
			t.Fatalf("item %d entry carries seq %d", i, it.Entry.GetSeq())
		}
		if len(it.Timelines) != 2 {
			t.Fatalf("item %d has timelines %v", i, it.Timelines)
		}
		for j, tl := range it.Timelines {
			if tl.Seq != want[i].Entries[j].GetSeq() {
				t.Fatalf("item %d timeline %d = %+v, want seq %d", i, j, tl, want[i].Entries[j].GetSeq())
			}
		}
		if i > 0 && it.ID == items[i-1].ID {
			t.Fatalf("items %d and %d share id %q", i-1, i, it.ID)
		}
	}
	if items[0].Timelines[0].User != "alice" || items[0].Timelines[1].User != "bob" {
		t.Fatalf("first item timelines %+v", items[0].Timelines)
	}
	// Reading does not consume.
	if again := readOutbox(t, s, 2); len(again) != 2 || again[0].ID != items[0].ID || again[1].ID != items[1].ID {
		t.Fatalf("second read differs: %+v", again)
	}
	n, oldest, err := s.OutboxBacklog(context.Background())
	if err != nil || n != 3 || oldest != items[0].AtMs {
		t.Fatalf("OutboxBacklog = %d, %d, %v; want 3, %d", n, oldest, err, items[0].AtMs)
	}
}

func testOutboxConfirm(t *testing.T, s OutboxStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "alice", "bob")
	for i := range 5 {
		mustAppend(t, s, newReq("alice", "bob", fmt.Sprintf("c%d", i), "alice", "bob"))
	}
	items := readOutbox(t, s, 100)
	if len(items) != 5 {
		t.Fatalf("%d items, want 5", len(items))
	}
	if err := s.ConfirmOutbox(ctx, items[2].ID); err != nil {
		t.Fatalf("ConfirmOutbox: %v", err)
	}
	rest := readOutbox(t, s, 100)
	if len(rest) != 2 || rest[0].ID != items[3].ID || rest[1].ID != items[4].ID {
		t.Fatalf("after confirming 3 of 5: %+v", rest)
	}
	mustAppend(t, s, newReq("alice", "bob", "c5", "alice", "bob"))
	if err := s.ConfirmOutbox(ctx, rest[1].ID); err != nil {
		t.Fatalf("ConfirmOutbox: %v", err)
	}
	rest = readOutbox(t, s, 100)
	if len(rest) != 1 || rest[0].Entry.GetMessage().GetClientMsgId() != "c5" {
		t.Fatalf("after confirming 5 of 6: %+v", rest)
	}
	if err := s.ConfirmOutbox(ctx, rest[0].ID); err != nil {
		t.Fatalf("ConfirmOutbox: %v", err)
	}
	if rest = readOutbox(t, s, 100); len(rest) != 0 {
		t.Fatalf("after confirming all: %+v", rest)
	}
	n, oldest, err := s.OutboxBacklog(ctx)
	if err != nil || n != 0 || oldest != 0 {
		t.Fatalf("empty OutboxBacklog = %d, %d, %v", n, oldest, err)
	}
}

func testOutboxRejected(t *testing.T, s OutboxStore) {
	CreateAccounts(t, s, "alice", "bob")
	mustAppend(t, s, newReq("alice", "bob", "d1", "alice", "bob"))
	if res := mustAppend(t, s, newReq("alice", "bob", "d1", "alice", "bob")); !res.Duplicate {
		t.Fatal("retry not reported as duplicate")
	}
	if _, err := s.Append(context.Background(), newReq("alice", "zed", "d2", "alice", "zed")); err == nil {
		t.Fatal("append to unknown user succeeded")
	}
	if items := readOutbox(t, s, 100); len(items) != 1 {
		t.Fatalf("%d items, want only the first append's", len(items))
	}
}

func testOutboxConcurrent(t *testing.T, s OutboxStore) {
	CreateAccounts(t, s, "alice", "bob", "carol")
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := []string{"alice", "bob", "carol"}[w%3], []string{"bob", "carol", "alice"}[w%3]
			for i := range each {
				req := newReq(from, to, fmt.Sprintf("w%d-%d", w, i), from, to)
				if _, err := s.Append(context.Background(), req); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	items := readOutbox(t, s, 10*writers*each)
	if len(items) != writers*each {
		t.Fatalf("%d items, want %d", len(items), writers*each)
	}
	ids := map[uint64]bool{}
	positions := map[persistence.TimelineSeq]bool{}
	var lastID uint64
	for _, it := range items {
		id := it.Entry.GetMessage().GetId()
		if ids[id] {
			t.Fatalf("message %d recorded twice", id)
		}
		ids[id] = true
		if id <= lastID {
			t.Fatalf("outbox not in append order: msg %d after %d", id, lastID)
		}
		lastID = id
		for _, tl := range it.Timelines {
			if positions[tl] {
				t.Fatalf("position %+v recorded twice", tl)
			}
			positions[tl] = true
		}
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		last := lastSeq(t, s, u)
		for q := uint64(1); q <= last; q++ {
			if !positions[persistence.TimelineSeq{User: u, Seq: q}] {
				t.Fatalf("%s seq %d missing from the outbox", u, q)
			}
		}
	}
}

func testOutboxLease(t *testing.T, s OutboxStore) {
	ctx := context.Background()
	for range 2 { // take, then renew
		ok, err := s.AcquireOutbox(ctx, "node-a", 10_000)
		if err != nil || !ok {
			t.Fatalf("AcquireOutbox(node-a) = %v, %v", ok, err)
		}
	}
}
