package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// Tests of answers an independent client, written from docs/protocol.md
// alone, found wrong.

// httpCall makes an HTTP request with a bearer token (none when empty) and
// returns the status and, for an error answer, its code and message.
func httpCall(t *testing.T, method, url, token string, body []byte) (int, clientpb.ErrorCode, string) {
	t.Helper()
	var b any
	if body != nil {
		b = string(body)
	}
	a := call(t, method, url, token, b)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return a.status, clientpb.ErrorCode(clientpb.ErrorCode_value[e.Error.Code]), e.Error.Message
}

// sendAs posts s as user through the admin API.
func sendAs(t *testing.T, n *testNode, user string, s *clientpb.Send) (int, clientpb.ErrorCode, string) {
	t.Helper()
	admin, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	body, err := wire.MarshalJSON(s)
	if err != nil {
		t.Fatal(err)
	}
	return httpCall(t, http.MethodPost, n.http+"/v1/admin/users/"+url.PathEscape(user)+"/messages", admin, body)
}

func groupSend(gid, text string) *clientpb.Send {
	return &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text(text),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}
}

// TestClientMsgIDReuse: a send under a client message id used before is a
// retry only if it repeats the original (recipient and content): then it is
// answered with the original's ack; otherwise ERR_CLIENT_MSG_ID_REUSED and
// nothing is stored, never an ack naming another conversation. Private and
// group sends, over WebSocket and the admin API (HTTP 409).
func TestClientMsgIDReuse(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	gid := newGroupID("reuse")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	b.until(t, waitPush, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED))

	k1 := "k1-" + alice
	orig := &clientpb.Send{ClientMsgId: k1, To: bob, Content: client.Text("hi")}
	first, err := a.Send(ctx(t), orig)
	if err != nil {
		t.Fatal(err)
	}
	k2 := "k2-" + alice
	gorig := &clientpb.Send{ClientMsgId: k2, To: gid, Content: client.Text("hi all"),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}
	gfirst, err := a.Send(ctx(t), gorig)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*clientpb.Send{
		"private, another recipient": {ClientMsgId: k1, To: carol, Content: client.Text("hi")},
		"private, other content":     {ClientMsgId: k1, To: bob, Content: client.Text("hi!")},
		"private id, to the group":   {ClientMsgId: k1, To: gid, Content: client.Text("hi"), ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP},
		"group, other content":       {ClientMsgId: k2, To: gid, Content: client.Emoji("👋"), ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP},
		"group, other mentions":      {ClientMsgId: k2, To: gid, Content: client.Text("hi all"), ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Mentions: []string{bob}},
		"group id, privately":        {ClientMsgId: k2, To: bob, Content: client.Text("hi all")},
	} {
		ack, err := a.Send(ctx(t), s)
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED {
			t.Fatalf("%s: %v, %v", name, ack, err)
		}
	}
	for _, r := range []struct {
		s     *clientpb.Send
		first *clientpb.SendAck
	}{{orig, first}, {gorig, gfirst}} {
		again, err := a.Send(ctx(t), r.s)
		if err != nil || !again.GetDuplicate() || again.GetMsgId() != r.first.GetMsgId() ||
			again.GetSeq() != r.first.GetSeq() || again.GetConversationId() != r.first.GetConversationId() {
			t.Fatalf("exact retry: %v, %v; first %v", again, err, r.first)
		}
	}
	status, code, _ := sendAs(t, n, alice, &clientpb.Send{ClientMsgId: k1, To: carol, Content: client.Text("hi")})
	if status != http.StatusConflict || code != clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED {
		t.Fatalf("admin send-as under a used id: %d %v", status, code)
	}
	c.quiet(t, 300*time.Millisecond)
	if got := c.entriesAfter(t, 0); len(got) != 0 {
		t.Fatalf("carol's timeline: %v", got)
	}
	got := b.collect(t, 2, waitPush)
	if texts(got)[0] != "hi" || texts(got)[1] != "hi all" {
		t.Fatalf("bob got %q", texts(got))
	}
	b.quiet(t, 300*time.Millisecond)
}

// TestBlockDropsPendingRequests: blocking ends the pending friend requests
// between the two users on both sides; the blocked user's new request is
// refused with ERR_BLOCKED; after the unblock a new request reaches the
// other user again.
func TestBlockDropsPendingRequests(t *testing.T) {
	n := shared
	alice, carol, dave := n.newUser(t, "alice"), n.newUser(t, "carol"), n.newUser(t, "dave")
	a := n.connect(t, alice, "a", nil)
	c := n.connect(t, carol, "c", nil)
	d := n.connect(t, dave, "d", nil)

	c.mustSoc(t, friendRequest(alice, "hi"))
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, carol, alice)
	a.mustSoc(t, friendRequest(dave, "me too"))
	a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, dave)
	d.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, alice, dave)

	a.mustSoc(t, blockUser(carol, true))
	a.mustSoc(t, blockUser(dave, true))
	al, cl, dl := a.friendList(t), c.friendList(t), d.friendList(t)
	if len(al.GetIncoming())+len(al.GetOutgoing())+len(cl.GetOutgoing())+len(dl.GetIncoming()) != 0 {
		t.Fatalf("pending after the blocks: alice %v, carol %v, dave %v", al, cl, dl)
	}
	c.refusedSoc(t, friendRequest(alice, "again"), clientpb.ErrorCode_ERR_BLOCKED)
	if l := c.friendList(t); len(l.GetOutgoing()) != 0 {
		t.Fatalf("carol's refused request is listed: %v", l)
	}

	a.mustSoc(t, blockUser(carol, false))
	c.mustSoc(t, friendRequest(alice, "after the unblock"))
	if ev := a.friendEvent(t, clientpb.EventType_EVENT_FRIEND_REQUEST, carol, alice); ev.GetNote() != "after the unblock" {
		t.Fatalf("alice got %v", ev)
	}
	if l := a.friendList(t); !eq(pendingIDs(l.GetIncoming()), []string{carol}) {
		t.Fatalf("alice's incoming %v", l.GetIncoming())
	}
	if l := c.friendList(t); !eq(pendingIDs(l.GetOutgoing()), []string{alice}) {
		t.Fatalf("carol's outgoing %v", l.GetOutgoing())
	}
}

// TestHTTPRefusalsAre4xx: refusals over HTTP carry the status of their code
// (see clientpb.HTTPStatus), never 500: group history of a non-member, and the
// admin API's send-as refused for each reason. An unknown sender is named
// as such.
func TestHTTPRefusalsAre4xx(t *testing.T) {
	n := shared
	alice, bob, carol, owner, outsider := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol"), n.newUser(t, "owner"), n.newUser(t, "outsider")
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	o := n.connect(t, owner, "o", nil)
	b.mustSoc(t, blockUser(alice, true))
	c.mustSoc(t, friendsOnly(true))
	muted, gone := newGroupID("muted"), newGroupID("gone")
	o.createGroup(t, muted, clientpb.JoinPolicy_JOIN_POLICY_OPEN, alice)
	o.group(t, muted, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_MuteMember_{MuteMember: &clientpb.GroupRequest_MuteMember{User: alice, DurationMs: 60_000}}})
	o.createGroup(t, gone, clientpb.JoinPolicy_JOIN_POLICY_OPEN, alice)
	o.group(t, gone, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}})
	nobody := "nobody-" + alice

	for _, tc := range []struct {
		name   string
		from   string
		send   *clientpb.Send
		status int
		code   clientpb.ErrorCode
		names  string // the error message names this user
	}{
		{"blocked", alice, &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Text("x")}, http.StatusForbidden, clientpb.ErrorCode_ERR_BLOCKED, ""},
		{"not a friend", alice, &clientpb.Send{ClientMsgId: cmid(), To: carol, Content: client.Text("x")}, http.StatusForbidden, clientpb.ErrorCode_ERR_NOT_FRIEND, ""},
		{"muted", alice, groupSend(muted, "x"), http.StatusForbidden, clientpb.ErrorCode_ERR_MUTED, ""},
		{"not a member", outsider, groupSend(muted, "x"), http.StatusForbidden, clientpb.ErrorCode_ERR_NOT_MEMBER, ""},
		{"dissolved", alice, groupSend(gone, "x"), http.StatusGone, clientpb.ErrorCode_ERR_GROUP_DISSOLVED, ""},
		{"no such group", alice, groupSend("none-"+muted, "x"), http.StatusNotFound, clientpb.ErrorCode_ERR_NOT_FOUND, ""},
		{"unknown recipient", alice, &clientpb.Send{ClientMsgId: cmid(), To: nobody, Content: client.Text("x")}, http.StatusNotFound, clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT, nobody},
		{"unknown sender", nobody, &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Text("x")}, http.StatusNotFound, clientpb.ErrorCode_ERR_NOT_FOUND, nobody},
		{"bad request", alice, &clientpb.Send{To: bob, Content: client.Text("x")}, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := sendAs(t, n, tc.from, tc.send)
			if status != tc.status || code != tc.code {
				t.Fatalf("send-as: %d %v %q, want %d %v", status, code, msg, tc.status, tc.code)
			}
			if tc.names != "" && !strings.Contains(msg, tc.names) {
				t.Fatalf("message %q does not name %s", msg, tc.names)
			}
			if tc.name == "unknown sender" && strings.Contains(msg, bob) {
				t.Fatalf("message %q names the recipient", msg)
			}
		})
	}
	t.Run("history of a non-member", func(t *testing.T) {
		status, code, _ := httpCall(t, http.MethodGet, n.http+"/v1/conversations/"+ids.Group(muted)+"/messages", n.token(t, outsider), nil)
		if status != http.StatusForbidden || code != clientpb.ErrorCode_ERR_NOT_MEMBER {
			t.Fatalf("history: %d %v", status, code)
		}
	})
	b.quiet(t, 200*time.Millisecond)
}

// TestRecallTwiceOneEvent: recalling a recalled message again is answered
// like the first recall and stores nothing more.
func TestRecallTwiceOneEvent(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	gid := newGroupID("recall2")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	b.until(t, waitPush, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED))
	for _, c := range []struct {
		conv string
		send func() *clientpb.SendAck
	}{
		{ids.Private(alice, bob), func() *clientpb.SendAck { return a.send(t, bob, "oops") }},
		{ids.Group(gid), func() *clientpb.SendAck { return a.sendGroup(t, gid, "oops") }},
	} {
		ack := c.send()
		b.until(t, waitPush, "oops", isText("oops"))
		for i := range 3 {
			if err := a.recall(t, c.conv, ack.GetMsgId()); err != nil {
				t.Fatalf("%s: recall %d: %v", c.conv, i+1, err)
			}
		}
		b.until(t, waitPush, "RECALLED", isEvent(clientpb.EventType_EVENT_RECALLED))
		b.quiet(t, 300*time.Millisecond)
	}
}
