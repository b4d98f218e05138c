package embedded

import (
	"strconv"
	"sync/atomic"
	"testing"

	"actorim/persistence"
	"actorim/persistence/storetest"
	"actorim/protos/clientpb"
)

func TestOutboxEmbedded(t *testing.T) {
	storetest.Outbox(t,
		func(t *testing.T) storetest.OutboxStore {
			return openTest(t, t.TempDir(), Options{Outbox: true}, hooks{})
		},
		func(t *testing.T) storetest.OutboxStore { return openTest(t, t.TempDir(), Options{}, hooks{}) })
}

func TestTrimmerEmbedded(t *testing.T) {
	storetest.Trimmer(t, func(t *testing.T) storetest.TrimmerStore {
		return openTest(t, t.TempDir(), Options{Outbox: true}, hooks{})
	})
}

// TestOutboxSurvivesReopen checks that unconfirmed items and the id counter
// outlive a restart, so that new items sort after old ones.
func TestOutboxSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Outbox: true}, hooks{}, "alice", "bob")
	appendText(t, s, "alice", "bob", "before")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Outbox: true}, hooks{})
	appendText(t, s, "alice", "bob", "after")
	items, err := s.ReadOutbox(t.Context(), 10)
	if err != nil || len(items) != 2 {
		t.Fatalf("ReadOutbox = %d items, %v", len(items), err)
	}
	if items[0].Entry.GetMessage().GetContent().GetText() != "before" || items[1].Entry.GetMessage().GetContent().GetText() != "after" {
		t.Fatalf("items out of order: %v", items)
	}
}

func appendText(t *testing.T, s *Store, from, to, text string) {
	t.Helper()
	req := &persistence.AppendRequest{
		Message: &clientpb.Message{
			ConversationId: "p:" + from + ":" + to, From: from, To: to,
			Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: text}},
		},
		Timelines: []string{from, to},
	}
	if _, err := s.Append(t.Context(), req); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func TestHookQueueEmbedded(t *testing.T) {
	storetest.HookQueue(t, func(t *testing.T) storetest.HookStore {
		return openTest(t, t.TempDir(), Options{}, hooks{})
	})
}

func TestHookDurabilityEmbedded(t *testing.T) {
	dir := t.TempDir()
	storetest.HookDurability(t, func(t *testing.T) storetest.HookStore {
		return openTest(t, dir, Options{}, hooks{})
	})
}

// BenchmarkEnqueueHooks queues one item per call from many goroutines:
// each call waits for an fsync, which Pebble shares among concurrent calls.
func BenchmarkEnqueueHooks(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{}, hooks{})
	var n atomic.Int64
	payload := make([]byte, 300)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			if _, err := s.EnqueueHooks(b.Context(), persistence.HookItem{ID: "msg-default-" + id, App: "default", Event: "message.stored", Payload: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
