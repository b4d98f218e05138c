package actors

import (
	"context"
	"errors"
	"testing"

	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

func userOp(t *testing.T, rt *testNode, user string, f *clientpb.Frame) *actorpb.OpResult {
	t.Helper()
	res, err := rt.d.member.Request(context.Background(), user, KindUser, &actorpb.UserOp{Frame: f})
	if err != nil {
		t.Fatal(err)
	}
	return res.(*actorpb.OpResult)
}

// TestPolicyRecordFollowsBlacklistAndSetting: the record other grains read
// on private sends exists exactly while the user has restrictions.
func TestPolicyRecordFollowsBlacklistAndSetting(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	bg := context.Background()
	u := newUsers(t, rt, "ann", "bo")
	ann, bo := u[0], u[1]
	policy := func() *storepb.SocialState {
		t.Helper()
		p, err := rt.d.policy(ann)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	block := func(on bool) {
		t.Helper()
		if r := userOp(t, rt, ann, &clientpb.Frame{Body: &clientpb.Frame_Block{Block: &clientpb.BlockUser{User: bo, Blocked: on}}}); r.GetError() != nil {
			t.Fatal(r.GetError())
		}
	}
	if policy() != nil {
		t.Fatal("policy record before any restriction")
	}
	block(true)
	if p := policy(); !p.GetBlocked()[bo] || p.GetFriendsOnly() || len(p.GetFriends()) != 0 {
		t.Fatalf("after block: %v", p)
	}
	on := true
	userOp(t, rt, ann, &clientpb.Frame{Body: &clientpb.Frame_Settings{Settings: &clientpb.UpdateSettings{FriendsOnly: &on}}})
	block(false)
	if p := policy(); len(p.GetBlocked()) != 0 || !p.GetFriendsOnly() {
		t.Fatalf("after unblock with friends_only: %v", p)
	}
	on = false
	userOp(t, rt, ann, &clientpb.Frame{Body: &clientpb.Frame_Settings{Settings: &clientpb.UpdateSettings{FriendsOnly: &on}}})
	if _, err := rt.store.GetState(bg, policyKey(ann)); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("policy record without restrictions: %v", err)
	}
}

// TestBroadcastRetryAppendsOnce: a broadcast retried after its progress
// record was lost (a crash between an Append and the record) appends to
// nobody twice, and a finished one answers from its record.
func TestBroadcastRetryAppendsOnce(t *testing.T) {
	t.Parallel()
	// A store of its own: the broadcast reaches every user in it.
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := startServiceOn(t, st)
	bg := context.Background()
	for _, u := range []string{"ann", "b1", "b2", "b3"} {
		if err := rt.store.CreateAccount(bg, persistence.Account{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	req := BroadcastRequest{ID: "x", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hi"}}}
	res, e := rt.Broadcast(bg, req)
	if e != nil || res.Users != 4 || res.Duplicate {
		t.Fatalf("first = %+v, %v", res, e)
	}
	if err := rt.store.PutState(bg, broadcastKey("x"), []byte(`{"after":""}`)); err != nil {
		t.Fatal(err)
	}
	if _, e := rt.Broadcast(bg, req); e != nil {
		t.Fatal(e)
	}
	for _, u := range []string{"ann", "b1", "b2", "b3"} {
		if seq, err := rt.store.LastSeq(bg, u); err != nil || seq != 1 {
			t.Fatalf("%s: last seq %d, %v", u, seq, err)
		}
	}
	if res, e := rt.Broadcast(bg, req); e != nil || !res.Duplicate || res.Users != 4 {
		t.Fatalf("after finishing = %+v, %v", res, e)
	}
}
