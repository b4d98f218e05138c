package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"actorim/apps"
	"actorim/auth"
	"actorim/client"
	"actorim/protos/clientpb"
)

// ---- helpers ------------------------------------------------------------

var appSeq atomic.Int64

// newAppID returns an app id unique in the run (at most 32 characters).
func newAppID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e8, appSeq.Add(1))
}

// adminHTTP returns an HTTP client of n's API with an admin token, about
// the users of app (empty: the default app).
func (n *testNode) adminHTTP(t *testing.T, app string) *client.HTTP {
	t.Helper()
	tok, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	return &client.HTTP{BaseURL: n.http, Token: tok, App: app}
}

// createApp creates an app over the admin API.
func (n *testNode) createApp(t *testing.T, id string, s apps.Settings) apps.App {
	t.Helper()
	a, err := n.adminHTTP(t, "").CreateApp(ctx(t), id, s)
	if err != nil {
		t.Fatalf("create app %s: %v", id, err)
	}
	if a.ID != id || len(a.Secrets) != 1 || len(a.WebhookSecrets) != 1 || a.Disabled {
		t.Fatalf("created app: %+v", a)
	}
	return a
}

// appUser registers user in app (empty: default) with a password and
// returns a token from POST /v1/login.
func (n *testNode) appUser(t *testing.T, app, user string) string {
	t.Helper()
	h := &client.HTTP{BaseURL: n.http, App: app}
	if err := h.Register(ctx(t), user, "password-"+user); err != nil {
		t.Fatalf("register %s in %q: %v", user, app, err)
	}
	tok, err := h.Login(ctx(t), user, "password-"+user)
	if err != nil {
		t.Fatalf("login %s in %q: %v", user, app, err)
	}
	return tok.Token
}

// connectToken logs a device in with a token the test holds.
func (n *testNode) connectToken(t *testing.T, tok, user, dev string) *device {
	t.Helper()
	c := n.dial(t, client.Options{})
	ok, err := c.Login(ctx(t), tok, dev, clientpb.Platform_PLATFORM_WEB, nil)
	if err != nil {
		t.Fatalf("login %s/%s: %v", user, dev, err)
	}
	return &device{Conn: c, user: user, id: dev, login: ok}
}

// tryLogin logs a device in with tok and returns the refusal, if any.
func (n *testNode) tryLogin(t *testing.T, tok string) error {
	t.Helper()
	c := n.dial(t, client.Options{})
	_, err := c.Login(ctx(t), tok, "d1", clientpb.Platform_PLATFORM_WEB, nil)
	return err
}

// ---- isolation ----------------------------------------------------------

// TestTenantIsolation: the same user ids in two apps and in the default app
// are three pairs of users who never meet: a message, a friend request, a
// group of the same id, presence and history stay in their app, on one
// node over the embedded store.
func TestTenantIsolation(t *testing.T) {
	tenantIsolation(t, startNode(t, nil), nil)
}

// TestTenantIsolationCluster: the same over Redis, with each app's users
// on two nodes of a cluster, so that grains and devices of the same ids
// live on different nodes.
func TestTenantIsolationCluster(t *testing.T) {
	c := startCluster(t, 2)
	tenantIsolation(t, c.nodes[0].node(), c.nodes[1].node())
}

func tenantIsolation(t *testing.T, n, m *testNode) {
	if m == nil {
		m = n
	}
	a, b := newAppID("ta"), newAppID("tb")
	n.createApp(t, a, apps.Settings{})
	n.createApp(t, b, apps.Settings{})
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	alice, bob := "alice-"+suffix, "bob-"+suffix

	type pair struct{ alice, bob *device }
	users := map[string]*pair{}
	for _, app := range []string{a, b, ""} {
		ta, tb := n.appUser(t, app, alice), m.appUser(t, app, bob)
		users[app] = &pair{alice: n.connectToken(t, ta, alice, "web"), bob: m.connectToken(t, tb, bob, "web")}
	}
	pa, pb, pd := users[a], users[b], users[""]

	// A message between alice and bob of app A reaches A's bob only.
	pa.alice.send(t, bob, "in A")
	pa.bob.requireText(t, "in A")
	pb.bob.quiet(t, 300*time.Millisecond)
	pd.bob.quiet(t, 10*time.Millisecond)
	pb.alice.send(t, bob, "in B")
	pb.bob.requireText(t, "in B")
	pa.bob.quiet(t, 300*time.Millisecond)
	pd.bob.quiet(t, 10*time.Millisecond)

	// History: each bob's conversation with alice holds its app's only.
	for app, want := range map[string][]string{a: {"in A"}, b: {"in B"}, "": nil} {
		h, err := users[app].bob.History(ctx(t), "p:"+alice+":"+bob, 0, 50)
		if err != nil {
			t.Fatalf("history in %q: %v", app, err)
		}
		if got := texts(h.GetEntries()); !eq(got, want) {
			t.Fatalf("history of bob in %q = %q, want %q", app, got, want)
		}
	}

	// A friend request in A reaches A's bob only; A's friendship is not B's.
	befriend(t, pa.alice, pa.bob)
	pb.bob.quiet(t, 300*time.Millisecond)
	if ids := friendIDs(pb.bob.friendList(t)); len(ids) != 0 {
		t.Fatalf("bob of B has friends %v after A's friendship", ids)
	}
	if ids := friendIDs(pa.bob.friendList(t)); !eq(ids, []string{alice}) {
		t.Fatalf("bob of A has friends %v, want [%s]", ids, alice)
	}

	// Presence: friends see each other, in their app. With B's pair friends
	// too, A's alice going offline shows to A's bob, not to B's, who still
	// sees B's alice online.
	befriend(t, pb.alice, pb.bob)
	if ps := pb.bob.mustSoc(t, presenceQuery(alice)).GetPresence().GetUsers(); len(ps) != 1 || !ps[0].GetOnline() {
		t.Fatalf("B's bob sees presence %v of B's alice, want online", ps)
	}
	_ = pa.alice.Close()
	waitFor(t, 5*time.Second, "A's alice offline to A's bob", func() bool {
		ps := pa.bob.mustSoc(t, presenceQuery(alice)).GetPresence().GetUsers()
		return len(ps) == 1 && !ps[0].GetOnline()
	})
	if ps := pb.bob.mustSoc(t, presenceQuery(alice)).GetPresence().GetUsers(); len(ps) != 1 || !ps[0].GetOnline() {
		t.Fatalf("B's bob sees presence %v after A's alice left, want B's alice online", ps)
	}
	pa.alice = n.connectToken(t, n.appToken(t, a, alice), alice, "web2")

	// The same group id in A and B: two groups, each with its app's members.
	gid := newGroupID("tg")
	pa.alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	pb.alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN) // the id is free in B
	pa.bob.collect(t, 1, 5*time.Second)                                // A's bob: added to A's group
	pa.alice.collect(t, 1, 5*time.Second)
	pb.alice.collect(t, 1, 5*time.Second)
	pa.alice.sendGroup(t, gid, "group A")
	if got := texts(pa.bob.collect(t, 1, 5*time.Second)); !eq(got, []string{"group A"}) {
		t.Fatalf("A's bob got %q from A's group", got)
	}
	pb.bob.quiet(t, 300*time.Millisecond)
	info := map[string]*clientpb.GroupInfo{}
	for app, p := range map[string]*pair{a: pa, b: pb} {
		info[app] = p.bob.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup()
	}
	if info[a].GetMemberCount() != 2 || info[b].GetMemberCount() != 1 {
		t.Fatalf("group %s has %d members in A, %d in B; want 2 and 1", gid, info[a].GetMemberCount(), info[b].GetMemberCount())
	}
	// A's group stays out of reach of B's alice (the owner of B's group).
	hist, err := pb.alice.History(ctx(t), "g:"+gid, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts(hist.GetEntries()) {
		if text != "" {
			t.Fatalf("B's alice reads %q in B's group of the same id", text)
		}
	}

	// The admin API addresses a user of an app by ?app=.
	ack, err := n.adminHTTP(t, b).SendAs(ctx(t), alice, &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Text("admin in B")})
	if err != nil || ack.GetMsgId() == 0 {
		t.Fatalf("admin send in B: %v %v", ack, err)
	}
	pb.bob.requireText(t, "admin in B")
	pa.bob.quiet(t, 300*time.Millisecond)
	pd.bob.quiet(t, 10*time.Millisecond)
	if _, err := n.adminHTTP(t, "no-such-app").SendAs(ctx(t), alice, &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Text("x")}); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("admin send in an unknown app: %v, want ERR_NOT_FOUND", err)
	}
}

// appToken logs user of app in again over HTTP.
func (n *testNode) appToken(t *testing.T, app, user string) string {
	t.Helper()
	tok, err := (&client.HTTP{BaseURL: n.http, App: app}).Login(ctx(t), user, "password-"+user)
	if err != nil {
		t.Fatalf("login %s in %q: %v", user, app, err)
	}
	return tok.Token
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- tokens and secrets ---------------------------------------------------

// TestTenantTokens: an app server mints its users' tokens with its app's
// secret; a token naming another app, or signed with another app's or the
// default secret, is refused; a rotation keeps the previous secret valid
// until the next; a disabled app's sockets close and its logins and tokens
// are refused until it is enabled again; an unknown app is refused.
func TestTenantTokens(t *testing.T) {
	n := startNode(t, nil)
	a, b := newAppID("ka"), newAppID("kb")
	appA, appB := n.createApp(t, a, apps.Settings{}), n.createApp(t, b, apps.Settings{})
	mint := func(secret, app, user string) string {
		t.Helper()
		tk, err := auth.NewTokens([]byte(secret), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := tk.IssueApp(app, user, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if err := n.adminHTTP(t, a).Provision(ctx(t), "carol", ""); err != nil {
		t.Fatalf("provision carol in %s: %v", a, err)
	}
	// A's own token logs A's carol in.
	good := mint(appA.Secrets[0], a, "carol")
	d := n.connectToken(t, good, "carol", "web")
	_ = d
	for name, tok := range map[string]string{
		"app A's claim under B's secret":       mint(appB.Secrets[0], a, "carol"),
		"app B's claim under A's secret":       mint(appA.Secrets[0], b, "carol"),
		"app A's claim under the node secret":  mint(testSecret, a, "carol"),
		"no app claim under A's secret":        mint(appA.Secrets[0], "default", "carol"),
		"an unknown app under the node secret": mint(testSecret, "nope", "carol"),
	} {
		if err := n.tryLogin(t, tok); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Errorf("%s: login %v, want ERR_UNAUTHENTICATED", name, err)
		}
	}

	// Rotation: the old secret still verifies, the new one signs; a second
	// rotation retires the first.
	r1, err := n.adminHTTP(t, "").RotateAppSecret(ctx(t), a)
	if err != nil || len(r1.Secrets) != 2 || r1.Secrets[1] != appA.Secrets[0] {
		t.Fatalf("rotate: %+v %v", r1, err)
	}
	time.Sleep(2100 * time.Millisecond) // the registry's cache lifetime
	if err := n.tryLogin(t, good); err != nil {
		t.Fatalf("token of the previous secret after one rotation: %v", err)
	}
	if err := n.tryLogin(t, mint(r1.Secrets[0], a, "carol")); err != nil {
		t.Fatalf("token of the new secret: %v", err)
	}
	if _, err := n.adminHTTP(t, "").RotateAppSecret(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := n.tryLogin(t, good); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("token of a secret two rotations old: %v, want ERR_UNAUTHENTICATED", err)
	}

	// Disable B: its live socket closes, its logins and tokens are refused;
	// A goes on; enabling B restores it.
	tokB := n.appUser(t, b, "dave")
	live := n.connectToken(t, tokB, "dave", "web")
	other := n.connectToken(t, mint(r1.Secrets[0], a, "carol"), "carol", "web3")
	if _, err := n.adminHTTP(t, "").DisableApp(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-live.Done():
		if code, _, _ := live.CloseStatus(); code != clientpb.CloseUnauthenticated {
			t.Fatalf("disabled app's socket closed with %d, want %d", code, clientpb.CloseUnauthenticated)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the disabled app's socket is still open")
	}
	if other.IsClosed() {
		t.Fatal("disabling B closed A's socket")
	}
	if err := n.tryLogin(t, tokB); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("token of a disabled app: %v", err)
	}
	_, err = (&client.HTTP{BaseURL: n.http, App: b}).Login(ctx(t), "dave", "password-dave")
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("login to a disabled app: %v, want ERR_FORBIDDEN", err)
	}
	if _, err := n.adminHTTP(t, "").EnableApp(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	if err := n.tryLogin(t, n.appToken(t, b, "dave")); err != nil {
		t.Fatalf("login after enabling: %v", err)
	}
	_, err = (&client.HTTP{BaseURL: n.http, App: "nope"}).Login(ctx(t), "dave", "password-dave")
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("login to an unknown app: %v, want ERR_NOT_FOUND", err)
	}
}

// TestAdminApps: the apps API creates, lists, reads, configures, disables
// and rotates; bad ids and settings are refused with codes; every endpoint
// refuses a request without the admin credential.
func TestAdminApps(t *testing.T) {
	n := startNode(t, nil)
	adm := n.adminHTTP(t, "")
	id := newAppID("adm")
	n.createApp(t, id, apps.Settings{DevicePolicy: "single", MaxContentBytes: 1000})
	if _, err := adm.CreateApp(ctx(t), id, apps.Settings{}); client.CodeOf(err) != clientpb.ErrorCode_ERR_CONFLICT {
		t.Fatalf("create twice: %v", err)
	}
	for _, bad := range []string{"default", "Upper", "-x", "a/b", "x" + string(make([]byte, 40))} {
		if _, err := adm.CreateApp(ctx(t), bad, apps.Settings{}); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("create %q: %v, want ERR_BAD_REQUEST", bad, err)
		}
	}
	if _, err := adm.CreateApp(ctx(t), newAppID("bad"), apps.Settings{DevicePolicy: "many"}); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("bad settings: %v", err)
	}
	list, err := adm.Apps(ctx(t))
	if err != nil || len(list) < 2 || list[0].ID != "default" {
		t.Fatalf("list: %v %v", list, err)
	}
	got, err := adm.GetApp(ctx(t), id)
	if err != nil || got.Settings.DevicePolicy != "single" || got.Settings.MaxContentBytes != 1000 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := adm.GetApp(ctx(t), "nope"); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("get unknown: %v", err)
	}
	set, err := adm.SetAppSettings(ctx(t), id, apps.Settings{MaxContentBytes: 10})
	if err != nil || set.Settings.MaxContentBytes != 10 || set.Settings.DevicePolicy != "" {
		t.Fatalf("settings: %+v %v", set, err)
	}
	// The app's limit applies to its users' sends (a grain activated after
	// the change).
	time.Sleep(2100 * time.Millisecond)
	tok := n.appUser(t, id, "erin")
	n.appUser(t, id, "frank")
	d := n.connectToken(t, tok, "erin", "web")
	if _, err := d.SendText(ctx(t), "frank", cmid(), "more than ten bytes"); client.CodeOf(err) != clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE {
		t.Fatalf("send over the app's content limit: %v, want ERR_PAYLOAD_TOO_LARGE", err)
	}
	d.send(t, "frank", "short")
	if a, err := adm.RotateWebhookSecret(ctx(t), id); err != nil || len(a.WebhookSecrets) != 2 {
		t.Fatalf("rotate webhook secret: %+v %v", a, err)
	}
	if _, err := adm.RotateAppSecret(ctx(t), "default"); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("rotate the default app's secret: %v, want ERR_BAD_REQUEST (it is the node's auth secret)", err)
	}

	// Without the admin credential: a user token is 403, none is 401.
	user := &client.HTTP{BaseURL: n.http, Token: tok}
	anon := &client.HTTP{BaseURL: n.http}
	calls := map[string]func(h *client.HTTP) error{
		"list":    func(h *client.HTTP) error { _, err := h.Apps(ctx(t)); return err },
		"create":  func(h *client.HTTP) error { _, err := h.CreateApp(ctx(t), newAppID("x"), apps.Settings{}); return err },
		"get":     func(h *client.HTTP) error { _, err := h.GetApp(ctx(t), id); return err },
		"set":     func(h *client.HTTP) error { _, err := h.SetAppSettings(ctx(t), id, apps.Settings{}); return err },
		"disable": func(h *client.HTTP) error { _, err := h.DisableApp(ctx(t), id); return err },
		"enable":  func(h *client.HTTP) error { _, err := h.EnableApp(ctx(t), id); return err },
		"rotate":  func(h *client.HTTP) error { _, err := h.RotateAppSecret(ctx(t), id); return err },
		"rotate-webhook": func(h *client.HTTP) error {
			_, err := h.RotateWebhookSecret(ctx(t), id)
			return err
		},
	}
	for name, call := range calls {
		if err := call(user); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Errorf("%s with a user token: %v, want ERR_FORBIDDEN", name, err)
		}
		if err := call(anon); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Errorf("%s without a token: %v, want ERR_UNAUTHENTICATED", name, err)
		}
	}
}

// TestTenantBroadcast: a broadcast with ?app= reaches every user of that app
// (online ones pushed, offline ones at their next sync) and no one of
// another app or of the default app.
func TestTenantBroadcast(t *testing.T) {
	n := startNode(t, nil)
	app := newAppID("bc")
	n.createApp(t, app, apps.Settings{})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	n.appUser(t, app, "bob")
	carol := n.connect(t, n.newUser(t, "carol"), "web", nil)
	tok, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"channel": "news", "content": map[string]string{"text": "hello app"}})
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, n.http+"/v1/admin/broadcast?app="+app, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Users int `json:"users"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || out.Users != 2 {
		t.Fatalf("broadcast in %s: status %d, %+v, %v; want 2 users", app, resp.StatusCode, out, err)
	}
	alice.requireText(t, "hello app")
	bob := n.connectToken(t, n.appToken(t, app, "bob"), "bob", "web")
	res, err := bob.Sync(ctx(t), 0, 50)
	if err != nil || !eq(texts(res.GetEntries()), []string{"hello app"}) {
		t.Fatalf("bob's sync: %v %v", texts(res.GetEntries()), err)
	}
	carol.quiet(t, 300*time.Millisecond)
}
