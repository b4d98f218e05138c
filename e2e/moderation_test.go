package e2e

import (
	"testing"
	"time"

	"actorim/apps"
	"actorim/client"
	"actorim/protos/clientpb"
)

// TestAdminDeleteMessage: the admin API removes a private and a group
// message of an app's users for everyone, long after the recall window:
// every participant's device gets EVENT_RECALLED by "#moderator" and
// history shows the message recalled; the same conversation named in
// another app, an unknown message and a request without the admin
// credential are refused.
func TestAdminDeleteMessage(t *testing.T) {
	n := startNode(t, nil)
	app := newAppID("mod")
	n.createApp(t, app, apps.Settings{})
	a := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	b := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")
	bad := a.send(t, "bob", "something awful")
	keep := a.send(t, "bob", "keep me")
	b.collect(t, 2, waitPush)
	gid := newGroupID("modg")
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")
	gbad := b.sendGroup(t, gid, "awful in the group")

	adm := n.adminHTTP(t, app)
	// Another app's (and the default app's) conversation of the same name
	// holds no such message.
	if err := n.adminHTTP(t, "").DeleteMessage(ctx(t), bad.GetConversationId(), bad.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("delete in the default app: %v, want ERR_NOT_FOUND", err)
	}
	for _, tc := range []struct {
		conv string
		msg  uint64
	}{{bad.GetConversationId(), bad.GetMsgId()}, {gbad.GetConversationId(), gbad.GetMsgId()}} {
		if err := adm.DeleteMessage(ctx(t), tc.conv, tc.msg); err != nil {
			t.Fatalf("delete %s/%d: %v", tc.conv, tc.msg, err)
		}
		for _, d := range []*device{a, b} {
			ev := d.until(t, waitPush, "RECALLED", isEvent(clientpb.EventType_EVENT_RECALLED)).GetMessage().GetContent().GetEvent()
			if ev.GetMsgId() != tc.msg || ev.GetActor() != "#moderator" {
				t.Fatalf("%s: event %v", d.user, ev)
			}
		}
		h, err := b.History(ctx(t), tc.conv, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h.GetEntries() {
			m := e.GetMessage()
			if m.GetId() == tc.msg && (!m.GetRecalled() || m.GetContent() != nil) {
				t.Fatalf("deleted message in history: %v", m)
			}
			if m.GetId() == keep.GetMsgId() && m.GetRecalled() {
				t.Fatalf("kept message shown recalled: %v", m)
			}
		}
		// Again: no error, no second event.
		if err := adm.DeleteMessage(ctx(t), tc.conv, tc.msg); err != nil {
			t.Fatalf("delete again: %v", err)
		}
	}
	b.quiet(t, 300*time.Millisecond)

	if err := adm.DeleteMessage(ctx(t), bad.GetConversationId(), 999999999); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("unknown message: %v", err)
	}
	if err := adm.DeleteMessage(ctx(t), "s:news", 1); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNSUPPORTED {
		t.Fatalf("broadcast: %v", err)
	}
	user := &client.HTTP{BaseURL: n.http, Token: n.appToken(t, app, "alice"), App: app}
	if err := user.DeleteMessage(ctx(t), keep.GetConversationId(), keep.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("with a user token: %v, want ERR_FORBIDDEN", err)
	}
	if err := (&client.HTTP{BaseURL: n.http}).DeleteMessage(ctx(t), keep.GetConversationId(), keep.GetMsgId()); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("without a token: %v, want ERR_UNAUTHENTICATED", err)
	}
}
