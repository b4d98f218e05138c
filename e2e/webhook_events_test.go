package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"actorim/apps"
	"actorim/hooks"
	"actorim/protos/clientpb"
)

// received returns the distinct events of the receiver, in arrival order.
func (r *receiver) received() []hooks.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hooks.Envelope(nil), r.events...)
}

// matching returns the received events named event whose data decodes
// into a T equal to want.
func matching[T any](r *receiver, event string, want T) []hooks.Envelope {
	var out []hooks.Envelope
	for _, e := range r.received() {
		if e.Event != event {
			continue
		}
		var got T
		if json.Unmarshal(e.Data.(json.RawMessage), &got) == nil && reflect.DeepEqual(got, want) {
			out = append(out, e)
		}
	}
	return out
}

// requireEvent waits for the event with data want, of app, and requires
// its id to have the event's prefix and app.
func requireEvent[T any](t *testing.T, r *receiver, app, event, prefix string, want T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []hooks.Envelope
	for got = matching(r, event, want); len(got) == 0 && time.Now().Before(deadline); got = matching(r, event, want) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) == 0 {
		t.Fatalf("no %s event %+v; received:\n%s", event, want, dump(r.received()))
	}
	e := got[0]
	if e.App != app || e.V != hooks.Version || e.AtMs == 0 || !strings.HasPrefix(e.ID, prefix+"-"+app+"-") {
		t.Fatalf("%s event %+v: envelope %s %s v%d at %d", event, want, e.ID, e.App, e.V, e.AtMs)
	}
}

func dump(es []hooks.Envelope) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.ID + " " + e.Event + " " + string(e.Data.(json.RawMessage)) + "\n")
	}
	return b.String()
}

// count is how many received events are named event.
func (r *receiver) count(event string) int {
	n := 0
	for _, e := range r.received() {
		if e.Event == event {
			n++
		}
	}
	return n
}

func kickReq(users ...string) *clientpb.GroupRequest {
	return &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: users}}}
}

func setRoleReq(user string, role clientpb.GroupRole) *clientpb.GroupRequest {
	return &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: user, Role: role}}}
}

var (
	leaveReq    = &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Leave{Leave: &clientpb.GroupRequest_Empty{}}}
	dissolveReq = &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}
)

// TestWebhookEvents: an app's webhook gets, signed, with the documented
// data: user.online for a user's first device only and user.offline when
// its last goes; group.changed for a create, an invite, a kick, a leave, a
// role change, a transfer and a dissolve; friend.changed for a request, an
// acceptance, a rejection, a removal, a block and an unblock. A default-app
// user doing the same sends nothing to it.
func TestWebhookEvents(t *testing.T) {
	n := startNode(t, nil)
	r := newReceiver(t)
	app := n.webhookApp(t, r, apps.Settings{Webhook: apps.Webhook{Events: []string{
		hooks.EventUserOnline, hooks.EventUserOffline, hooks.EventGroupChanged, hooks.EventFriendChanged}}})

	// The default app's users, alongside: none of this reaches the app.
	da, db := n.newUser(t, "whd"), n.newUser(t, "whd")
	dA, dB := n.connect(t, da, "d1", nil), n.connect(t, db, "d1", nil)
	dA.mustSoc(t, friendRequest(db, "hi"))
	dB.mustSoc(t, friendRespond(da, true))
	dA.createGroup(t, newGroupID("whd"), clientpb.JoinPolicy_JOIN_POLICY_OPEN, db)
	_ = dB.Close()

	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "phone")
	requireEvent(t, r, app, hooks.EventUserOnline, "on", hooks.PresenceData{User: "alice", Device: "phone", Platform: "web"})
	alice2 := n.connectToken(t, n.appToken(t, app, "alice"), "alice", "laptop")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")
	carol := n.connectToken(t, n.appUser(t, app, "carol"), "carol", "web")
	requireEvent(t, r, app, hooks.EventUserOnline, "on", hooks.PresenceData{User: "carol", Device: "web", Platform: "web"})

	t.Run("friends", func(t *testing.T) {
		fr := func(user, peer, change, msg string) {
			t.Helper()
			requireEvent(t, r, app, hooks.EventFriendChanged, "fr", hooks.FriendData{User: user, Peer: peer, Change: change, Message: msg})
		}
		alice.mustSoc(t, friendRequest("bob", "hi, it's Alice"))
		fr("alice", "bob", hooks.FriendRequest, "hi, it's Alice")
		// Asked again while pending: queued again with the same id, which
		// the queue drops.
		alice.mustSoc(t, friendRequest("bob", "hi, it's Alice"))
		bob.mustSoc(t, friendRespond("alice", true))
		fr("bob", "alice", hooks.FriendAccepted, "")
		alice.mustSoc(t, friendDelete("bob"))
		fr("alice", "bob", hooks.FriendRemoved, "")
		carol.mustSoc(t, friendRequest("alice", ""))
		fr("carol", "alice", hooks.FriendRequest, "")
		alice.mustSoc(t, friendRespond("carol", false))
		fr("alice", "carol", hooks.FriendRejected, "")
		alice.mustSoc(t, blockUser("carol", true))
		fr("alice", "carol", hooks.FriendBlocked, "")
		alice.mustSoc(t, blockUser("carol", false))
		fr("alice", "carol", hooks.FriendUnblocked, "")
		if got := len(matching(r, hooks.EventFriendChanged, hooks.FriendData{User: "alice", Peer: "bob", Change: hooks.FriendRequest, Message: "hi, it's Alice"})); got != 1 {
			t.Fatalf("alice's request to bob arrived as %d events, want 1", got)
		}
	})

	t.Run("groups", func(t *testing.T) {
		gid := newGroupID("whe")
		grp := func(d hooks.GroupData) {
			t.Helper()
			d.Group = gid
			requireEvent(t, r, app, hooks.EventGroupChanged, "grp", d)
		}
		alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_APPROVAL, "bob")
		grp(hooks.GroupData{Change: hooks.GroupCreated, Actor: "alice", Name: "team " + gid, Members: []string{"alice", "bob"}})
		alice.group(t, gid, inviteReq("carol"))
		grp(hooks.GroupData{Change: hooks.GroupMemberAdded, Actor: "alice", Members: []string{"carol"}})
		alice.group(t, gid, kickReq("carol"))
		grp(hooks.GroupData{Change: hooks.GroupMemberRemoved, Actor: "alice", Members: []string{"carol"}})
		name, notice := "renamed "+gid, "read the rules"
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Update_{Update: &clientpb.GroupRequest_Update{Name: &name, Notice: &notice}}})
		grp(hooks.GroupData{Change: hooks.GroupUpdated, Actor: "alice", Name: name, Notice: notice, JoinPolicy: "approval"})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteMember_{MuteMember: &clientpb.GroupRequest_MuteMember{User: "bob", DurationMs: 60_000}}})
		waitFor(t, 10*time.Second, "member_muted", func() bool {
			for _, e := range r.received() {
				var d hooks.GroupData
				if e.Event == hooks.EventGroupChanged && json.Unmarshal(e.Data.(json.RawMessage), &d) == nil &&
					d.Change == hooks.GroupMemberMuted && d.Group == gid && d.Actor == "alice" && eq(d.Members, []string{"bob"}) &&
					d.UntilMs > uint64(time.Now().UnixMilli()) {
					return true
				}
			}
			return false
		})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteMember_{MuteMember: &clientpb.GroupRequest_MuteMember{User: "bob"}}})
		grp(hooks.GroupData{Change: hooks.GroupMemberUnmuted, Actor: "alice", Members: []string{"bob"}})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteAll{MuteAll: &clientpb.GroupRequest_Flag{On: true}}})
		grp(hooks.GroupData{Change: hooks.GroupMutedAll, Actor: "alice"})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteAll{MuteAll: &clientpb.GroupRequest_Flag{}}})
		grp(hooks.GroupData{Change: hooks.GroupUnmutedAll, Actor: "alice"})
		carol.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{Note: "let me back in"}}})
		grp(hooks.GroupData{Change: hooks.GroupJoinRequested, Actor: "carol", Note: "let me back in"})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_AnswerJoin{AnswerJoin: &clientpb.GroupRequest_Answer{User: "carol"}}})
		grp(hooks.GroupData{Change: hooks.GroupJoinRejected, Actor: "alice", Members: []string{"carol"}})
		alice.group(t, gid, setRoleReq("bob", clientpb.GroupRole_GROUP_ROLE_ADMIN))
		grp(hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: "alice", Members: []string{"bob"}, Role: "admin"})
		alice.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Transfer{Transfer: &clientpb.GroupRequest_User{User: "bob"}}})
		grp(hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: "alice", Members: []string{"bob"}, Role: "owner"})
		grp(hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: "alice", Members: []string{"alice"}, Role: "admin"})
		alice.group(t, gid, leaveReq)
		grp(hooks.GroupData{Change: hooks.GroupMemberRemoved, Actor: "alice", Members: []string{"alice"}})
		bob.group(t, gid, dissolveReq)
		grp(hooks.GroupData{Change: hooks.GroupDissolved, Actor: "bob"})
	})

	t.Run("presence", func(t *testing.T) {
		_ = alice.Close()
		time.Sleep(300 * time.Millisecond)
		if n := len(matching(r, hooks.EventUserOffline, hooks.PresenceData{User: "alice", Device: "phone", Platform: "web"})); n != 0 {
			t.Fatal("user.offline while a device of alice's was still online")
		}
		_ = alice2.Close()
		requireEvent(t, r, app, hooks.EventUserOffline, "off", hooks.PresenceData{User: "alice", Device: "laptop", Platform: "web"})
		if got := len(matching(r, hooks.EventUserOnline, hooks.PresenceData{User: "alice", Device: "laptop", Platform: "web"})); got != 0 {
			t.Fatal("user.online for alice's second device")
		}
	})

	_ = dA.Close()
	time.Sleep(1500 * time.Millisecond) // anything still on its way
	for _, e := range r.received() {
		if e.App != app {
			t.Fatalf("event of another app: %s %s %s", e.App, e.ID, e.Event)
		}
		if data := string(e.Data.(json.RawMessage)); strings.Contains(data, "whd-") {
			t.Fatalf("a default-app user's activity reached the app: %s %s", e.Event, data)
		}
	}
	if got := r.count(hooks.EventUserOnline); got != 3 {
		t.Fatalf("%d user.online events, want 3 (alice, bob, carol):\n%s", got, dump(r.received()))
	}
	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("requests with bad signatures: %v", bad)
	}
}

// TestWebhookEventsSubscribed: an app whose webhook lists only
// group.changed gets no presence or friend events.
func TestWebhookEventsSubscribed(t *testing.T) {
	n := startNode(t, nil)
	r := newReceiver(t)
	app := n.webhookApp(t, r, apps.Settings{Webhook: apps.Webhook{Events: []string{hooks.EventGroupChanged}}})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")
	alice.mustSoc(t, friendRequest("bob", ""))
	bob.mustSoc(t, friendRespond("alice", true))
	_ = bob.Close()
	gid := newGroupID("whs")
	alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")
	requireEvent(t, r, app, hooks.EventGroupChanged, "grp",
		hooks.GroupData{Group: gid, Change: hooks.GroupCreated, Actor: "alice", Name: "team " + gid, Members: []string{"alice", "bob"}})
	time.Sleep(1500 * time.Millisecond)
	for _, e := range r.received() {
		if e.Event != hooks.EventGroupChanged {
			t.Fatalf("an event the webhook does not list: %s %s", e.Event, e.Data)
		}
	}
	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("requests with bad signatures: %v", bad)
	}
}
