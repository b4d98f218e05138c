package storetest

import (
	"context"
	"fmt"
	"testing"

	"actorim/persistence"
)

// TrimmerStore is what the Trimmer suite runs over: the contract, and the
// accounts and timelines it trims.
type TrimmerStore interface {
	persistence.Trimmer
	persistence.Timelines
	persistence.Accounts
}

// Trimmer is the conformance suite of persistence.Trimmer.
func Trimmer(t *testing.T, open func(t *testing.T) TrimmerStore, known ...Known) {
	runSuite(t, open, known, []test[TrimmerStore]{{"Trim", testTrim}})
}

func testTrim(t *testing.T, s TrimmerStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "alice", "bob", "carol")
	for i := range 10 {
		to := []string{"bob", "carol"}[i%2]
		mustAppend(t, s, newReq("alice", to, fmt.Sprintf("t%d", i), "alice", to))
	}
	if f, err := s.TrimFloor(ctx, "alice"); err != nil || f > 1 {
		t.Fatalf("TrimFloor before trimming = %d, %v", f, err)
	}
	floor, err := s.TrimTimeline(ctx, "alice", 7)
	if err != nil || floor != 7 {
		t.Fatalf("TrimTimeline(7) = %d, %v", floor, err)
	}
	got, err := s.ReadTimeline(ctx, "alice", 0, 100)
	if err != nil || len(got) != 4 || got[0].GetSeq() != 7 {
		t.Fatalf("timeline after trim: %v, %v", seqs(got), err)
	}
	conv, err := s.ReadConversation(ctx, "alice", "p:alice:bob", 0, 100)
	if err != nil {
		t.Fatalf("ReadConversation after trim: %v", err)
	}
	if want := []uint64{9, 7}; fmt.Sprint(seqs(conv)) != fmt.Sprint(want) {
		t.Fatalf("conversation after trim: %v, want %v", seqs(conv), want)
	}
	// A lower trim changes nothing; the newest entry is never trimmed.
	if floor, err = s.TrimTimeline(ctx, "alice", 3); err != nil || floor != 7 {
		t.Fatalf("TrimTimeline(3) after 7 = %d, %v", floor, err)
	}
	if floor, err = s.TrimTimeline(ctx, "alice", 1000); err != nil || floor != 10 {
		t.Fatalf("TrimTimeline(1000) = %d, %v; want the newest seq 10", floor, err)
	}
	if last := lastSeq(t, s, "alice"); last != 10 {
		t.Fatalf("LastSeq after trimming all = %d", last)
	}
	res := mustAppend(t, s, newReq("alice", "bob", "t10", "alice", "bob"))
	if res.Entries[0].GetSeq() != 11 {
		t.Fatalf("append after trim got seq %d, want 11", res.Entries[0].GetSeq())
	}
	if f, err := s.TrimFloor(ctx, "alice"); err != nil || f != 10 {
		t.Fatalf("TrimFloor = %d, %v", f, err)
	}
	if f, err := s.TrimFloor(ctx, "bob"); err != nil || f > 1 {
		t.Fatalf("TrimFloor(bob) = %d, %v", f, err)
	}
}
