package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// recorder is a stand-in connection that records what it is sent.
type recorder struct {
	mu   sync.Mutex
	msgs []any
}

func (r *recorder) Receive(ctx actor.Context) {
	if _, system := ctx.Message().(actor.SystemMessage); system {
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, ctx.Message())
	r.mu.Unlock()
}

func (r *recorder) kicked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if _, ok := m.(*actorpb.KickDevice); ok {
			return true
		}
	}
	return false
}

func session(n int64) string { return fmt.Sprintf("%016x%08x", n, 0) }

// TestResumeNeverDisplacesNewerLogin: when the grain moves, a device's old
// connection re-attaches (resume) and may arrive after the device's newer
// login did; it must be refused, not replace the newer one. A resume of the
// newest session, or a fresh login, is accepted.
func TestResumeNeverDisplacesNewerLogin(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	ann := newUsers(t, rt, "ann")[0]
	root := rt.d.member.System().Root
	conn := func() (*recorder, *actor.PID) {
		r := &recorder{}
		return r, root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
	}
	attach := func(sess string, pid *actor.PID, resume bool) *actorpb.AttachResult {
		t.Helper()
		res, err := rt.d.member.Request(context.Background(), ann, KindUser, &actorpb.Attach{
			DeviceId: "d", Platform: clientpb.Platform_PLATFORM_WEB, SessionId: sess, Conn: pidOf(pid), Resume: resume,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.(*actorpb.AttachResult)
	}

	oldRec, oldPID := conn()
	newRec, newPID := conn()
	if r := attach(session(1), oldPID, false); r.GetReplaced() || r.GetError() != nil {
		t.Fatalf("first login: %v", r)
	}
	if r := attach(session(2), newPID, false); r.GetReplaced() || r.GetError() != nil {
		t.Fatalf("second login: %v", r)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !oldRec.kicked() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !oldRec.kicked() {
		t.Fatal("the newer login did not kick the older connection")
	}

	// The old connection, following a grain move, re-attaches late.
	if r := attach(session(1), oldPID, true); !r.GetReplaced() {
		t.Fatalf("an older session's resume was accepted: %v", r)
	}
	// The newer connection still holds the device: a resume of it, or an
	// even newer session, is accepted.
	if r := attach(session(2), newPID, true); r.GetReplaced() || r.GetError() != nil {
		t.Fatalf("the newest session's resume: %v", r)
	}
	_, newestPID := conn()
	if r := attach(session(3), newestPID, true); r.GetReplaced() {
		t.Fatalf("a newer session's resume was refused: %v", r)
	}
	if newRec.kicked() {
		t.Fatal("a resume kicked a connection (only logins apply the device policy)")
	}
	sessions, err := rt.store.Sessions(context.Background(), ann)
	if err != nil || len(sessions) != 1 || sessions[0].SessionID != session(3) {
		t.Fatalf("stored sessions %+v, %v", sessions, err)
	}
}

// TestAdoptedDeadSessionIsDropped: a new activation adopts the sessions an
// earlier one stored; one whose connection is already dead is dropped (and
// deleted from the store) instead of being kept and refreshed forever.
func TestAdoptedDeadSessionIsDropped(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	ann := newUsers(t, rt, "ann")[0]
	root := rt.d.member.System().Root
	dead := root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &recorder{} }))
	if err := root.StopFuture(dead).Wait(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.store.PutSession(ctx, persistence.Session{UserID: ann, DeviceID: "old", SessionID: session(1),
		Node: dead.GetAddress(), ConnID: dead.GetId()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	live := root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &recorder{} }))
	res, err := rt.d.member.Request(ctx, ann, KindUser, &actorpb.Attach{
		DeviceId: "new", Platform: clientpb.Platform_PLATFORM_IOS, SessionId: session(2), Conn: pidOf(live),
	})
	if err != nil || res.(*actorpb.AttachResult).GetError() != nil {
		t.Fatalf("attach: %v %v", res, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		sessions, err := rt.store.Sessions(ctx, ann)
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) == 1 && sessions[0].DeviceID == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions %+v: the dead connection's session was kept", sessions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
