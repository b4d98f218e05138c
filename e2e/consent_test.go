package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// Tests of consent (who may put something into another user's timeline)
// and of the rules that decide what a user reads.

func createReq(members ...string) *clientpb.GroupRequest {
	return &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{
		JoinPolicy: clientpb.JoinPolicy_JOIN_POLICY_OPEN, Members: members}}}
}

func inviteReq(users ...string) *clientpb.GroupRequest {
	return &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: users}}}
}

func readReq(conv string, msgID uint64) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: conv, MsgId: msgID}}}
}

// latestSeq is the newest seq of the device's user's timeline.
func (d *device) latestSeq(t *testing.T) uint64 {
	t.Helper()
	res, err := d.Sync(ctx(t), 0, 1)
	if err != nil {
		t.Fatalf("%s: sync: %v", d.user, err)
	}
	return res.GetLatestSeq()
}

// entriesAfter returns the device's user's timeline entries after seq.
func (d *device) entriesAfter(t *testing.T, seq uint64) []*clientpb.Entry {
	t.Helper()
	res, err := d.Sync(ctx(t), seq, 500)
	if err != nil {
		t.Fatalf("%s: sync: %v", d.user, err)
	}
	return res.GetEntries()
}

func eventTypes(es []*clientpb.Entry) []clientpb.EventType {
	out := make([]clientpb.EventType, len(es))
	for i, e := range es {
		out[i] = e.GetMessage().GetContent().GetEvent().GetType()
	}
	return out
}

// TestGroupCreateRespectsBlacklistAndFriendsOnly: putting a user into a
// group takes the consent a private message takes. Creating a group with, or
// inviting, a user who blocked the caller or whom the caller blocked is
// refused with ERR_BLOCKED, and a friends-only user who is not the caller's
// friend with ERR_NOT_FRIEND; the whole request is refused and nothing
// reaches the user. A friend adds a friends-only user; anyone may join an
// open group by their own request.
func TestGroupCreateRespectsBlacklistAndFriendsOnly(t *testing.T) {
	n := shared
	owner, victim, shy, pal, pest := n.newUser(t, "owner"), n.newUser(t, "victim"), n.newUser(t, "shy"), n.newUser(t, "pal"), n.newUser(t, "pest")
	o := n.connect(t, owner, "o", nil)
	v := n.connect(t, victim, "v", nil)
	s := n.connect(t, shy, "s", nil)
	p := n.connect(t, pal, "p", nil)
	befriend(t, p, s)
	v.mustSoc(t, blockUser(owner, true))
	s.mustSoc(t, friendsOnly(true))
	o.mustSoc(t, blockUser(pest, true))
	vSeq, sSeq := v.latestSeq(t), s.latestSeq(t)

	gid := newGroupID("consent")
	for _, c := range []struct {
		members []string
		want    clientpb.ErrorCode
	}{
		{[]string{victim}, clientpb.ErrorCode_ERR_BLOCKED},
		{[]string{pal, victim}, clientpb.ErrorCode_ERR_BLOCKED},
		{[]string{pal, shy}, clientpb.ErrorCode_ERR_NOT_FRIEND},
		{[]string{pest}, clientpb.ErrorCode_ERR_BLOCKED}, // the creator's own blacklist
	} {
		if code := o.groupErr(t, gid, createReq(c.members...)); code != c.want {
			t.Fatalf("create with %v: %v, want %v", c.members, code, c.want)
		}
	}
	// The refused creates left the id free and stored nothing.
	o.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, pal)
	p.until(t, waitPush, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED))
	if code := o.groupErr(t, gid, inviteReq(victim)); code != clientpb.ErrorCode_ERR_BLOCKED {
		t.Fatalf("invite of a user who blocked the inviter: %v", code)
	}
	if code := o.groupErr(t, gid, inviteReq(shy)); code != clientpb.ErrorCode_ERR_NOT_FRIEND {
		t.Fatalf("invite of a friends-only stranger: %v", code)
	}
	v.quiet(t, 300*time.Millisecond)
	if got := v.entriesAfter(t, vSeq); len(got) != 0 {
		t.Fatalf("the victim's timeline gained %v", got)
	}
	if got := s.entriesAfter(t, sSeq); len(got) != 0 {
		t.Fatalf("the friends-only user's timeline gained %v", got)
	}

	// A friend may bring a friends-only user in (any member invites into an
	// open group).
	p.group(t, gid, inviteReq(shy))
	if ev := s.until(t, waitPush, "MEMBER_JOINED", isEvent(clientpb.EventType_EVENT_MEMBER_JOINED)).GetMessage().GetContent().GetEvent(); ev.GetActor() != pal {
		t.Fatalf("joined event %v", ev)
	}
	// Joining by one's own request needs nobody's consent.
	v.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{}}})
	if info := v.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup(); info.GetMemberCount() != 4 {
		t.Fatalf("members after the joins: %v", info)
	}
}

// TestMarkReadCannotSpam: a read mark names a message of a conversation the
// reader is in, or is refused with ERR_NOT_FOUND (a made-up conversation, a
// future id); repeating a mark, or marking below it, stores nothing; one
// real advance stores one receipt for the other party, none when the other
// party blocked the reader.
func TestMarkReadCannotSpam(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	conv := ids.Private(alice, bob)
	start := b.latestSeq(t)

	for i := uint64(1); i <= 20; i++ {
		if _, err := a.Op(ctx(t), readReq(conv, i)); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("mark %d in a conversation without messages: %v", i, err)
		}
	}
	b.quiet(t, 300*time.Millisecond)
	if got := b.entriesAfter(t, start); len(got) != 0 {
		t.Fatalf("marks of nothing reached bob's timeline: %v", got)
	}

	one := b.send(t, alice, "one")
	a.until(t, waitPush, "one", isText("one"))
	other := b.send(t, n.newUser(t, "carol"), "not yours")
	for _, id := range []uint64{one.GetMsgId() + 1000, other.GetMsgId()} {
		if _, err := a.Op(ctx(t), readReq(conv, id)); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("mark of msg %d, not in the conversation: %v", id, err)
		}
	}
	for range 5 {
		a.markRead(t, conv, one.GetMsgId())
	}
	ev := b.until(t, waitPush, "READ", isEvent(clientpb.EventType_EVENT_READ)).GetMessage().GetContent().GetEvent()
	if ev.GetActor() != alice || ev.GetMsgId() != one.GetMsgId() {
		t.Fatalf("receipt %v", ev)
	}
	b.quiet(t, 300*time.Millisecond)

	// Once bob blocked alice, her marks reach her own devices only.
	two := b.send(t, alice, "two")
	a.until(t, waitPush, "two", isText("two"))
	b.mustSoc(t, blockUser(alice, true))
	a.markRead(t, conv, two.GetMsgId())
	a.until(t, waitPush, "own READ", isEvent(clientpb.EventType_EVENT_READ))
	b.quiet(t, 300*time.Millisecond)

	// Bob's timeline holds his messages and the one receipt, nothing more.
	var kinds []string
	for _, e := range b.entriesAfter(t, start) {
		m := e.GetMessage()
		switch {
		case m.GetContent().GetEvent() != nil:
			kinds = append(kinds, m.GetContent().GetEvent().GetType().String())
		default:
			kinds = append(kinds, m.GetContent().GetText())
		}
	}
	if !slices.Equal(kinds, []string{"one", "not yours", "EVENT_READ", "two"}) {
		t.Fatalf("bob's timeline after the marks: %q", kinds)
	}
	if c := a.conversations(t)[conv]; c.GetReadMsgId() != two.GetMsgId() || c.GetUnread() != 0 {
		t.Fatalf("alice's conversation %v", c)
	}
}

// TestMarkReadFutureIDKeepsUnread: a mark of an id not sent yet is refused,
// so it cannot hide the unread count of the messages that follow.
func TestMarkReadFutureIDKeepsUnread(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	conv := ids.Private(alice, bob)
	one := a.send(t, bob, "one")
	b.until(t, waitPush, "one", isText("one"))
	if _, err := b.Op(ctx(t), readReq(conv, one.GetMsgId()+100)); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("mark of a future id: %v", err)
	}
	a.send(t, bob, "two")
	b.until(t, waitPush, "two", isText("two"))
	if c := b.conversations(t)[conv]; c.GetUnread() != 2 || c.GetReadMsgId() != 0 {
		t.Fatalf("bob's conversation after the refused mark: %v", c)
	}

	// In a group, the group decides: a member's future id is refused too.
	gid := newGroupID("future")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	g1 := a.sendGroup(t, gid, "g1")
	if _, err := b.Op(ctx(t), readReq(ids.Group(gid), g1.GetMsgId()+100)); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("group mark of a future id: %v", err)
	}
	b.markRead(t, ids.Group(gid), g1.GetMsgId())
	st := a.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_ReadStatus{ReadStatus: &clientpb.GroupRequest_MsgIDs{MsgIds: []uint64{g1.GetMsgId(), g1.GetMsgId() + 100}}}}).GetReadStatus()
	if got := st.GetMessages(); len(got) != 2 || got[0].GetReadCount() != 1 || got[1].GetReadCount() != 0 {
		t.Fatalf("read status %v", st)
	}
}

// TestConversationUpdateUnknown: pinning or muting a conversation that has
// no entry yet in the caller's list is answered at once (it crashed the
// user grain) and takes effect when the conversation appears.
func TestConversationUpdateUnknown(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	conv := ids.Private(alice, bob)
	for _, c := range []string{conv, "s:news-" + alice} {
		if _, err := a.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{
			ConversationId: c, Pinned: boolp(true)}}}); err != nil {
			t.Fatalf("pin %s: %v", c, err)
		}
		ev := a.until(t, waitPush, "CONVERSATION_UPDATED", isEvent(clientpb.EventType_EVENT_CONVERSATION_UPDATED)).GetMessage().GetContent().GetEvent()
		if ev.GetConversationId() != c || !ev.GetPinned() || ev.GetMuted() {
			t.Fatalf("update event %v", ev)
		}
	}
	requireAlive(t, a)
	b := n.connect(t, bob, "b", nil)
	b.send(t, alice, "hello")
	a.until(t, waitPush, "hello", isText("hello"))
	if c := a.conversations(t)[conv]; !c.GetPinned() || c.GetUnread() != 1 {
		t.Fatalf("conversation after the pin: %v", c)
	}
}

// TestKickedMemberHistoryRule: what a member received while a member stays
// theirs, nothing sent after. History and Sync agree: a former member's
// History of the group is the group's entries of their own timeline, up to
// the kick, over WebSocket and HTTP; a user who never was a member gets
// ERR_NOT_MEMBER (HTTP 403).
func TestKickedMemberHistoryRule(t *testing.T) {
	n := shared
	owner, member, outsider := n.newUser(t, "owner"), n.newUser(t, "member"), n.newUser(t, "outsider")
	o := n.connect(t, owner, "o", nil)
	m := n.connect(t, member, "m", nil)
	x := n.connect(t, outsider, "x", nil)
	gid := newGroupID("kicked")
	conv := ids.Group(gid)
	o.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, member)
	o.sendGroup(t, gid, "before 1")
	m.sendGroup(t, gid, "before 2")
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{member}}}})
	kicked := m.until(t, waitPush, "MEMBER_KICKED", isEvent(clientpb.EventType_EVENT_MEMBER_KICKED))
	o.sendGroup(t, gid, "after")

	var synced []uint64 // the group's entries in the member's timeline, newest first
	for _, e := range m.entriesAfter(t, 0) {
		if e.GetMessage().GetConversationId() == conv {
			synced = append([]uint64{e.GetSeq()}, synced...)
		}
	}
	hist, err := m.History(ctx(t), conv, 0, 100)
	if err != nil {
		t.Fatalf("former member's history: %v", err)
	}
	if !slices.Equal(seqs(hist.GetEntries()), synced) || synced[0] != kicked.GetSeq() {
		t.Fatalf("history seqs %v, sync seqs %v (kick at %d)", seqs(hist.GetEntries()), synced, kicked.GetSeq())
	}
	var said []string
	for _, e := range hist.GetEntries() {
		if txt := e.GetMessage().GetContent().GetText(); txt != "" {
			said = append(said, txt)
		}
	}
	if !slices.Equal(said, []string{"before 2", "before 1"}) {
		t.Fatalf("former member's history texts %q", said)
	}
	h := &client.HTTP{BaseURL: n.http, Token: n.token(t, member)}
	if hh, err := h.History(ctx(t), conv, 0, 100); err != nil || !slices.Equal(seqs(hh.GetEntries()), synced) {
		t.Fatalf("former member's history over HTTP: %v, %v", hh, err)
	}

	if _, err := x.History(ctx(t), conv, 0, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_MEMBER {
		t.Fatalf("outsider's history: %v", err)
	}
	status, code, _ := httpCall(t, http.MethodGet, n.http+"/v1/conversations/"+conv+"/messages", n.token(t, outsider), nil)
	if status != http.StatusForbidden || code != clientpb.ErrorCode_ERR_NOT_MEMBER {
		t.Fatalf("outsider's history over HTTP: %d %v", status, code)
	}
}

// TestPresenceFriendsOnly: a presence query shows a user online only to
// their friends (and to themselves); to anyone else they are offline.
func TestPresenceFriendsOnly(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	befriend(t, a, b)
	online := func(d *device, user string) bool {
		t.Helper()
		return d.mustSoc(t, presenceQuery(user)).GetPresence().GetUsers()[0].GetOnline()
	}
	if !online(b, alice) || !online(a, alice) {
		t.Fatal("a friend, or the user, sees the user offline")
	}
	if online(c, alice) || online(c, bob) {
		t.Fatal("a stranger sees who is online")
	}
	p := c.mustSoc(t, presenceQuery(alice)).GetPresence().GetUsers()[0]
	if len(p.GetPlatforms()) != 0 {
		t.Fatalf("a stranger sees platforms: %v", p)
	}
	befriend(t, c, a)
	if !online(c, alice) {
		t.Fatal("a new friend sees the user offline")
	}
}
