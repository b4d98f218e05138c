package hooks

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

func note(app, msg, user string, badge int, devices ...string) PushNote {
	n := PushNote{App: app, Message: PushMessage{MessageID: msg, Kind: "text"}, Recipient: PushRecipient{User: user, Badge: badge, Count: 1}}
	for _, d := range devices {
		n.Recipient.Tokens = append(n.Recipient.Tokens, PushToken{Device: d, Provider: "fcm", Token: "tok-" + user + "-" + d})
	}
	return n
}

func decodePush(t *testing.T, it persistence.HookItem) PushData {
	t.Helper()
	var env struct {
		Event string   `json:"event"`
		Data  PushData `json:"data"`
	}
	if err := json.Unmarshal(it.Payload, &env); err != nil || env.Event != EventPushOffline || it.Event != EventPushOffline {
		t.Fatalf("payload %s: %v", it.Payload, err)
	}
	return env.Data
}

func TestBatchMergesAMessagesRecipients(t *testing.T) {
	notes := []PushNote{
		note("a", "1", "bob", 1, "d1"),
		note("a", "2", "bob", 2, "d1"),
		note("a", "1", "carol", 5, "p"),
		note("b", "1", "bob", 1, "d1"), // another app: another event
		note("a", "1", "bob", 3, "d1", "d2"),
	}
	items := Batch(notes, 500, 7)
	if len(items) != 3 {
		t.Fatalf("%d events, want 3 (a/1, a/2, b/1)", len(items))
	}
	d := decodePush(t, items[0])
	if items[0].App != "a" || d.MessageID != "1" || len(d.Recipients) != 2 {
		t.Fatalf("first event %+v", d)
	}
	bob := d.Recipients[0]
	if bob.User != "bob" || len(bob.Tokens) != 2 || bob.Badge != 3 {
		t.Fatalf("bob noted twice: %+v, want devices d1 and d2 once each and the later badge 3", bob)
	}
	if items[2].App != "b" || items[0].ID == items[2].ID {
		t.Fatalf("apps not kept apart: %s %s", items[0].ID, items[2].ID)
	}
}

func TestBatchSplitsAndDedupsTokens(t *testing.T) {
	var notes []PushNote
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		notes = append(notes, note("a", "9", u, 1, "d"))
	}
	items := Batch(notes, 2, 1)
	if len(items) != 3 {
		t.Fatalf("%d events for 5 recipients by 2, want 3", len(items))
	}
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.ID] {
			t.Fatalf("two parts share id %s", it.ID)
		}
		seen[it.ID] = true
	}
	// One token registered under two device ids of a user is pushed once.
	n := note("a", "1", "bob", 1)
	n.Recipient.Tokens = []PushToken{{Device: "old", Provider: "apns", Token: "same"}, {Device: "new", Provider: "apns", Token: "same"}}
	if d := decodePush(t, Batch([]PushNote{n}, 10, 1)[0]); len(d.Recipients[0].Tokens) != 1 {
		t.Fatalf("token twice: %+v", d.Recipients[0].Tokens)
	}
	// Rebuilt from the same notes (a retry), events keep their ids.
	if a, b := Batch(notes, 2, 1), Batch(notes, 2, 99); a[0].ID != b[0].ID {
		t.Fatal("ids depend on the time")
	}
}

func TestPushMessageOf(t *testing.T) {
	long := strings.Repeat("é", 150)
	m := &clientpb.Message{Id: 12345678901234567, ConversationId: "g:team", ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP,
		From: "alice", SentAtMs: 5, Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: long}}}
	pm := PushMessageOf(m, true)
	if pm.MessageID != "12345678901234567" || pm.ConversationType != "group" || pm.Kind != "text" || pm.Preview != strings.Repeat("é", PreviewRunes) {
		t.Fatalf("%+v", pm)
	}
	if pm := PushMessageOf(m, false); pm.Preview != "" {
		t.Fatal("preview shown when the app hides it")
	}
	img := &clientpb.Message{Content: &clientpb.Content{Kind: &clientpb.Content_Image{Image: &clientpb.Media{Caption: "secret"}}}}
	if pm := PushMessageOf(img, true); pm.Kind != "image" || pm.Preview != "" || pm.ConversationType != "private" {
		t.Fatalf("%+v", pm)
	}
}

type recordingQueue struct {
	mu    sync.Mutex
	calls [][]persistence.HookItem
	err   error
}

func (q *recordingQueue) Enqueue(_ context.Context, items ...persistence.HookItem) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, items)
	return q.err
}

func (q *recordingQueue) snapshot() [][]persistence.HookItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([][]persistence.HookItem(nil), q.calls...)
}

func TestPushBatcherGathersAWindow(t *testing.T) {
	q := &recordingQueue{}
	b := NewPushBatcher(q, nil, PushConfig{Window: 100 * time.Millisecond})
	b.Start()
	for _, u := range []string{"u1", "u2", "u3"} {
		if !b.Add(note("a", "1", u, 1, "d")) {
			t.Fatal("dropped")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(q.snapshot()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	calls := q.snapshot()
	if len(calls) != 1 || len(calls[0]) != 1 || len(decodePush(t, calls[0][0]).Recipients) != 3 {
		t.Fatalf("three notes of one message in a window: %d writes %v, want one event of 3 recipients", len(calls), calls)
	}
	// Shutdown queues what is still buffered.
	b.Add(note("a", "2", "u1", 2, "d"))
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls := q.snapshot(); len(calls) != 2 {
		t.Fatalf("%d writes after Shutdown, want 2", len(calls))
	}
}

func TestPushBatcherBounded(t *testing.T) {
	q := &recordingQueue{}
	b := NewPushBatcher(q, nil, PushConfig{Buffer: 2}) // not started: nothing drains
	if !b.Add(note("a", "1", "u1", 1)) || !b.Add(note("a", "1", "u2", 1)) {
		t.Fatal("dropped below the bound")
	}
	if b.Add(note("a", "1", "u3", 1)) {
		t.Fatal("a full buffer took a note")
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
