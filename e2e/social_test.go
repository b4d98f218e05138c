package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// ---- helpers ------------------------------------------------------------

// op sends a request of frames 17 to 25 and returns its Result.
func (d *device) socOp(t *testing.T, f *clientpb.Frame) (*clientpb.Result, error) {
	t.Helper()
	res, err := d.Request(ctx(t), f)
	if err != nil {
		return nil, err
	}
	if res.GetResult() == nil {
		t.Fatalf("%s: answer is not a Result: %v", d.user, res)
	}
	return res.GetResult(), nil
}

func (d *device) mustSoc(t *testing.T, f *clientpb.Frame) *clientpb.Result {
	t.Helper()
	r, err := d.socOp(t, f)
	if err != nil {
		t.Fatalf("%s: %v: %v", d.user, f.GetBody(), err)
	}
	return r
}

// refused requires the request to fail with code.
func (d *device) refusedSoc(t *testing.T, f *clientpb.Frame, code clientpb.ErrorCode) {
	t.Helper()
	_, err := d.socOp(t, f)
	if client.CodeOf(err) != code {
		t.Fatalf("%s: %v: got %v, want %v", d.user, f.GetBody(), err, code)
	}
}

func friendRequest(to, note string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_FriendRequest{FriendRequest: &clientpb.FriendRequest{To: to, Note: note}}}
}

func friendRespond(from string, accept bool) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_FriendRespond{FriendRespond: &clientpb.FriendRespond{From: from, Accept: accept}}}
}

func friendDelete(user string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_FriendDelete{FriendDelete: &clientpb.FriendDelete{User: user}}}
}

func friendUpdate(user string, remark, category *string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_FriendUpdate{FriendUpdate: &clientpb.FriendUpdate{User: user, Remark: remark, Category: category}}}
}

func category(op clientpb.CategoryOp_Op, name, newName string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_Category{Category: &clientpb.CategoryOp{Op: op, Name: name, NewName: newName}}}
}

func blockUser(user string, blocked bool) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_Block{Block: &clientpb.BlockUser{User: user, Blocked: blocked}}}
}

func friendsOnly(on bool) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_Settings{Settings: &clientpb.UpdateSettings{FriendsOnly: &on}}}
}

func presenceQuery(users ...string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_PresenceQuery{PresenceQuery: &clientpb.PresenceQuery{Users: users}}}
}

func sp(s string) *string { return &s }

func (d *device) friendList(t *testing.T) *clientpb.FriendList {
	t.Helper()
	return d.mustSoc(t, &clientpb.Frame{Body: &clientpb.Frame_FriendList{FriendList: &clientpb.FriendListRequest{}}}).GetFriends()
}

func friendIDs(l *clientpb.FriendList) []string {
	var out []string
	for _, f := range l.GetFriends() {
		out = append(out, f.GetUser())
	}
	return out
}

func pendingIDs(ps []*clientpb.PendingRequest) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.GetUser())
	}
	return out
}

// event waits for the next pushed entry and requires it to be an event of
// type typ by actor about user, in the private conversation of the two.
func (d *device) friendEvent(t *testing.T, typ clientpb.EventType, actor, user string) *clientpb.Event {
	t.Helper()
	e := d.collect(t, 1, 5*time.Second)[0]
	requireFriendEvent(t, d.user, e, typ, actor, user)
	return e.GetMessage().GetContent().GetEvent()
}

func requireFriendEvent(t *testing.T, who string, e *clientpb.Entry, typ clientpb.EventType, actor, user string) {
	t.Helper()
	m := e.GetMessage()
	ev := m.GetContent().GetEvent()
	if ev.GetType() != typ || ev.GetActor() != actor || !eq(ev.GetUsers(), []string{user}) ||
		m.GetConversationId() != ids.Private(actor, user) ||
		m.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE {
		t.Fatalf("%s: got %v, want event %v by %s about %s", who, m, typ, actor, user)
	}
}

// befriend makes the users of a and b friends and consumes the events.
func befriend(t *testing.T, a, b *device) {
	t.Helper()
	a.mustSoc(t, friendRequest(b.user, ""))
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, a.user, b.user)
	b.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, a.user, b.user)
	b.mustSoc(t, friendRespond(a.user, true))
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, b.user, a.user)
	b.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, b.user, a.user)
}

// requireText waits for the next entry and requires it to be text.
func (d *device) requireText(t *testing.T, text string) {
	t.Helper()
	if got := d.collect(t, 1, 5*time.Second); texts(got)[0] != text {
		t.Fatalf("%s got %q, want %q", d.user, texts(got), text)
	}
}

func trySend(t *testing.T, d *device, to string) error {
	t.Helper()
	_, err := d.SendText(ctx(t), to, cmid(), "hello "+to)
	return err
}

// watcher is a raw connection that records Signal frames, which the Go
// client does not surface.
type watcher struct {
	user    string
	ws      *websocket.Conn
	signals chan *clientpb.Signal
}

// watch logs user in as device dev on a raw socket that collects signals.
func (n *testNode) watch(t *testing.T, user, dev string, p clientpb.Platform) *watcher {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.SubprotocolProto}}
	ws, resp, err := d.DialContext(ctx(t), n.ws, nil)
	specCheck.RecordResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	codec := wire.ProtoCodec{}
	login, _ := codec.Encode(&clientpb.Frame{Id: 1, Body: &clientpb.Frame_Login{Login: &clientpb.Login{
		Token: n.token(t, user), DeviceId: dev, Platform: p}}})
	if err := ws.WriteMessage(websocket.BinaryMessage, login); err != nil {
		t.Fatal(err)
	}
	w := &watcher{user: user, ws: ws, signals: make(chan *clientpb.Signal, 64)}
	ok := make(chan error, 1)
	go func() {
		defer close(w.signals)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				select {
				case ok <- err:
				default:
				}
				return
			}
			f, err := codec.Decode(data)
			if err != nil {
				continue
			}
			switch {
			case f.GetLoginOk() != nil:
				ok <- nil
			case f.GetError() != nil && f.GetId() == 1:
				ok <- errors.New(f.GetError().GetMessage())
			case f.GetSignal() != nil:
				w.signals <- f.GetSignal()
			}
		}
	}()
	select {
	case err := <-ok:
		if err != nil {
			t.Fatalf("watch %s: %v", user, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("watch %s: no LoginOK", user)
	}
	return w
}

// presence waits for the next presence signal about user.
func (w *watcher) presence(t *testing.T, user string) *clientpb.Presence {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s, ok := <-w.signals:
			if !ok {
				t.Fatalf("%s: closed while waiting for presence of %s", w.user, user)
			}
			if p := s.GetPresence(); p != nil && p.GetUser() == user {
				return p
			}
		case <-deadline:
			t.Fatalf("%s: no presence of %s within 5s", w.user, user)
		}
	}
}

// requirePresence waits for user's presence and checks it.
func (w *watcher) requirePresence(t *testing.T, user string, platforms ...clientpb.Platform) {
	t.Helper()
	p := w.presence(t, user)
	if p.GetOnline() != (len(platforms) > 0) || !slices.Equal(p.GetPlatforms(), platforms) {
		t.Fatalf("%s: presence of %s = %v, want online=%v platforms %v", w.user, user, p, len(platforms) > 0, platforms)
	}
}

// noPresence asserts that no presence signal arrives for a while.
func (w *watcher) noPresence(t *testing.T, for_ time.Duration) {
	t.Helper()
	select {
	case s := <-w.signals:
		if s.GetPresence() != nil {
			t.Fatalf("%s: unexpected presence %v", w.user, s.GetPresence())
		}
	case <-time.After(for_):
	}
}

// ---- friends --------------------------------------------------------------

// TestFriendRequestAcceptReject: a request with a note reaches the other
// user and the sender's other devices as FRIEND_REQUEST events (also
// through sync for a device that was offline); accepting makes both friends,
// rejecting clears the request; asking back someone who asked accepts; and
// every misuse is refused with its code.
func TestFriendRequestAcceptReject(t *testing.T) {
	n := shared
	alice, bob, carol, dave := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol"), n.newUser(t, "dave")
	a := n.connect(t, alice, "web", nil)
	a2 := n.connect(t, alice, "phone", nil, platform(clientpb.Platform_PLATFORM_IOS))
	b := n.connect(t, bob, "web", nil)

	a.mustSoc(t, friendRequest(bob, "hi, it's alice"))
	if ev := b.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, bob); ev.GetNote() != "hi, it's alice" {
		t.Fatalf("bob's event note %q", ev.GetNote())
	}
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, bob)
	a2.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, bob)
	if l := b.friendList(t); !eq(pendingIDs(l.GetIncoming()), []string{alice}) || l.GetIncoming()[0].GetNote() != "hi, it's alice" || len(l.GetFriends()) != 0 {
		t.Fatalf("bob's list after the request: %v", l)
	}
	if l := a.friendList(t); !eq(pendingIDs(l.GetOutgoing()), []string{bob}) {
		t.Fatalf("alice's list after the request: %v", l)
	}
	a.mustSoc(t, friendRequest(bob, "again")) // pending: a retry changes nothing
	b.quiet(t, 200*time.Millisecond)

	b.mustSoc(t, friendRespond(alice, true))
	b.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, bob, alice)
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, bob, alice)
	a2.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, bob, alice)
	for _, d := range []*device{a, b} {
		l := d.friendList(t)
		other := map[string]string{alice: bob, bob: alice}[d.user]
		if !eq(friendIDs(l), []string{other}) || len(l.GetIncoming())+len(l.GetOutgoing()) != 0 || l.GetFriends()[0].GetSinceMs() == 0 {
			t.Fatalf("%s's list after accepting: %v", d.user, l)
		}
	}

	t.Run("refusals", func(t *testing.T) {
		a.refusedSoc(t, friendRequest(bob, ""), clientpb.ErrorCode_ERR_CONFLICT)
		a.refusedSoc(t, friendRequest(alice, ""), clientpb.ErrorCode_ERR_BAD_REQUEST)
		a.refusedSoc(t, friendRequest("no/such", ""), clientpb.ErrorCode_ERR_BAD_REQUEST)
		a.refusedSoc(t, friendRequest("nobody-"+alice, ""), clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT)
		a.refusedSoc(t, friendRequest(carol, string(make([]rune, 257))), clientpb.ErrorCode_ERR_BAD_REQUEST)
		a.refusedSoc(t, friendRespond(carol, true), clientpb.ErrorCode_ERR_NOT_FOUND)
		b.refusedSoc(t, friendRespond(alice, true), clientpb.ErrorCode_ERR_NOT_FOUND)
	})

	t.Run("reject", func(t *testing.T) {
		c := n.connect(t, carol, "web", nil)
		c.mustSoc(t, friendRequest(alice, "carol here"))
		c.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, carol, alice)
		a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, carol, alice)
		a2.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, carol, alice)
		a.mustSoc(t, friendRespond(carol, false))
		c.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REJECTED, alice, carol)
		a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REJECTED, alice, carol)
		a2.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REJECTED, alice, carol)
		if l := c.friendList(t); len(l.GetOutgoing()) != 0 || len(l.GetFriends()) != 0 {
			t.Fatalf("carol's list after the rejection: %v", l)
		}
		if l := a.friendList(t); len(l.GetIncoming()) != 0 || !eq(friendIDs(l), []string{bob}) {
			t.Fatalf("alice's list after rejecting: %v", l)
		}
	})

	t.Run("asking back accepts", func(t *testing.T) {
		// dave is offline throughout; he catches up through the stream.
		a.mustSoc(t, friendRequest(dave, "hello dave"))
		a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, dave)
		a2.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, dave)
		d := n.connect(t, dave, "web", u64(0))
		requireFriendEvent(t, dave, d.collect(t, 1, 5*time.Second)[0], clientpb.EventType_EVENT_FRIEND_REQUEST, alice, dave)
		d.mustSoc(t, friendRequest(alice, ""))
		d.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, dave, alice)
		a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_ADDED, dave, alice)
		if l := a.friendList(t); !eq(friendIDs(l), []string{bob, dave}) && !eq(friendIDs(l), []string{dave, bob}) {
			t.Fatalf("alice's friends: %v", friendIDs(l))
		}
	})
}

// TestFriendDeleteEndsItOnBothSides: either friend may end the friendship;
// both get FRIEND_DELETED and neither lists the other afterwards.
func TestFriendDeleteEndsItOnBothSides(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	befriend(t, a, b)

	b.mustSoc(t, friendDelete(alice))
	b.friendEvent(t, clientpb.EventType_EVENT_FRIEND_DELETED, bob, alice)
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_DELETED, bob, alice)
	if len(a.friendList(t).GetFriends())+len(b.friendList(t).GetFriends()) != 0 {
		t.Fatal("still friends after delete")
	}
	a.refusedSoc(t, friendDelete(bob), clientpb.ErrorCode_ERR_NOT_FOUND)
	b.refusedSoc(t, friendDelete(bob), clientpb.ErrorCode_ERR_BAD_REQUEST)
	// They can become friends again.
	befriend(t, a, b)
}

// TestFriendRemarkAndCategories: remarks and categories are the caller's
// own; renaming a category moves its friends, deleting it moves them to the
// default category.
func TestFriendRemarkAndCategories(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	befriend(t, a, b)

	a.mustSoc(t, category(clientpb.CategoryOp_OP_CREATE, "work", ""))
	a.mustSoc(t, category(clientpb.CategoryOp_OP_CREATE, "家族", ""))
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_CREATE, "work", ""), clientpb.ErrorCode_ERR_CONFLICT)
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_CREATE, "", ""), clientpb.ErrorCode_ERR_BAD_REQUEST)
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_UNSPECIFIED, "x", ""), clientpb.ErrorCode_ERR_BAD_REQUEST)

	a.mustSoc(t, friendUpdate(bob, sp("Bobby"), sp("work")))
	a.refusedSoc(t, friendUpdate(bob, nil, sp("nope")), clientpb.ErrorCode_ERR_NOT_FOUND)
	a.refusedSoc(t, friendUpdate(carol, sp("C"), nil), clientpb.ErrorCode_ERR_NOT_FOUND)
	l := a.friendList(t)
	if f := l.GetFriends()[0]; f.GetRemark() != "Bobby" || f.GetCategory() != "work" || !eq(l.GetCategories(), []string{"work", "家族"}) {
		t.Fatalf("after update: %v", l)
	}
	if f := b.friendList(t).GetFriends()[0]; f.GetRemark() != "" || f.GetCategory() != "" {
		t.Fatalf("bob's side changed: %v", f)
	}

	a.mustSoc(t, category(clientpb.CategoryOp_OP_RENAME, "work", "office"))
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_RENAME, "work", "x"), clientpb.ErrorCode_ERR_NOT_FOUND)
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_RENAME, "office", "家族"), clientpb.ErrorCode_ERR_CONFLICT)
	l = a.friendList(t)
	if f := l.GetFriends()[0]; f.GetCategory() != "office" || !eq(l.GetCategories(), []string{"office", "家族"}) {
		t.Fatalf("after rename: %v", l)
	}
	// Only the remark changes when only the remark is given.
	a.mustSoc(t, friendUpdate(bob, sp(""), nil))
	a.mustSoc(t, category(clientpb.CategoryOp_OP_DELETE, "office", ""))
	a.refusedSoc(t, category(clientpb.CategoryOp_OP_DELETE, "office", ""), clientpb.ErrorCode_ERR_NOT_FOUND)
	l = a.friendList(t)
	if f := l.GetFriends()[0]; f.GetCategory() != "" || f.GetRemark() != "" || !eq(l.GetCategories(), []string{"家族"}) {
		t.Fatalf("after delete: %v", l)
	}
}

// TestFriendsOnlySetting: with friends_only on, a non-friend's message is
// refused with ERR_NOT_FRIEND (a friend request still goes through); a
// friend's message is accepted; turning it off admits everyone again.
func TestFriendsOnlySetting(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	c := n.connect(t, carol, "web", nil)

	b.mustSoc(t, friendsOnly(true))
	if !b.friendList(t).GetSettings().GetFriendsOnly() {
		t.Fatal("friends_only not listed")
	}
	if err := trySend(t, a, bob); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FRIEND {
		t.Fatalf("non-friend's send: %v", err)
	}
	b.quiet(t, 200*time.Millisecond)
	// Bob may still write to anyone.
	b.send(t, carol, "hi carol")
	c.collect(t, 1, 5*time.Second)

	befriend(t, a, b)
	a.send(t, bob, "now we're friends")
	b.requireText(t, "now we're friends")
	if err := trySend(t, c, bob); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FRIEND {
		t.Fatalf("carol's send: %v", err)
	}
	b.mustSoc(t, friendsOnly(false))
	c.send(t, bob, "open again")
	b.requireText(t, "open again")
}

// ---- blocking -------------------------------------------------------------

// TestBlockRefusesMessagesRequestsAndPresence: a blocked user's messages and
// friend requests are refused with ERR_BLOCKED (and the blocker cannot write
// to them either), the blocked user sees the blocker offline and gets no
// presence; unblocking restores everything.
func TestBlockRefusesMessagesRequestsAndPresence(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	c := n.connect(t, carol, "web", nil)
	befriend(t, a, b)
	befriend(t, c, b)
	aw := n.watch(t, alice, "watch", clientpb.Platform_PLATFORM_DESKTOP)
	cw := n.watch(t, carol, "watch", clientpb.Platform_PLATFORM_DESKTOP)

	b.mustSoc(t, blockUser(alice, true))
	aw.requirePresence(t, bob) // bob vanishes from alice's view at once
	if l := b.friendList(t); !eq(l.GetBlocked(), []string{alice}) {
		t.Fatalf("blacklist %v", l.GetBlocked())
	}
	if err := trySend(t, a, bob); client.CodeOf(err) != clientpb.ErrorCode_ERR_BLOCKED {
		t.Fatalf("blocked user's send: %v", err)
	}
	if err := trySend(t, b, alice); client.CodeOf(err) != clientpb.ErrorCode_ERR_BLOCKED {
		t.Fatalf("send to a user one blocked: %v", err)
	}
	b.quiet(t, 200*time.Millisecond)
	c.send(t, bob, "carol is not blocked")
	b.collect(t, 1, 5*time.Second)

	// Friend requests: alice and bob are still friends; carol's friend dave
	// shows the request path.
	dave := n.newUser(t, "dave")
	d := n.connect(t, dave, "web", nil)
	d.mustSoc(t, blockUser(carol, true))
	c.refusedSoc(t, friendRequest(dave, "please"), clientpb.ErrorCode_ERR_BLOCKED)
	d.refusedSoc(t, friendRequest(carol, ""), clientpb.ErrorCode_ERR_BLOCKED)
	d.quiet(t, 200*time.Millisecond)
	if l := d.friendList(t); len(l.GetIncoming()) != 0 {
		t.Fatalf("dave has requests: %v", l.GetIncoming())
	}

	// Presence: alice sees bob offline and hears nothing of his devices;
	// carol, a friend, does.
	res := a.mustSoc(t, presenceQuery(bob)).GetPresence().GetUsers()
	if len(res) != 1 || res[0].GetOnline() || len(res[0].GetPlatforms()) != 0 {
		t.Fatalf("alice's presence query: %v", res)
	}
	if res := c.mustSoc(t, presenceQuery(bob)).GetPresence().GetUsers(); !res[0].GetOnline() {
		t.Fatalf("carol's presence query: %v", res)
	}
	n.connect(t, bob, "phone", nil, platform(clientpb.Platform_PLATFORM_ANDROID))
	cw.requirePresence(t, bob, clientpb.Platform_PLATFORM_WEB, clientpb.Platform_PLATFORM_ANDROID)
	aw.noPresence(t, 300*time.Millisecond)

	t.Run("refusals", func(t *testing.T) {
		b.refusedSoc(t, blockUser(bob, true), clientpb.ErrorCode_ERR_BAD_REQUEST)
		b.refusedSoc(t, blockUser("nobody-"+bob, true), clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT)
	})

	b.mustSoc(t, blockUser(alice, false))
	aw.requirePresence(t, bob, clientpb.Platform_PLATFORM_WEB, clientpb.Platform_PLATFORM_ANDROID)
	if l := b.friendList(t); len(l.GetBlocked()) != 0 {
		t.Fatalf("blacklist after unblock %v", l.GetBlocked())
	}
	a.send(t, bob, "unblocked")
	b.requireText(t, "unblocked")
}

// ---- presence -------------------------------------------------------------

// TestPresencePushedToOnlineFriends: a friend's online devices hear when a
// user comes online, changes platforms and goes offline; a non-friend hears
// nothing; a presence query answers from the sessions, for friends (others
// show offline: TestPresenceFriendsOnly).
func TestPresencePushedToOnlineFriends(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	b := n.connect(t, bob, "web", nil)
	a := n.connect(t, alice, "setup", nil)
	befriend(t, a, b)
	_ = a.Logout()
	<-a.Done()
	// Wait for the logout to reach the grain before listening.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if q := b.mustSoc(t, presenceQuery(alice)).GetPresence().GetUsers(); !q[0].GetOnline() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice still online after logging out")
		}
	}
	bw := n.watch(t, bob, "watch", clientpb.Platform_PLATFORM_DESKTOP)
	cw := n.watch(t, carol, "watch", clientpb.Platform_PLATFORM_DESKTOP)

	web := n.connect(t, alice, "web", nil)
	bw.requirePresence(t, alice, clientpb.Platform_PLATFORM_WEB)
	ios := n.connect(t, alice, "ios", nil, platform(clientpb.Platform_PLATFORM_IOS))
	bw.requirePresence(t, alice, clientpb.Platform_PLATFORM_WEB, clientpb.Platform_PLATFORM_IOS)
	// A second device of a platform already shown changes nothing.
	web2 := n.connect(t, alice, "web2", nil)
	bw.noPresence(t, 300*time.Millisecond)

	q := b.mustSoc(t, presenceQuery(alice, carol, "nobody-"+alice)).GetPresence().GetUsers()
	if len(q) != 3 || q[0].GetUser() != alice || !q[0].GetOnline() ||
		!slices.Equal(q[0].GetPlatforms(), []clientpb.Platform{clientpb.Platform_PLATFORM_WEB, clientpb.Platform_PLATFORM_IOS}) ||
		q[1].GetOnline() || q[2].GetOnline() {
		t.Fatalf("presence query: %v", q)
	}
	many := make([]string, 201)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	b.refusedSoc(t, presenceQuery(many...), clientpb.ErrorCode_ERR_BAD_REQUEST)
	b.refusedSoc(t, presenceQuery("bad/id"), clientpb.ErrorCode_ERR_BAD_REQUEST)

	_ = ios.Close()
	bw.requirePresence(t, alice, clientpb.Platform_PLATFORM_WEB)
	_ = web2.Close()
	bw.noPresence(t, 300*time.Millisecond)
	_ = web.Logout()
	bw.requirePresence(t, alice)
	cw.noPresence(t, 100*time.Millisecond) // carol is no friend: she heard nothing
}

// ---- broadcast ------------------------------------------------------------

// broadcast calls POST /v1/admin/broadcast; an error answer is a *client.Error.
func broadcast(t *testing.T, n *testNode, token string, body map[string]any) (map[string]any, error) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, n.http+"/v1/admin/broadcast", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if e, ok := out["error"].(map[string]any); ok {
		code, _ := e["code"].(string)
		msg, _ := e["message"].(string)
		return nil, &client.Error{Code: clientpb.ErrorCode(clientpb.ErrorCode_value[code]), Message: msg}
	}
	return out, nil
}

// TestBroadcastReachesAllOrOnlineUsers: an admin broadcast lands in every
// user's timeline in conversation s:<channel> (offline users get it through
// sync), online devices get it pushed; a retry with the same id is a no-op;
// "online only" skips users without a session; users may read the channel's
// history; a user token is refused.
func TestBroadcastReachesAllOrOnlineUsers(t *testing.T) {
	n := startNode(t, nil)
	u1, u2, u3 := n.newUser(t, "u1"), n.newUser(t, "u2"), n.newUser(t, "u3")
	d1 := n.connect(t, u1, "web", nil)
	d3 := n.connect(t, u3, "web", nil)
	admin, _, _ := n.admin.Issue("ops", true)

	res, err := broadcast(t, n, admin, map[string]any{"id": "maint-1", "content": map[string]any{"text": "maintenance at 22:00"}})
	if err != nil || res["users"] != 3.0 || res["online"] != 2.0 || res["conversation_id"] != "s:system" || res["duplicate"] == true {
		t.Fatalf("broadcast = %v, %v", res, err)
	}
	for _, d := range []*device{d1, d3} {
		got := d.collect(t, 1, 5*time.Second)
		m := got[0].GetMessage()
		if m.GetConversationId() != "s:system" || m.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM ||
			m.GetContent().GetText() != "maintenance at 22:00" || m.GetClientMsgId() != "maint-1" {
			t.Fatalf("%s got %v", d.user, m)
		}
	}
	res, err = broadcast(t, n, admin, map[string]any{"id": "maint-1", "content": map[string]any{"text": "maintenance at 22:00"}})
	if err != nil || res["duplicate"] != true || res["users"] != 3.0 {
		t.Fatalf("retry = %v, %v", res, err)
	}
	d1.quiet(t, 300*time.Millisecond)

	res, err = broadcast(t, n, admin, map[string]any{"channel": "news", "online_only": true, "content": map[string]any{"emoji": "📣"}})
	if err != nil || res["users"] != 2.0 || res["online"] != 2.0 || res["conversation_id"] != "s:news" {
		t.Fatalf("online-only broadcast = %v, %v", res, err)
	}
	for _, d := range []*device{d1, d3} {
		if m := d.collect(t, 1, 5*time.Second)[0].GetMessage(); m.GetConversationId() != "s:news" || m.GetContent().GetEmoji() != "📣" {
			t.Fatalf("%s got %v", d.user, m)
		}
	}

	// u2 was offline: the first broadcast waits in the timeline, the
	// online-only one never reached it.
	d2 := n.connect(t, u2, "web", u64(0))
	got := d2.collect(t, 1, 5*time.Second)
	if got[0].GetMessage().GetConversationId() != "s:system" || got[0].GetSeq() != 1 {
		t.Fatalf("u2 synced %v", got)
	}
	d2.quiet(t, 300*time.Millisecond)

	h, err := d1.History(ctx(t), "s:system", 0, 10)
	if err != nil || len(h.GetEntries()) != 1 || h.GetEntries()[0].GetMessage().GetContent().GetText() != "maintenance at 22:00" {
		t.Fatalf("history of s:system = %v, %v", h, err)
	}
	// A broadcast is marked read like any conversation, on the reader's
	// devices only, and cannot be recalled by a user.
	bm := h.GetEntries()[0].GetMessage()
	d1.markRead(t, "s:system", bm.GetId())
	if ev := d1.until(t, 5*time.Second, "READ", isEvent(clientpb.EventType_EVENT_READ)).GetMessage(); ev.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM {
		t.Fatalf("read event %v", ev)
	}
	if c := d1.conversations(t)["s:system"]; c.GetUnread() != 0 || c.GetReadMsgId() != bm.GetId() {
		t.Fatalf("broadcast conversation after reading: %v", c)
	}
	if err := d1.recall(t, "s:system", bm.GetId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("user recalls a broadcast: %v", err)
	}

	t.Run("refusals", func(t *testing.T) {
		if _, err := broadcast(t, n, n.token(t, u1), map[string]any{"content": map[string]any{"text": "x"}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("user token: %v", err)
		}
		for name, body := range map[string]map[string]any{
			"no content":  {"channel": "x"},
			"empty text":  {"content": map[string]any{"text": ""}},
			"bad channel": {"channel": "a/b", "content": map[string]any{"text": "x"}},
			"bad id":      {"id": "a/b", "content": map[string]any{"text": "x"}},
			"event":       {"content": map[string]any{"event": map[string]any{"type": "EVENT_FRIEND_ADDED"}}},
		} {
			if _, err := broadcast(t, n, admin, body); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
}
