package clickhouse

import (
	"context"
	"testing"
	"time"
)

// TestEraseUser deletes alice's timeline rows and nobody else's, al's
// (a prefix of her id) included; the messages she sent stay.
func TestEraseUser(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	s := openHot(t, "alice", "al", "bob")
	send(t, s, "alice", "bob", text("from alice"))
	send(t, s, "bob", "alice", text("to alice"))
	send(t, s, "al", "bob", text("from al"))
	a := NewArchiver(ArchiverConfig{}, db, s, nil, nil)
	if n, err := a.Drain(ctx); err != nil || n != 3 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if n := count(t, db, "SELECT count() FROM timeline WHERE user_id = 'alice'"); n != 2 {
		t.Fatalf("alice has %d timeline rows before, want 2", n)
	}
	if err := db.EraseUser(ctx, "alice"); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(t, db, "SELECT count() FROM timeline WHERE user_id = 'alice'") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("alice's timeline rows are still there 30 s after EraseUser")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM timeline WHERE user_id = 'al'":           1,
		"SELECT count() FROM timeline WHERE user_id = 'bob'":          3,
		"SELECT count() FROM messages WHERE from_user = 'alice'":      1,
		"SELECT count() FROM timeline_events WHERE user_id = 'alice'": 0,
	} {
		if n := count(t, db, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
}
