package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"actorim/persistence"
)

// EraserStore is what the Eraser suite runs over.
type EraserStore interface {
	persistence.Accounts
	persistence.Timelines
	persistence.Sessions
	persistence.Eraser
	Close() error
}

// KeyLister lists every key a store holds, as its backend lays them out,
// so that the Eraser suite can look for the erased user's id among them.
type KeyLister func(t *testing.T) []string

// Eraser is the conformance suite of persistence.Eraser. open returns a
// fresh store and the lister of its keys.
//
// The erased user is "alice"; around her live "al" (an id she extends),
// "acme:alice" (her id in another app) and "bob", with messages between
// all of them, conversation indexes and sessions. After the erasure no key
// may hold "alice" as a whole '/'-separated segment, and the others' data
// must be intact.
func Eraser(t *testing.T, open func(t *testing.T) (EraserStore, KeyLister), known ...Known) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s EraserStore, keys KeyLister)
	}{
		{"LeavesNoKey", testEraseLeavesNoKey},
		{"IdIsFree", testEraseIDIsFree},
		{"Idempotent", testEraseIdempotent},
		{"CanceledContext", func(t *testing.T, s EraserStore, _ KeyLister) { checkCanceled(t, eraserCalls(s)) }},
		{"Closed", func(t *testing.T, s EraserStore, _ KeyLister) { checkClosed(t, s, eraserCalls(s)) }},
	}
	for _, tc := range tests {
		run(t, tc.name, known, func(t *testing.T) {
			s, keys := open(t)
			tc.fn(t, s, keys)
		})
	}
}

func eraserCalls(s persistence.Eraser) map[string]call {
	return map[string]call{
		"EraseUser": func(ctx context.Context) error { return s.EraseUser(ctx, "alice") },
	}
}

// eraseNeighbours are the users around the erased "alice".
var eraseNeighbours = []string{"al", "acme:alice", "bob"}

// fillErase gives alice and her neighbours accounts, messages both ways
// (deduplicated), sessions; it returns each neighbour's last seq.
func fillErase(t *testing.T, s EraserStore) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	CreateAccounts(t, s, append([]string{"alice"}, eraseNeighbours...)...)
	for i, other := range eraseNeighbours {
		for j, req := range []*persistence.AppendRequest{
			PrivateRequest("alice", other, "a-"+other),
			PrivateRequest(other, "alice", "o-"+other),
			PrivateRequest(other, "alice", ""),
		} {
			req.Timelines = []string{req.Sender, req.Message.To}
			if _, err := s.Append(ctx, req); err != nil {
				t.Fatalf("append %d/%d: %v", i, j, err)
			}
		}
	}
	// Messages among the neighbours, which alice's erasure must not touch.
	if _, err := s.Append(ctx, PrivateRequest("al", "bob", "al-bob")); err != nil {
		t.Fatal(err)
	}
	for _, u := range append([]string{"alice"}, eraseNeighbours...) {
		if err := s.PutSession(ctx, persistence.Session{UserID: u, DeviceID: "web", SessionID: "s-" + u, Node: "n", ConnID: "c"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	seqs := map[string]uint64{}
	for _, u := range eraseNeighbours {
		seqs[u] = lastSeq(t, s, u)
	}
	return seqs
}

// namesUser reports whether key holds user as a whole segment between
// '/', ' ', NUL or the key's ends (the separators of the backends'
// layouts; a prefix such as "test1:" sits before the first one).
func namesUser(key, user string) bool {
	for _, seg := range strings.FieldsFunc(key, func(r rune) bool { return r == '/' || r == 0 }) {
		if seg == user {
			return true
		}
	}
	return false
}

func testEraseLeavesNoKey(t *testing.T, s EraserStore, keys KeyLister) {
	ctx := context.Background()
	seqs := fillErase(t, s)
	named := 0
	for _, k := range keys(t) {
		if namesUser(k, "alice") {
			named++
		}
	}
	if named == 0 {
		t.Fatal("before the erasure no key names alice: the key lister or namesUser is wrong")
	}
	if err := s.EraseUser(ctx, "alice"); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	for _, k := range keys(t) {
		if namesUser(k, "alice") {
			t.Errorf("key %q still names alice", k)
		}
	}
	checkErased(t, s, "alice")
	for _, u := range eraseNeighbours {
		if _, err := s.GetAccount(ctx, u); err != nil {
			t.Errorf("GetAccount(%s) after erasing alice: %v", u, err)
		}
		if got := lastSeq(t, s, u); got != seqs[u] {
			t.Errorf("LastSeq(%s) = %d after erasing alice, want %d", u, got, seqs[u])
		}
		if got := readAll(t, s, u); uint64(len(got)) != seqs[u] {
			t.Errorf("%s's timeline has %d entries after erasing alice, want %d", u, len(got), seqs[u])
		}
		if got, err := s.Sessions(ctx, u); err != nil || len(got) != 1 {
			t.Errorf("Sessions(%s) = %v, %v; want one", u, got, err)
		}
	}
	conv := "p:al:alice"
	if got, err := s.ReadConversation(ctx, "al", conv, 0, 100); err != nil || len(got) != 3 {
		t.Errorf("ReadConversation(al, %s) = %d entries, %v; want the 3 messages with alice, which stay", conv, len(got), err)
	}
	// A neighbour's dedup keys survive: a retry is still a duplicate.
	res, err := s.Append(ctx, PrivateRequest("al", "bob", "al-bob"))
	if err != nil || !res.Duplicate {
		t.Errorf("retry of al's message after erasing alice = %+v, %v; want a duplicate", res, err)
	}
}

// checkErased checks that user's account, timeline and sessions are gone.
func checkErased(t *testing.T, s EraserStore, user string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetAccount(ctx, user); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetAccount(%s) after erasure = %v, want ErrNotFound", user, err)
	}
	if n := lastSeq(t, s, user); n != 0 {
		t.Errorf("LastSeq(%s) after erasure = %d, want 0", user, n)
	}
	if got := readAll(t, s, user); len(got) != 0 {
		t.Errorf("%s's timeline after erasure has %d entries", user, len(got))
	}
	if got, err := s.Sessions(ctx, user); err != nil || len(got) != 0 {
		t.Errorf("Sessions(%s) after erasure = %v, %v; want none", user, got, err)
	}
	if _, err := s.Append(ctx, PrivateRequest("bob", user, "")); !errors.Is(err, persistence.ErrUnknownUser) {
		t.Errorf("Append to %s after erasure = %v, want ErrUnknownUser", user, err)
	}
}

func testEraseIDIsFree(t *testing.T, s EraserStore, _ KeyLister) {
	ctx := context.Background()
	fillErase(t, s)
	if err := s.EraseUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	CreateAccounts(t, s, "alice")
	// The same client msg id is new again, and the timeline restarts at 1.
	res, err := s.Append(ctx, PrivateRequest("alice", "bob", "a-bob"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicate || res.Entries[0].Seq != 1 {
		t.Fatalf("first append of the new alice = seq %d, duplicate %v; want seq 1, new", res.Entries[0].Seq, res.Duplicate)
	}
	if got := readAll(t, s, "alice"); len(got) != 1 {
		t.Fatalf("the new alice's timeline has %d entries, want 1", len(got))
	}
}

func testEraseIdempotent(t *testing.T, s EraserStore, _ KeyLister) {
	ctx := context.Background()
	fillErase(t, s)
	for i := range 2 {
		if err := s.EraseUser(ctx, "alice"); err != nil {
			t.Fatalf("EraseUser #%d: %v", i+1, err)
		}
	}
	if err := s.EraseUser(ctx, "nobody"); err != nil {
		t.Fatalf("EraseUser of an unknown id: %v", err)
	}
	checkErased(t, s, "alice")
}
