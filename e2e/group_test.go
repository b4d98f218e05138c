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

// Helpers for the group and conversation tests.

func newGroupID(prefix string) string {
	return prefix + "-" + cmid() + "-" + time.Now().Format("150405.000")
}

func (d *device) group(t *testing.T, gid string, req *clientpb.GroupRequest) *clientpb.Result {
	t.Helper()
	res, err := d.Group(ctx(t), gid, req)
	if err != nil {
		t.Fatalf("%s: group %s %T: %v", d.user, gid, req.GetOp(), err)
	}
	return res
}

// groupErr performs req and returns the error code it was refused with.
func (d *device) groupErr(t *testing.T, gid string, req *clientpb.GroupRequest) clientpb.ErrorCode {
	t.Helper()
	_, err := d.Group(ctx(t), gid, req)
	return client.CodeOf(err)
}

func (d *device) createGroup(t *testing.T, gid string, policy clientpb.JoinPolicy, members ...string) *clientpb.GroupInfo {
	t.Helper()
	return d.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{
		Name: "team " + gid, JoinPolicy: policy, Members: members}}}).GetGroup()
}

func (d *device) sendGroup(t *testing.T, gid, text string, mentions ...string) *clientpb.SendAck {
	t.Helper()
	ack, err := d.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text(text),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Mentions: mentions})
	if err != nil {
		t.Fatalf("%s sends to group %s: %v", d.user, gid, err)
	}
	return ack
}

func (d *device) sendGroupErr(t *testing.T, gid, text string) clientpb.ErrorCode {
	t.Helper()
	_, err := d.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text(text),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP})
	if err == nil {
		t.Fatalf("%s's send to %s was accepted, want a refusal", d.user, gid)
	}
	return client.CodeOf(err)
}

func (d *device) op(t *testing.T, f *clientpb.Frame) *clientpb.Result {
	t.Helper()
	res, err := d.Op(ctx(t), f)
	if err != nil {
		t.Fatalf("%s: %T: %v", d.user, f.GetBody(), err)
	}
	return res
}

// until collects pushed entries, acking them, until one satisfies ok, and
// returns it. It fails after within.
func (d *device) until(t *testing.T, within time.Duration, what string, ok func(*clientpb.Entry) bool) *clientpb.Entry {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case p, open := <-d.Pushes():
			if !open {
				t.Fatalf("%s/%s: closed while waiting for %s", d.user, d.id, what)
			}
			es := p.GetEntries()
			if len(es) > 0 {
				if err := d.Ack(es[len(es)-1].GetSeq()); err != nil {
					t.Fatalf("ack: %v", err)
				}
			}
			for _, e := range es {
				if ok(e) {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("%s/%s: no %s within %v", d.user, d.id, what, within)
		}
	}
}

func isEvent(typ clientpb.EventType) func(*clientpb.Entry) bool {
	return func(e *clientpb.Entry) bool { return e.GetMessage().GetContent().GetEvent().GetType() == typ }
}

func isText(text string) func(*clientpb.Entry) bool {
	return func(e *clientpb.Entry) bool { return e.GetMessage().GetContent().GetText() == text }
}

const waitPush = 5 * time.Second

// TestGroupChatFanout: a member's message is stored once per member and
// pushed to every member's online devices (the sender's other devices too),
// in each member's timeline order, after the creation event.
func TestGroupChatFanout(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a-web", nil)
	a2 := n.connect(t, alice, "a-phone", nil, platform(clientpb.Platform_PLATFORM_IOS))
	b := n.connect(t, bob, "b-web", nil)
	c := n.connect(t, carol, "c-web", nil, jsonCodec)
	gid := newGroupID("fan")

	info := a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
	if info.GetOwner() != alice || info.GetMemberCount() != 3 || info.GetJoinPolicy() != clientpb.JoinPolicy_JOIN_POLICY_OPEN {
		t.Fatalf("created %v", info)
	}
	for _, d := range []*device{a, a2, b, c} {
		ev := d.until(t, waitPush, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED)).GetMessage()
		if ev.GetConversationId() != ids.Group(gid) || ev.GetContent().GetEvent().GetActor() != alice {
			t.Fatalf("%s: creation event %v", d.user, ev)
		}
	}
	var acks []*clientpb.SendAck
	for _, text := range []string{"one", "two", "three"} {
		acks = append(acks, a.sendGroup(t, gid, text))
	}
	if acks[0].GetConversationId() != ids.Group(gid) || acks[1].GetSeq() != acks[0].GetSeq()+1 {
		t.Fatalf("acks %v", acks)
	}
	for _, d := range []*device{b, c, a2} {
		got := d.collect(t, 3, waitPush)
		if !eq(texts(got), []string{"one", "two", "three"}) {
			t.Fatalf("%s/%s got %q", d.user, d.id, texts(got))
		}
		requireConsecutive(t, got, got[0].GetSeq())
		for i, e := range got {
			m := e.GetMessage()
			if m.GetFrom() != alice || m.GetTo() != gid || m.GetId() != acks[i].GetMsgId() ||
				m.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
				t.Fatalf("%s entry %d = %v", d.user, i, m)
			}
		}
	}
	// The sending device has its acks and no pushes of its own messages.
	a.quiet(t, 300*time.Millisecond)

	// A retry with the same client message id is deduplicated.
	s := &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text("once"), ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}
	first, err := a.Send(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Send(ctx(t), s)
	if err != nil || !again.GetDuplicate() || again.GetMsgId() != first.GetMsgId() || again.GetSeq() != first.GetSeq() {
		t.Fatalf("retry: %v, %v; first %v", again, err, first)
	}
	b.until(t, waitPush, "once", isText("once"))
	b.quiet(t, 300*time.Millisecond)

	// Group history pages the group's messages for members.
	h, err := b.History(ctx(t), ids.Group(gid), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	for _, e := range h.GetEntries() {
		if txt := e.GetMessage().GetContent().GetText(); txt != "" {
			hist = append(hist, txt)
		}
	}
	if !eq(hist, []string{"once", "three", "two", "one"}) {
		t.Fatalf("history %q", hist)
	}
}

// TestGroupOfflineMemberCatchesUp: a member offline during events and
// messages receives them all on reconnect with its last seq.
func TestGroupOfflineMemberCatchesUp(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	b := n.connect(t, bob, "b-web", nil)
	last := b.login.GetLatestSeq()
	b.Close()
	a := n.connect(t, alice, "a-web", nil)
	gid := newGroupID("off")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_APPROVAL, bob)
	a.sendGroup(t, gid, "while you were away")
	a.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Update_{Update: &clientpb.GroupRequest_Update{Notice: strp("read me")}}})

	b = n.connect(t, bob, "b-web", u64(last))
	got := b.collect(t, 3, waitPush)
	requireConsecutive(t, got, last+1)
	if got[0].GetMessage().GetContent().GetEvent().GetType() != clientpb.EventType_EVENT_GROUP_CREATED ||
		texts(got)[1] != "while you were away" ||
		got[2].GetMessage().GetContent().GetEvent().GetGroup().GetNotice() != "read me" {
		t.Fatalf("bob caught up with %v", got)
	}
}

func strp(s string) *string { return &s }

// TestGroupRefusals: every forbidden group action is refused with its code
// and stores nothing.
func TestGroupRefusals(t *testing.T) {
	n := shared
	owner, admin, member, outsider := n.newUser(t, "own"), n.newUser(t, "adm"), n.newUser(t, "mem"), n.newUser(t, "out")
	o := n.connect(t, owner, "o", nil)
	ad := n.connect(t, admin, "ad", nil)
	m := n.connect(t, member, "m", nil)
	x := n.connect(t, outsider, "x", nil)
	gid := newGroupID("ref")
	o.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_APPROVAL, admin, member)
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: admin, Role: clientpb.GroupRole_GROUP_ROLE_ADMIN}}})

	t.Run("non-member sends, reads history, lists members", func(t *testing.T) {
		if code := x.sendGroupErr(t, gid, "let me in"); code != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("outsider send: %v", code)
		}
		if _, err := x.History(ctx(t), ids.Group(gid), 0, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("outsider history: %v", err)
		}
		if code := x.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}); code != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("outsider members: %v", code)
		}
		if code := x.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{member}}}}); code != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("outsider kicks: %v", code)
		}
	})
	t.Run("member manages", func(t *testing.T) {
		if code := m.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteAll{MuteAll: &clientpb.GroupRequest_Flag{On: true}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("member mutes all: %v", code)
		}
		if code := ad.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("admin dissolves: %v", code)
		}
		if code := ad.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{owner}}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("admin kicks owner: %v", code)
		}
		if code := o.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Leave{Leave: &clientpb.GroupRequest_Empty{}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("owner leaves: %v", code)
		}
	})
	t.Run("muted member speaks", func(t *testing.T) {
		ad.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteMember_{MuteMember: &clientpb.GroupRequest_MuteMember{User: member, DurationMs: 60_000}}})
		if code := m.sendGroupErr(t, gid, "can you hear me"); code != clientpb.ErrorCode_ERR_MUTED {
			t.Fatalf("muted member: %v", code)
		}
		ad.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteMember_{MuteMember: &clientpb.GroupRequest_MuteMember{User: member}}})
		m.sendGroup(t, gid, "unmuted")
	})
	t.Run("mute all: members silent, admins speak", func(t *testing.T) {
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteAll{MuteAll: &clientpb.GroupRequest_Flag{On: true}}})
		if code := m.sendGroupErr(t, gid, "hello?"); code != clientpb.ErrorCode_ERR_MUTED {
			t.Fatalf("member under mute all: %v", code)
		}
		ad.sendGroup(t, gid, "admins still speak")
		o.sendGroup(t, gid, "so does the owner")
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteAll{MuteAll: &clientpb.GroupRequest_Flag{On: false}}})
		m.sendGroup(t, gid, "back")
	})
	t.Run("kicked member sends, reads history, gets nothing new", func(t *testing.T) {
		ad.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{member}}}})
		kicked := m.until(t, waitPush, "MEMBER_KICKED", isEvent(clientpb.EventType_EVENT_MEMBER_KICKED))
		if ev := kicked.GetMessage().GetContent().GetEvent(); ev.GetActor() != admin || !slices.Equal(ev.GetUsers(), []string{member}) {
			t.Fatalf("kick event %v", ev)
		}
		if code := m.sendGroupErr(t, gid, "still here?"); code != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("kicked send: %v", code)
		}
		o.sendGroup(t, gid, "after the kick")
		m.quiet(t, 300*time.Millisecond)
		res, err := m.Sync(ctx(t), kicked.GetSeq(), 100)
		if err != nil || len(res.GetEntries()) != 0 {
			t.Fatalf("kicked member's sync after the kick: %v, %v", res, err)
		}
		// History agrees with Sync: what the member received, ending with
		// the kick (TestKickedMemberHistoryRule has the rule in full).
		h, err := m.History(ctx(t), ids.Group(gid), 0, 0)
		if err != nil || len(h.GetEntries()) == 0 || h.GetEntries()[0].GetSeq() != kicked.GetSeq() {
			t.Fatalf("kicked member's history: %v, %v", h, err)
		}
	})
	t.Run("banned user cannot rejoin", func(t *testing.T) {
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Ban{Ban: &clientpb.GroupRequest_BanUsers{Users: []string{member}, Banned: true}}})
		if code := m.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{}}}); code != clientpb.ErrorCode_ERR_BANNED {
			t.Fatalf("banned join: %v", code)
		}
		if code := o.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: []string{member}}}}); code != clientpb.ErrorCode_ERR_BANNED {
			t.Fatalf("banned invite: %v", code)
		}
		ms := o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
		if !slices.Equal(ms.GetBanned(), []string{member}) {
			t.Fatalf("ban list %v", ms.GetBanned())
		}
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Ban{Ban: &clientpb.GroupRequest_BanUsers{Users: []string{member}, Banned: false}}})
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: []string{member}}}})
	})
	t.Run("message to a dissolved group", func(t *testing.T) {
		o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}})
		ad.until(t, waitPush, "GROUP_DISSOLVED", isEvent(clientpb.EventType_EVENT_GROUP_DISSOLVED))
		if code := ad.sendGroupErr(t, gid, "anyone?"); code != clientpb.ErrorCode_ERR_GROUP_DISSOLVED {
			t.Fatalf("send to dissolved: %v", code)
		}
		if code := o.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: []string{outsider}}}}); code != clientpb.ErrorCode_ERR_GROUP_DISSOLVED {
			t.Fatalf("invite to dissolved: %v", code)
		}
		info := ad.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup()
		if !info.GetDissolved() {
			t.Fatalf("info %v", info)
		}
		if _, err := ad.History(ctx(t), ids.Group(gid), 0, 0); err != nil {
			t.Fatalf("a member reads a dissolved group's history: %v", err)
		}
	})
	t.Run("unknown group, taken id, unknown member", func(t *testing.T) {
		if code := x.sendGroupErr(t, "nope-"+gid, "hi"); code != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("unknown group: %v", code)
		}
		if code := x.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{}}}); code != clientpb.ErrorCode_ERR_CONFLICT {
			t.Fatalf("taken id: %v", code)
		}
		if code := x.groupErr(t, "new-"+gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Members: []string{"nobody-" + gid}}}}); code != clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT {
			t.Fatalf("unknown member: %v", code)
		}
	})
}

// TestGroupJoinRolesTransfer: approval and open joins, roles, ownership
// transfer, leaving, info updates, and the events each produces.
func TestGroupJoinRolesTransfer(t *testing.T) {
	n := shared
	owner, bob, carol := n.newUser(t, "own"), n.newUser(t, "bob"), n.newUser(t, "carol")
	o := n.connect(t, owner, "o", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	gid := newGroupID("join")
	o.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_APPROVAL)

	// Approval: bob asks, the owner is told, accepts; everyone sees him join.
	b.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{Note: "it's bob"}}})
	req := o.until(t, waitPush, "JOIN_REQUESTED", isEvent(clientpb.EventType_EVENT_JOIN_REQUESTED)).GetMessage().GetContent().GetEvent()
	if req.GetActor() != bob || req.GetNote() != "it's bob" {
		t.Fatalf("join request event %v", req)
	}
	if code := b.sendGroupErr(t, gid, "am I in?"); code != clientpb.ErrorCode_ERR_NOT_MEMBER {
		t.Fatalf("pending member send: %v", code)
	}
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_AnswerJoin{AnswerJoin: &clientpb.GroupRequest_Answer{User: bob, Accept: true}}})
	joined := b.until(t, waitPush, "MEMBER_JOINED", isEvent(clientpb.EventType_EVENT_MEMBER_JOINED)).GetMessage().GetContent().GetEvent()
	if !slices.Equal(joined.GetUsers(), []string{bob}) || joined.GetActor() != owner {
		t.Fatalf("joined event %v", joined)
	}
	// A rejected request tells the requester.
	c.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{}}})
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_AnswerJoin{AnswerJoin: &clientpb.GroupRequest_Answer{User: carol}}})
	c.until(t, waitPush, "JOIN_REJECTED", isEvent(clientpb.EventType_EVENT_JOIN_REJECTED))

	// Open join after an update.
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Update_{Update: &clientpb.GroupRequest_Update{
		Name: strp("renamed"), AvatarUrl: strp("https://example.com/a.png"), JoinPolicy: clientpb.JoinPolicy_JOIN_POLICY_OPEN}}})
	c.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{}}})
	info := c.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup()
	if info.GetName() != "renamed" || info.GetAvatarUrl() != "https://example.com/a.png" || info.GetMemberCount() != 3 {
		t.Fatalf("info %v", info)
	}

	// Roles: only the owner sets them; an admin then manages members.
	if code := b.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: carol, Role: clientpb.GroupRole_GROUP_ROLE_ADMIN}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("member sets role: %v", code)
	}
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: bob, Role: clientpb.GroupRole_GROUP_ROLE_ADMIN}}})
	b.until(t, waitPush, "ROLE_CHANGED", isEvent(clientpb.EventType_EVENT_ROLE_CHANGED))

	// Transfer: carol becomes owner, the old owner an admin, who may leave.
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Transfer{Transfer: &clientpb.GroupRequest_User{User: carol}}})
	ms := c.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
	roles := map[string]clientpb.GroupRole{}
	for _, m := range ms.GetMembers() {
		roles[m.GetUser()] = m.GetRole()
	}
	if roles[carol] != clientpb.GroupRole_GROUP_ROLE_OWNER || roles[owner] != clientpb.GroupRole_GROUP_ROLE_ADMIN || roles[bob] != clientpb.GroupRole_GROUP_ROLE_ADMIN {
		t.Fatalf("roles after transfer %v", roles)
	}
	if code := o.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}); code != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("former owner dissolves: %v", code)
	}
	o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Leave{Leave: &clientpb.GroupRequest_Empty{}}})
	left := c.until(t, waitPush, "MEMBER_LEFT", isEvent(clientpb.EventType_EVENT_MEMBER_LEFT)).GetMessage().GetContent().GetEvent()
	if left.GetActor() != owner || left.GetGroup().GetMemberCount() != 2 {
		t.Fatalf("left event %v", left)
	}
}

// TestGroupSizeLimit: adding members past the configured limit is refused
// with ERR_GROUP_FULL.
func TestGroupSizeLimit(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Actors.MaxGroupMembers = 3 })
	u := []string{n.newUser(t, "u"), n.newUser(t, "u"), n.newUser(t, "u"), n.newUser(t, "u")}
	d := n.connect(t, u[0], "d", nil)
	gid := newGroupID("full")
	if code := d.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Members: u[1:]}}}); code != clientpb.ErrorCode_ERR_GROUP_FULL {
		t.Fatalf("create with 4 of 3: %v", code)
	}
	d.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, u[1], u[2])
	if code := d.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: u[3:]}}}); code != clientpb.ErrorCode_ERR_GROUP_FULL {
		t.Fatalf("fourth member: %v", code)
	}
}

// TestGroupSilentNotifications: a member who mutes a group still receives
// and syncs its messages, flagged silent; other members' are not.
func TestGroupSilentNotifications(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	b2 := n.connect(t, bob, "b2", nil)
	gid := newGroupID("silent")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	b.op(t, &clientpb.Frame{Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{ConversationId: ids.Group(gid), Muted: boolp(true)}}})
	b2.until(t, waitPush, "CONVERSATION_UPDATED", isEvent(clientpb.EventType_EVENT_CONVERSATION_UPDATED))
	a.sendGroup(t, gid, "psst")
	for _, d := range []*device{b, b2} {
		e := d.until(t, waitPush, "psst", isText("psst"))
		if !e.GetMessage().GetSilent() {
			t.Fatalf("%s: pushed without the silent flag: %v", d.id, e)
		}
	}
	res, err := b.Sync(ctx(t), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if e := res.GetEntries()[len(res.GetEntries())-1]; e.GetMessage().GetContent().GetText() != "psst" || !e.GetMessage().GetSilent() {
		t.Fatalf("sync: %v", e)
	}
	// Alice did not mute: her own other device gets it loud.
	a2 := n.connect(t, alice, "a2", u64(0))
	for _, e := range a2.collect(t, 2, waitPush) {
		if e.GetMessage().GetSilent() {
			t.Fatalf("alice's entry flagged silent: %v", e)
		}
	}
	// Unmuting restores normal pushes.
	b.op(t, &clientpb.Frame{Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{ConversationId: ids.Group(gid), Muted: boolp(false)}}})
	a.sendGroup(t, gid, "loud")
	if e := b2.until(t, waitPush, "loud", isText("loud")); e.GetMessage().GetSilent() {
		t.Fatalf("after unmute: %v", e)
	}
}

func boolp(b bool) *bool { return &b }
