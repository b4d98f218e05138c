package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"actorim/apps"
	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// preAppsFixture is a data directory written by imnode before apps existed
// (commit f9f940f), with what its users read then (see its README.md).
const preAppsFixture = "testdata/pre-apps"

// TestDefaultAppUpgrade: a data directory from before apps existed works
// unchanged under the current imnode, as the default app's: its users log
// in with their passwords (and the provisioned one with an app server's
// token), read exactly the timelines, histories, conversations, friends and
// group they read under the old binary, and go on with the next seqs; a
// user of a new app with the same id is someone else, who sees none of it.
func TestDefaultAppUpgrade(t *testing.T) {
	want := loadPreApps(t)
	dir := filepath.Join(t.TempDir(), "data")
	copyTree(t, filepath.Join(preAppsFixture, "data"), dir)
	n := startProcess(t, dir, freeAddr(t), "--login-rate", "-1").node()

	// Accounts: the passwords hashed by the old binary still log in, over
	// HTTP without an app; a wrong one does not; the ids are taken.
	h := &client.HTTP{BaseURL: n.http}
	for _, user := range []string{"alice", "bob"} {
		tok, err := h.Login(ctx(t), user, "password-"+user)
		if err != nil || tok.UserID != user || tok.Token == "" {
			t.Fatalf("login %s with its pre-apps password: %+v %v", user, tok, err)
		}
		if _, err := h.Login(ctx(t), user, "not-the-password"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Fatalf("login %s with a wrong password: %v, want ERR_UNAUTHENTICATED", user, err)
		}
		if err := h.Register(ctx(t), user, "password-new-"+user); client.CodeOf(err) != clientpb.ErrorCode_ERR_CONFLICT {
			t.Fatalf("register %s again: %v, want ERR_CONFLICT", user, err)
		}
	}
	// carol was provisioned without a password: no password logs her in,
	// provisioning her again finds her, and an app server's token (signed
	// with the auth secret) does.
	if _, err := h.Login(ctx(t), "carol", "password-carol"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("password login of the provisioned carol: %v, want ERR_UNAUTHENTICATED", err)
	}
	if err := n.adminHTTP(t, "").Provision(ctx(t), "carol", ""); err != nil {
		t.Fatalf("provision carol again: %v", err)
	}
	carolTok, _, err := n.tokens.IssueFor("carol", false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	a := n.connect(t, "alice", "phone", nil)
	b := n.connect(t, "bob", "laptop", nil)
	c := n.connectToken(t, carolTok, "carol", "tablet")
	devs := map[string]*device{"alice": a, "bob": b, "carol": c}

	// Timelines: each user syncs from 0 exactly what the old binary served,
	// gapless from seq 1, the recalled message still recalled.
	wantTexts := map[string][]string{
		"alice": {"", "", "hello bob", "hi alice", "how are you?", "fine, thanks", "", "",
			"", "welcome to the team", "glad to be here", "hello from carol", "", ""},
		"bob": {"", "", "hello bob", "hi alice", "how are you?", "fine, thanks", "", "",
			"", "welcome to the team", "glad to be here", ""},
		"carol": {"hello from carol"},
	}
	latest := map[string]uint64{}
	var maxMsgID uint64
	for user, d := range devs {
		got, err := d.Sync(ctx(t), 0, 500)
		if err != nil {
			t.Fatalf("%s: sync: %v", user, err)
		}
		w := &clientpb.SyncResult{}
		want.get(t, user, "sync", w)
		sameProto(t, user+"'s timeline", got, w)
		requireConsecutive(t, got.GetEntries(), 1)
		if tx := texts(got.GetEntries()); !eq(tx, wantTexts[user]) {
			t.Fatalf("%s's timeline texts %q, want %q", user, tx, wantTexts[user])
		}
		if got.GetHasMore() || got.GetLatestSeq() != uint64(len(wantTexts[user])) || d.login.GetLatestSeq() != got.GetLatestSeq() {
			t.Fatalf("%s: sync latest %d (login %d), has_more %v; want %d", user, got.GetLatestSeq(), d.login.GetLatestSeq(), got.GetHasMore(), len(wantTexts[user]))
		}
		latest[user] = got.GetLatestSeq()
		for _, e := range got.GetEntries() {
			maxMsgID = max(maxMsgID, e.GetMessage().GetId())
		}
	}
	if e := mustSync(t, a, 6, 1)[0]; !e.GetMessage().GetRecalled() || e.GetMessage().GetContent() != nil {
		t.Fatalf("alice's recalled message reads %v, want recalled without content", e)
	}
	if evs := eventTypes(mustSync(t, a, 0, 2)); !slices.Equal(evs, []clientpb.EventType{
		clientpb.EventType_EVENT_FRIEND_REQUEST, clientpb.EventType_EVENT_FRIEND_ADDED}) {
		t.Fatalf("alice's first entries are events %v, want the friend request and its acceptance", evs)
	}

	// A new device resuming from 0 is pushed the same entries.
	a2 := n.dial(t, client.Options{})
	if _, err := a2.Login(ctx(t), n.token(t, "alice"), "tablet", clientpb.Platform_PLATFORM_WEB, u64(0)); err != nil {
		t.Fatalf("alice/tablet login from seq 0: %v", err)
	}
	ad2 := &device{Conn: a2, user: "alice", id: "tablet"}
	pushed := ad2.collect(t, int(latest["alice"]), waitPush)
	requireConsecutive(t, pushed, 1)
	for i, e := range mustSync(t, a, 0, 500) {
		if pushed[i].GetMessage().GetId() != e.GetMessage().GetId() {
			t.Fatalf("alice/tablet: pushed entry %d is message %d, synced %d", i+1, pushed[i].GetMessage().GetId(), e.GetMessage().GetId())
		}
	}

	// Histories over the socket and over HTTP, conversations (unread
	// counts, read marks), friends and the group, as the old binary had them.
	for _, user := range []string{"alice", "bob"} {
		d := devs[user]
		for _, conv := range []string{ids.Private("alice", "bob"), ids.Group("team")} {
			w := &clientpb.HistoryResult{}
			want.get(t, user, "history "+conv, w)
			got, err := d.History(ctx(t), conv, 0, 100)
			if err != nil {
				t.Fatalf("%s: history %s: %v", user, conv, err)
			}
			sameProto(t, user+"'s history of "+conv, got, w)
			overHTTP, err := (&client.HTTP{BaseURL: n.http, Token: n.token(t, user)}).History(ctx(t), conv, 0, 100)
			if err != nil {
				t.Fatalf("%s: history %s over HTTP: %v", user, conv, err)
			}
			sameProto(t, user+"'s history of "+conv+" over HTTP", overHTTP, w)
		}
		wg, wm := &clientpb.GroupInfo{}, &clientpb.GroupMembers{}
		want.get(t, user, "group", wg)
		want.get(t, user, "members", wm)
		info := d.group(t, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup()
		sameProto(t, user+"'s group info", info, wg)
		members := d.group(t, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
		sameProto(t, user+"'s group members", members, wm)
		if info.GetOwner() != "alice" || info.GetMemberCount() != 2 || len(members.GetMembers()) != 2 {
			t.Fatalf("%s: group %v with members %v, want alice's of 2", user, info, members)
		}
	}
	for user, d := range devs {
		wc, wf := &clientpb.ConversationList{}, &clientpb.FriendList{}
		want.get(t, user, "conversations", wc)
		want.get(t, user, "friends", wf)
		sameProto(t, user+"'s conversations", d.op(t, &clientpb.Frame{Body: &clientpb.Frame_Conversations{
			Conversations: &clientpb.ConversationsRequest{}}}).GetConversations(), wc)
		fl := d.friendList(t)
		sameProto(t, user+"'s friends", fl, wf)
		wantFriends := map[string][]string{"alice": {"bob"}, "bob": {"alice"}}[user]
		if got := friendIDs(fl); !eq(got, wantFriends) {
			t.Fatalf("%s's friends %v, want %v", user, got, wantFriends)
		}
	}
	// bob had read alice's messages up to "how are you?" (seq 5), alice the
	// group up to "glad to be here" (seq 11).
	if cv := b.conversations(t)[ids.Private("alice", "bob")]; cv.GetReadMsgId() != mustSync(t, b, 4, 1)[0].GetMessage().GetId() {
		t.Fatalf("bob's read mark of the private chat: %v", cv)
	}
	if cv := a.conversations(t)[ids.Group("team")]; cv.GetReadMsgId() != mustSync(t, a, 10, 1)[0].GetMessage().GetId() || cv.GetUnread() != 0 {
		t.Fatalf("alice's read mark of the group: %v", cv)
	}

	// New messages take the next seqs, new message ids, and are delivered.
	priv := a.send(t, "bob", "after the upgrade")
	if priv.GetSeq() != latest["alice"]+1 || priv.GetMsgId() <= maxMsgID {
		t.Fatalf("alice's first message after the upgrade: seq %d msg %d; want seq %d and an id above %d", priv.GetSeq(), priv.GetMsgId(), latest["alice"]+1, maxMsgID)
	}
	requireNext(t, b, latest["bob"]+1, "after the upgrade")
	requireNext(t, ad2, latest["alice"]+1, "after the upgrade") // alice's other device
	grp := b.sendGroup(t, "team", "the group after the upgrade")
	if grp.GetSeq() != latest["bob"]+2 || grp.GetMsgId() <= priv.GetMsgId() {
		t.Fatalf("bob's group message after the upgrade: seq %d msg %d; want seq %d and an id above %d", grp.GetSeq(), grp.GetMsgId(), latest["bob"]+2, priv.GetMsgId())
	}
	requireNext(t, a, latest["alice"]+2, "the group after the upgrade")
	c.send(t, "alice", "carol after the upgrade")
	requireNext(t, a, latest["alice"]+3, "carol after the upgrade")
	if after := mustSync(t, c, 0, 500); len(after) != 2 || after[1].GetSeq() != 2 {
		t.Fatalf("carol's timeline after her send: seqs %v, want 1 2", seqs(after))
	}

	// A new app's alice is another user: her own password, an empty
	// timeline, no friends, conversations or group; her app's bob is not
	// the default bob. Nothing she does reaches the default users.
	app := newAppID("upg")
	n.createApp(t, app, apps.Settings{})
	ha := &client.HTTP{BaseURL: n.http, App: app}
	if _, err := ha.Login(ctx(t), "alice", "password-alice"); err == nil {
		t.Fatalf("the default alice's password logs in to app %s's alice before she exists", app)
	}
	if err := ha.Register(ctx(t), "alice", "app-password-alice"); err != nil {
		t.Fatalf("register alice in app %s: %v", app, err)
	}
	if _, err := ha.Login(ctx(t), "alice", "password-alice"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("the default alice's password in app %s: %v, want ERR_UNAUTHENTICATED", app, err)
	}
	if _, err := h.Login(ctx(t), "alice", "app-password-alice"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("app %s's alice's password in the default app: %v, want ERR_UNAUTHENTICATED", app, err)
	}
	at, err := ha.Login(ctx(t), "alice", "app-password-alice")
	if err != nil {
		t.Fatalf("login alice in app %s: %v", app, err)
	}
	x := n.connectToken(t, at.Token, "alice", "phone")
	if x.login.GetLatestSeq() != 0 {
		t.Fatalf("app %s's alice logs in at seq %d, want 0", app, x.login.GetLatestSeq())
	}
	if s, err := x.Sync(ctx(t), 0, 500); err != nil || len(s.GetEntries()) != 0 || s.GetLatestSeq() != 0 {
		t.Fatalf("app %s's alice syncs %v %v, want nothing", app, s, err)
	}
	if fl := x.friendList(t); len(fl.GetFriends()) != 0 || len(fl.GetIncoming()) != 0 || len(fl.GetOutgoing()) != 0 {
		t.Fatalf("app %s's alice has friends %v", app, fl)
	}
	if cs := x.conversations(t); len(cs) != 0 {
		t.Fatalf("app %s's alice has conversations %v", app, cs)
	}
	for _, conv := range []string{ids.Private("alice", "bob"), ids.Group("team")} {
		hr, err := x.History(ctx(t), conv, 0, 100)
		if err == nil && len(hr.GetEntries()) != 0 {
			t.Fatalf("app %s's alice reads %d entries of %s", app, len(hr.GetEntries()), conv)
		}
	}
	if code := x.groupErr(t, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}); code == clientpb.ErrorCode_ERR_UNSPECIFIED {
		t.Fatalf("app %s's alice reads the default app's group team", app)
	}
	if _, err := x.SendText(ctx(t), "bob", cmid(), "to a bob of my app"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT {
		t.Fatalf("app %s's alice sends to bob, who does not exist in her app: %v, want ERR_UNKNOWN_RECIPIENT", app, err)
	}
	abTok := n.appUser(t, app, "bob")
	xb := n.connectToken(t, abTok, "bob", "laptop")
	x.send(t, "bob", "hello bob of my app")
	if got := xb.collect(t, 1, waitPush); got[0].GetSeq() != 1 || texts(got)[0] != "hello bob of my app" {
		t.Fatalf("app %s's bob got %v", app, got)
	}

	// The default users are as they were: nothing of the app reached them,
	// their timelines hold the old entries and the three new ones.
	b.quiet(t, 300*time.Millisecond)
	a.quiet(t, 10*time.Millisecond)
	for user, extra := range map[string]int{"alice": 3, "bob": 2, "carol": 1} {
		d := devs[user]
		es := mustSync(t, d, 0, 500)
		requireConsecutive(t, es, 1)
		if len(es) != int(latest[user])+extra {
			t.Fatalf("%s's timeline has %d entries after the app's traffic, want %d", user, len(es), int(latest[user])+extra)
		}
		old := &clientpb.SyncResult{}
		want.get(t, user, "sync", old)
		for i, e := range old.GetEntries() {
			if !proto.Equal(es[i], e) {
				t.Fatalf("%s's entry %d changed: %v, was %v", user, i+1, es[i], e)
			}
		}
		for _, e := range es[len(old.GetEntries()):] {
			if tx := e.GetMessage().GetContent().GetText(); !strings.HasSuffix(tx, "after the upgrade") {
				t.Fatalf("%s's timeline holds %v besides the old entries and the new messages", user, e)
			}
		}
	}
	if tok, err := h.Login(ctx(t), "alice", "password-alice"); err != nil || tok.UserID != "alice" {
		t.Fatalf("the default alice's login after the app's alice: %+v %v", tok, err)
	}
}

// preApps is the fixture's expected.json: per user, what the pre-apps
// binary answered (protojson of each answer), by name.
type preApps map[string]map[string]json.RawMessage

func loadPreApps(t *testing.T) preApps {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(preAppsFixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p preApps
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return p
}

// get decodes user's answer named key into m.
func (p preApps) get(t *testing.T, user, key string, m proto.Message) {
	t.Helper()
	raw, ok := p[user][key]
	if !ok {
		t.Fatalf("expected.json has no %q of %s", key, user)
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		t.Fatalf("expected.json: %s's %q: %v", user, key, err)
	}
}

// sameProto fails unless got equals want.
func sameProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		o := protojson.MarshalOptions{Multiline: true}
		t.Fatalf("%s differs from the pre-apps binary's:\ngot  %s\nwant %s", what, o.Format(got), o.Format(want))
	}
}

// mustSync returns up to limit of d's user's timeline entries after seq.
func mustSync(t *testing.T, d *device, after uint64, limit uint32) []*clientpb.Entry {
	t.Helper()
	res, err := d.Sync(ctx(t), after, limit)
	if err != nil {
		t.Fatalf("%s: sync: %v", d.user, err)
	}
	return res.GetEntries()
}

// requireNext waits for the next pushed entry of d and requires its seq
// and text.
func requireNext(t *testing.T, d *device, seq uint64, text string) {
	t.Helper()
	e := d.collect(t, 1, waitPush)[0]
	if e.GetSeq() != seq || e.GetMessage().GetContent().GetText() != text {
		t.Fatalf("%s/%s: pushed seq %d %q, want seq %d %q", d.user, d.id, e.GetSeq(), e.GetMessage().GetContent().GetText(), seq, text)
	}
}

// copyTree copies the directory src to dst (which must not exist), so that
// the node under test writes to a copy of the fixture, never to it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
