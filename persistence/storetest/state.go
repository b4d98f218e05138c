package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

func testState(t *testing.T, s persistence.Store) {
	ctx := context.Background()
	if _, err := s.GetState(ctx, "us/alice"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetState(missing) = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two, longer"} {
		if err := s.PutState(ctx, "us/alice", []byte(v)); err != nil {
			t.Fatalf("PutState: %v", err)
		}
		got, err := s.GetState(ctx, "us/alice")
		if err != nil || string(got) != v {
			t.Fatalf("GetState = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.DeleteState(ctx, "us/alice"); err != nil {
		t.Fatalf("DeleteState: %v", err)
	}
	if _, err := s.GetState(ctx, "us/alice"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetState(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteState(ctx, "us/nobody"); err != nil {
		t.Fatalf("DeleteState(missing) = %v, want nil", err)
	}
}

func testSets(t *testing.T, s persistence.Store) {
	ctx := context.Background()
	if m, err := s.SetMembers(ctx, "rc/p:a:b"); err != nil || len(m) != 0 {
		t.Fatalf("SetMembers(missing) = %v, %v", m, err)
	}
	// Concurrent adds never lose a member.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddToSet(ctx, "rc/p:a:b", fmt.Sprint(1000+i)); err != nil {
				t.Errorf("AddToSet: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := s.AddToSet(ctx, "rc/p:a:b", "1000"); err != nil { // again: no duplicate
		t.Fatal(err)
	}
	if err := s.AddToSet(ctx, "rc/p:a:bb", "other"); err != nil { // a set whose name extends the first
		t.Fatal(err)
	}
	m, err := s.SetMembers(ctx, "rc/p:a:b")
	if err != nil || len(m) != 50 || !slices.IsSorted(m) || m[0] != "1000" || m[49] != "1049" {
		t.Fatalf("SetMembers = %v (%d), %v; want 1000..1049 sorted", m, len(m), err)
	}
}

func testUsers(t *testing.T, s persistence.Store) {
	ctx := context.Background()
	createAccounts(t, s, "bob", "alice", "#g:team", "carol", "dave")
	got, err := s.Users(ctx, "", 3)
	if err != nil || !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("Users(\"\", 3) = %v, %v", got, err)
	}
	got, err = s.Users(ctx, "carol", 10)
	if err != nil || !slices.Equal(got, []string{"dave"}) {
		t.Fatalf("Users(carol, 10) = %v, %v", got, err)
	}
}

// testAppendKeepsMentionsAndEvents: every stored field of a message comes
// back, including group mentions and system events.
func testAppendKeepsMentionsAndEvents(t *testing.T, s persistence.Store) {
	createAccounts(t, s, "alice", "bob")
	req := newReq("alice", "bob", "m-mention", "alice", "bob")
	req.Message.Mentions = []string{"bob", "all"}
	mustAppend(t, s, req)
	ev := newReq("alice", "bob", "", "bob")
	ev.Message.Content = &clientpb.Content{Kind: &clientpb.Content_Event{Event: &clientpb.Event{
		Type: clientpb.EventType_EVENT_READ, Actor: "alice", MsgId: 7}}}
	mustAppend(t, s, ev)
	got := readAll(t, s, "bob")
	if len(got) != 2 || !slices.Equal(got[0].GetMessage().GetMentions(), []string{"bob", "all"}) {
		t.Fatalf("mentions not kept: %v", got)
	}
	if e := got[1].GetMessage().GetContent().GetEvent(); e.GetType() != clientpb.EventType_EVENT_READ || e.GetMsgId() != 7 {
		t.Fatalf("event not kept: %v", got[1])
	}
}

// testAppendAll: a batch is stored in order with consecutive seqs, each
// request answered as Append would answer it (a repeated client msg id is a
// duplicate of the first, an unknown user fails alone).
func testAppendAll(t *testing.T, s persistence.Store) {
	createAccounts(t, s, "alice", "bob")
	var reqs []*persistence.AppendRequest
	for i := range 20 {
		reqs = append(reqs, newReq("alice", "bob", fmt.Sprintf("all-%d", i), "alice", "bob"))
	}
	reqs = append(reqs, newReq("alice", "bob", "all-3", "alice", "bob")) // a retry in the same batch
	reqs = append(reqs, newReq("alice", "nobody", "all-x", "alice", "nobody"))
	res, errs := s.AppendAll(context.Background(), reqs)
	if len(res) != len(reqs) || len(errs) != len(reqs) {
		t.Fatalf("AppendAll answered %d/%d of %d", len(res), len(errs), len(reqs))
	}
	for i := range 20 {
		if errs[i] != nil || res[i].Duplicate || res[i].Entries[0].GetSeq() != uint64(i+1) || res[i].Entries[1].GetSeq() != uint64(i+1) {
			t.Fatalf("request %d: %v, %v", i, res[i], errs[i])
		}
	}
	if errs[20] != nil || !res[20].Duplicate || res[20].Entries[0].GetMessage().GetId() != res[3].Entries[0].GetMessage().GetId() {
		t.Fatalf("retry in the batch: %v, %v", res[20], errs[20])
	}
	if !errors.Is(errs[21], persistence.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", errs[21])
	}
	got := readAll(t, s, "bob")
	if len(got) != 20 {
		t.Fatalf("bob's timeline has %d entries, want 20", len(got))
	}
	for i, e := range got {
		if e.GetMessage().GetClientMsgId() != fmt.Sprintf("all-%d", i) || e.GetSeq() != uint64(i+1) {
			t.Fatalf("entry %d = %v", i, e)
		}
	}
}
