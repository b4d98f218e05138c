package e2e

import (
	"slices"
	"testing"
	"time"

	"actorim/client"
	"actorim/ids"
	"actorim/node"
	"actorim/protos/clientpb"
)

func (d *device) markRead(t *testing.T, conv string, msgID uint64) {
	t.Helper()
	d.op(t, &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: conv, MsgId: msgID}}})
}

func (d *device) conversations(t *testing.T) map[string]*clientpb.Conversation {
	t.Helper()
	res := d.op(t, &clientpb.Frame{Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}})
	out := map[string]*clientpb.Conversation{}
	for _, c := range res.GetConversations().GetConversations() {
		out[c.GetConversationId()] = c
	}
	return out
}

func (d *device) recall(t *testing.T, conv string, msgID uint64) error {
	_, err := d.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Recall{Recall: &clientpb.Recall{ConversationId: conv, MsgId: msgID}}})
	return err
}

// TestReceiptPrivate: reading up to a message tells the other party and the
// reader's other devices, and clears the reader's unread count.
func TestReceiptPrivate(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	b2 := n.connect(t, bob, "b2", nil)
	conv := ids.Private(alice, bob)
	a.send(t, bob, "one")
	second := a.send(t, bob, "two")
	b.collect(t, 2, waitPush)
	b2.collect(t, 2, waitPush)
	if c := b.conversations(t)[conv]; c.GetUnread() != 2 || c.GetLastMessage().GetContent().GetText() != "two" {
		t.Fatalf("bob's conversation before reading: %v", c)
	}
	if c := a.conversations(t)[conv]; c.GetUnread() != 0 {
		t.Fatalf("alice's own messages count as unread: %v", c)
	}

	b.markRead(t, conv, second.GetMsgId())
	for _, d := range []*device{a, b2, b} {
		ev := d.until(t, waitPush, "READ", isEvent(clientpb.EventType_EVENT_READ)).GetMessage().GetContent().GetEvent()
		if ev.GetActor() != bob || ev.GetMsgId() != second.GetMsgId() {
			t.Fatalf("%s/%s: read event %v", d.user, d.id, ev)
		}
	}
	c := b.conversations(t)[conv]
	if c.GetUnread() != 0 || c.GetReadMsgId() != second.GetMsgId() || c.GetLastMessage().GetContent().GetText() != "two" {
		t.Fatalf("bob's conversation after reading: %v", c)
	}
	// Reading the first of two new messages leaves one unread.
	third, fourth := a.send(t, bob, "three"), a.send(t, bob, "four")
	_ = fourth
	b.markRead(t, conv, third.GetMsgId())
	if c := b.conversations(t)[conv]; c.GetUnread() != 1 {
		t.Fatalf("after reading three of four: %v", c)
	}
	// Nobody marks a conversation they are not in.
	_, err := b.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: ids.Private(alice, "zz-"+bob), MsgId: 1}}})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("read in another conversation: %v", err)
	}
}

// TestReceiptGroup: group read marks give per-message read counts, with the
// readers listed on request; the sender is not counted.
func TestReceiptGroup(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	gid := newGroupID("rcpt")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
	m1 := a.sendGroup(t, gid, "m1")
	m2 := a.sendGroup(t, gid, "m2")
	b.markRead(t, ids.Group(gid), m2.GetMsgId())
	c.markRead(t, ids.Group(gid), m1.GetMsgId())
	a.markRead(t, ids.Group(gid), m2.GetMsgId()) // the sender's own mark is not counted

	st := a.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_ReadStatus{ReadStatus: &clientpb.GroupRequest_MsgIDs{MsgIds: []uint64{m1.GetMsgId(), m2.GetMsgId()}}}}).GetReadStatus()
	if got := st.GetMessages(); len(got) != 2 || got[0].GetReadCount() != 2 || got[1].GetReadCount() != 1 {
		t.Fatalf("read status %v", st)
	}
	rd := b.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Readers{Readers: &clientpb.GroupRequest_MsgID{MsgId: m1.GetMsgId()}}}).GetReadStatus()
	if got := rd.GetMessages(); len(got) != 1 || !slices.Equal(got[0].GetReaders(), []string{bob, carol}) {
		t.Fatalf("readers %v", rd)
	}
	// The reader's conversation entry is read up to the mark.
	if cv := b.conversations(t)[ids.Group(gid)]; cv.GetUnread() != 0 || cv.GetReadMsgId() != m2.GetMsgId() {
		t.Fatalf("bob's group conversation %v", cv)
	}
	if cv := c.conversations(t)[ids.Group(gid)]; cv.GetUnread() != 1 {
		t.Fatalf("carol's group conversation %v", cv)
	}
	out := n.newUser(t, "out")
	x := n.connect(t, out, "x", nil)
	if _, err := x.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: ids.Group(gid), MsgId: m1.GetMsgId()}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_MEMBER {
		t.Fatalf("outsider marks read: %v", err)
	}
}

// TestConversationList: one entry per conversation with its last message,
// unread count, mention flag, pinned first.
func TestConversationList(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	gid := newGroupID("list")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
	c.sendGroup(t, gid, "hey @bob", bob)
	c.sendGroup(t, gid, "and all")
	a.send(t, bob, "private hello")
	b.until(t, waitPush, "private hello", isText("private hello"))

	list := b.conversations(t)
	g, p := list[ids.Group(gid)], list[ids.Private(alice, bob)]
	if g.GetUnread() != 2 || !g.GetMentioned() || g.GetLastMessage().GetContent().GetText() != "and all" ||
		g.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		t.Fatalf("group entry %v", g)
	}
	if p.GetUnread() != 1 || p.GetMentioned() || p.GetLastMessage().GetContent().GetText() != "private hello" {
		t.Fatalf("private entry %v", p)
	}
	// Newest first; pinning moves the group to the top.
	res := b.op(t, &clientpb.Frame{Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}}).GetConversations().GetConversations()
	if len(res) != 2 || res[0].GetConversationId() != ids.Private(alice, bob) {
		t.Fatalf("order %v", res)
	}
	b.op(t, &clientpb.Frame{Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{ConversationId: ids.Group(gid), Pinned: boolp(true)}}})
	res = b.op(t, &clientpb.Frame{Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}}).GetConversations().GetConversations()
	if res[0].GetConversationId() != ids.Group(gid) || !res[0].GetPinned() {
		t.Fatalf("pinned order %v", res)
	}
	// Mentions are checked: only members (or "all") may be mentioned.
	_, err := c.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text("x"),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Mentions: []string{"stranger"}})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("mention of a non-member: %v", err)
	}
}

// TestRecall: the sender recalls within the window; both sides get a
// RECALLED event and reads show the message recalled; others may not
// recall it; after the window it is refused.
func TestRecall(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	conv := ids.Private(alice, bob)
	keep := a.send(t, bob, "keep me")
	oops := a.send(t, bob, "oops")
	b.collect(t, 2, waitPush)
	if err := b.recall(t, conv, oops.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("bob recalls alice's message: %v", err)
	}
	if err := a.recall(t, conv, oops.GetMsgId()); err != nil {
		t.Fatalf("recall: %v", err)
	}
	for _, d := range []*device{a, b} {
		ev := d.until(t, waitPush, "RECALLED", isEvent(clientpb.EventType_EVENT_RECALLED)).GetMessage().GetContent().GetEvent()
		if ev.GetMsgId() != oops.GetMsgId() || ev.GetActor() != alice {
			t.Fatalf("%s: recall event %v", d.user, ev)
		}
	}
	h, err := b.History(ctx(t), conv, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.GetEntries() {
		m := e.GetMessage()
		switch m.GetId() {
		case oops.GetMsgId():
			if !m.GetRecalled() || m.GetContent() != nil {
				t.Fatalf("recalled message in history: %v", m)
			}
		case keep.GetMsgId():
			if m.GetRecalled() || m.GetContent().GetText() != "keep me" {
				t.Fatalf("kept message in history: %v", m)
			}
		}
	}
	if c := b.conversations(t)[conv]; c.GetUnread() != 1 {
		t.Fatalf("the recalled message still counts as unread: %v", c)
	}
	if err := a.recall(t, conv, 1<<60); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("recall of an unknown id: %v", err)
	}

	t.Run("group", func(t *testing.T) {
		carol := n.newUser(t, "carol")
		c := n.connect(t, carol, "c", nil)
		gid := newGroupID("recall")
		a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
		m := c.sendGroup(t, gid, "regret")
		if err := b.recall(t, ids.Group(gid), m.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("another member recalls: %v", err)
		}
		if err := a.recall(t, ids.Group(gid), m.GetMsgId()); err != nil { // the owner may
			t.Fatalf("owner recalls: %v", err)
		}
		b.until(t, waitPush, "RECALLED", isEvent(clientpb.EventType_EVENT_RECALLED))
		h, err := b.History(ctx(t), ids.Group(gid), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		_ = h
		h, err = b.History(ctx(t), ids.Group(gid), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range h.GetEntries() {
			if e.GetMessage().GetId() == m.GetMsgId() {
				found = e.GetMessage().GetRecalled()
			}
		}
		if !found {
			t.Fatalf("group history does not show the recall: %v", h)
		}
	})

	t.Run("after the window", func(t *testing.T) {
		n := startNode(t, func(c *node.Config) { c.Actors.RecallWindow = 50 * time.Millisecond })
		alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
		a := n.connect(t, alice, "a", nil)
		ack := a.send(t, bob, "too late")
		time.Sleep(100 * time.Millisecond)
		if err := a.recall(t, ids.Private(alice, bob), ack.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_RECALL_EXPIRED {
			t.Fatalf("recall after the window: %v", err)
		}
	})
}

// TestTyping: typing is signalled to the other side's online devices and
// to a group's online members, and never stored.
func TestTyping(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	before := b.login.GetLatestSeq()
	a.op(t, &clientpb.Frame{Body: &clientpb.Frame_Typing{Typing: &clientpb.Typing{To: bob, Typing: true}}})
	sig := waitSignal(t, b)
	if ty := sig.GetTyping(); ty.GetFrom() != alice || ty.GetConversationId() != ids.Private(alice, bob) || !ty.GetTyping() {
		t.Fatalf("typing signal %v", sig)
	}
	res, err := b.Sync(ctx(t), before, 10)
	if err != nil || len(res.GetEntries()) != 0 {
		t.Fatalf("typing was stored: %v, %v", res, err)
	}

	gid := newGroupID("typing")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
	c.op(t, &clientpb.Frame{Body: &clientpb.Frame_Typing{Typing: &clientpb.Typing{To: gid, ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Typing: true}}})
	for _, d := range []*device{a, b} {
		if ty := waitSignal(t, d).GetTyping(); ty.GetFrom() != carol || ty.GetConversationId() != ids.Group(gid) {
			t.Fatalf("%s: group typing %v", d.user, ty)
		}
	}
	select {
	case s := <-c.Signals():
		t.Fatalf("the typist got its own signal %v", s)
	case <-time.After(200 * time.Millisecond):
	}
	out := n.newUser(t, "out")
	x := n.connect(t, out, "x", nil)
	_, err = x.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Typing{Typing: &clientpb.Typing{To: gid, ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Typing: true}}})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_MEMBER {
		t.Fatalf("outsider types in the group: %v", err)
	}
}

// waitSignal returns the next typing signal (presence signals are skipped).
func waitSignal(t *testing.T, d *device) *clientpb.Signal {
	t.Helper()
	deadline := time.After(waitPush)
	for {
		select {
		case s := <-d.Signals():
			if s.GetTyping() != nil {
				return s
			}
		case <-deadline:
			t.Fatalf("%s: no typing signal", d.user)
			return nil
		}
	}
}
