package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"actorim/apps"
	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// listAll pages through h's app's users, limit at a time.
func listAll(t *testing.T, h *client.HTTP, limit int) []client.User {
	t.Helper()
	var all []client.User
	after := ""
	for range 1000 {
		page, err := h.Users(ctx(t), after, limit)
		if err != nil {
			t.Fatalf("users after %q: %v", after, err)
		}
		if len(page.Users) > limit {
			t.Fatalf("page of %d users, limit %d", len(page.Users), limit)
		}
		all = append(all, page.Users...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
	t.Fatal("listing does not end")
	return nil
}

func userIDs(us []client.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserID
	}
	return out
}

// requireKickedWith waits for d's connection to close with code after a
// Kick with reason.
func requireKickedWith(t *testing.T, d *device, code int, reason clientpb.KickReason) {
	t.Helper()
	requireClosed(t, d.Conn, code)
	if _, _, kick := d.CloseStatus(); kick.GetReason() != reason {
		t.Fatalf("%s/%s kicked with %v, want %v", d.user, d.id, kick, reason)
	}
}

// TestAdminUsersListAndSearch: an app's users are listed by id a page at a
// time, never another app's or the default app's (nor those of the app in
// the default app's list); search finds them by exact id or nickname
// prefix within the app.
func TestAdminUsersListAndSearch(t *testing.T) {
	n := startNode(t, nil)
	a, b := newAppID("la"), newAppID("lb")
	n.createApp(t, a, apps.Settings{})
	n.createApp(t, b, apps.Settings{})
	want := []string{"u1", "u2", "u3", "u4", "u5"}
	for _, u := range want {
		n.appUser(t, a, u)
	}
	n.appUser(t, b, "u0")
	n.appUser(t, b, "u9")
	plain := n.newUser(t, "plain")

	ha := n.adminHTTP(t, a)
	for _, limit := range []int{1, 2, 5, 1000} {
		if got := userIDs(listAll(t, ha, limit)); !slices.Equal(got, want) {
			t.Fatalf("app %s by %d: %v, want %v", a, limit, got, want)
		}
	}
	page, err := ha.Users(ctx(t), "u2", 2)
	if err != nil || !slices.Equal(userIDs(page.Users), []string{"u3", "u4"}) || page.Next != "u4" {
		t.Fatalf("page after u2: %+v %v", page, err)
	}
	if page, err := ha.Users(ctx(t), "", 0); err != nil || len(page.Users) != 5 || page.Next != "" {
		t.Fatalf("default limit: %+v %v", page, err)
	}
	def := userIDs(listAll(t, n.adminHTTP(t, ""), 1000))
	if !slices.Contains(def, plain) {
		t.Fatalf("default app's list %v lacks %s", def, plain)
	}
	for _, u := range def {
		if strings.Contains(u, ":") || u == "u0" || u == "u9" || slices.Contains(want, u) {
			t.Fatalf("default app's list holds %q: %v", u, def)
		}
	}
	if got := userIDs(listAll(t, n.adminHTTP(t, b), 2)); !slices.Equal(got, []string{"u0", "u9"}) {
		t.Fatalf("app %s: %v", b, got)
	}

	// Search: nicknames are per app; the exact id comes first.
	nick := func(h *client.HTTP, user, name string) {
		t.Helper()
		if _, err := h.SetProfileOf(ctx(t), user, &clientpb.SetProfile{Nickname: &name}); err != nil {
			t.Fatalf("set nickname of %s: %v", user, err)
		}
	}
	nick(ha, "u1", "Zelda One")
	nick(ha, "u3", "zelda three")
	nick(n.adminHTTP(t, b), "u0", "Zelda Elsewhere")
	found, err := ha.SearchUsers(ctx(t), "zeld", "", 0)
	if err != nil || !slices.Equal(userIDs(found.Users), []string{"u1", "u3"}) || found.Users[0].Nickname != "Zelda One" {
		t.Fatalf("search zeld in %s: %+v %v", a, found, err)
	}
	first, err := ha.SearchUsers(ctx(t), "zeld", "", 1)
	if err != nil || len(first.Users) != 1 || first.Next == "" {
		t.Fatalf("search page 1: %+v %v", first, err)
	}
	second, err := ha.SearchUsers(ctx(t), "zeld", first.Next, 1)
	if err != nil || len(second.Users) != 1 || second.Users[0].UserID == first.Users[0].UserID {
		t.Fatalf("search page 2: %+v %v", second, err)
	}
	if found, err := ha.SearchUsers(ctx(t), "u4", "", 0); err != nil || !slices.Equal(userIDs(found.Users), []string{"u4"}) {
		t.Fatalf("search by id: %+v %v", found, err)
	}
	if found, err := ha.SearchUsers(ctx(t), "u0", "", 0); err != nil || len(found.Users) != 0 {
		t.Fatalf("search of another app's id: %+v %v", found, err)
	}
}

// TestAdminUsersDisable: disabling a user kicks their live devices (Kick
// with KICK_REASON_DISABLED, close 4001) and refuses their password logins
// (403), WebSocket logins with a valid token (ERR_FORBIDDEN, 4001) and
// bearer calls; enabling lets them back. Another app's user of the same id
// is untouched.
func TestAdminUsersDisable(t *testing.T) {
	n := startNode(t, nil)
	a, b := newAppID("da"), newAppID("db")
	n.createApp(t, a, apps.Settings{})
	n.createApp(t, b, apps.Settings{})
	tok := n.appUser(t, a, "dora")
	other := n.connectToken(t, n.appUser(t, b, "dora"), "dora", "web")
	phone, web := n.connectToken(t, tok, "dora", "phone"), n.connectToken(t, tok, "dora", "web")
	ha := n.adminHTTP(t, a)

	kicked, err := ha.DisableUser(ctx(t), "dora")
	if err != nil || kicked != 2 {
		t.Fatalf("disable: %d %v, want 2 kicked", kicked, err)
	}
	requireKickedWith(t, phone, clientpb.CloseUnauthenticated, clientpb.KickReason_KICK_REASON_DISABLED)
	requireKickedWith(t, web, clientpb.CloseUnauthenticated, clientpb.KickReason_KICK_REASON_DISABLED)
	requireAlive(t, other)
	if page, err := ha.Users(ctx(t), "", 0); err != nil || len(page.Users) != 1 || !page.Users[0].Disabled {
		t.Fatalf("listing after disable: %+v %v", page, err)
	}

	login := &client.HTTP{BaseURL: n.http, App: a}
	_, err = login.Login(ctx(t), "dora", "password-dora")
	if e, ok := err.(*client.Error); !ok || e.Status != http.StatusForbidden || e.Code != clientpb.ErrorCode_ERR_FORBIDDEN || e.Message != "user disabled" {
		t.Fatalf("password login of a disabled user: %v, want 403 ERR_FORBIDDEN user disabled", err)
	}
	c := n.dial(t, client.Options{})
	if _, err := c.Login(ctx(t), tok, "tablet", clientpb.Platform_PLATFORM_WEB, nil); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("WebSocket login of a disabled user: %v, want ERR_FORBIDDEN", err)
	}
	requireClosed(t, c, clientpb.CloseUnauthenticated)
	hist := call(t, http.MethodGet, n.http+"/v1/conversations/"+url.PathEscape(ids.Private("dora", "x"))+"/messages", tok, nil)
	if hist.status != http.StatusForbidden || !strings.Contains(hist.body, "user disabled") {
		t.Fatalf("history of a disabled user: %d %s", hist.status, hist.body)
	}
	// Disabling again kicks nobody; the other app's dora logs in.
	if kicked, err := ha.DisableUser(ctx(t), "dora"); err != nil || kicked != 0 {
		t.Fatalf("disable again: %d %v", kicked, err)
	}
	if _, err := (&client.HTTP{BaseURL: n.http, App: b}).Login(ctx(t), "dora", "password-dora"); err != nil {
		t.Fatalf("app %s's dora: %v", b, err)
	}

	if err := ha.EnableUser(ctx(t), "dora"); err != nil {
		t.Fatalf("enable: %v", err)
	}
	fresh, err := login.Login(ctx(t), "dora", "password-dora")
	if err != nil {
		t.Fatalf("password login after enable: %v", err)
	}
	requireAlive(t, n.connectToken(t, tok, "dora", "phone"))
	requireAlive(t, n.connectToken(t, fresh.Token, "dora", "web"))
	if page, err := ha.Users(ctx(t), "", 0); err != nil || page.Users[0].Disabled {
		t.Fatalf("listing after enable: %+v %v", page, err)
	}
	if _, err := ha.DisableUser(ctx(t), "nobody"); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("disable an unknown user: %v, want ERR_NOT_FOUND", err)
	}
}

// TestAdminUsersCluster: over Redis, with a user's devices on two nodes of
// a cluster, a disable asked of one node kicks them on both (the user grain
// does it) and the other node refuses the user's logins; a kick asked of
// the other node closes a device on the first; the listing is the app's.
func TestAdminUsersCluster(t *testing.T) {
	c := startCluster(t, 2)
	n, m := c.nodes[0].node(), c.nodes[1].node()
	app := newAppID("ca")
	n.createApp(t, app, apps.Settings{})
	tok := n.appUser(t, app, "cleo")
	n.appUser(t, app, "cato")
	n.appUser(t, "", "cleo")
	if got := userIDs(listAll(t, m.adminHTTP(t, app), 1)); !slices.Equal(got, []string{"cato", "cleo"}) {
		t.Fatalf("app %s's users over Redis: %v", app, got)
	}

	here, there := n.connectToken(t, tok, "cleo", "here"), m.connectToken(t, tok, "cleo", "there")
	if kicked, err := m.adminHTTP(t, app).Kick(ctx(t), "cleo", "here"); err != nil || kicked != 1 {
		t.Fatalf("kick through the other node: %d %v", kicked, err)
	}
	requireKicked(t, here, clientpb.KickReason_KICK_REASON_ADMIN)
	requireAlive(t, there)

	here = n.connectToken(t, tok, "cleo", "here")
	if kicked, err := n.adminHTTP(t, app).DisableUser(ctx(t), "cleo"); err != nil || kicked != 2 {
		t.Fatalf("disable: %d %v, want 2 kicked", kicked, err)
	}
	requireKickedWith(t, here, clientpb.CloseUnauthenticated, clientpb.KickReason_KICK_REASON_DISABLED)
	requireKickedWith(t, there, clientpb.CloseUnauthenticated, clientpb.KickReason_KICK_REASON_DISABLED)
	if err := m.tryLogin(t, tok); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("login on the other node: %v, want ERR_FORBIDDEN", err)
	}
	if _, err := (&client.HTTP{BaseURL: m.http, App: app}).Login(ctx(t), "cleo", "password-cleo"); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("password login on the other node: %v, want ERR_FORBIDDEN", err)
	}
	if _, err := (&client.HTTP{BaseURL: m.http}).Login(ctx(t), "cleo", "password-cleo"); err != nil {
		t.Fatalf("the default app's cleo: %v", err)
	}
	if err := m.adminHTTP(t, app).EnableUser(ctx(t), "cleo"); err != nil {
		t.Fatal(err)
	}
	requireAlive(t, n.connectToken(t, tok, "cleo", "here"))
}

// TestAdminUsersKick: a kick closes one device (Kick with
// KICK_REASON_ADMIN, close 4003) and leaves the others, or closes all; the
// device may log in again.
func TestAdminUsersKick(t *testing.T) {
	n := startNode(t, nil)
	app := newAppID("ka")
	n.createApp(t, app, apps.Settings{})
	tok := n.appUser(t, app, "kim")
	phone, web := n.connectToken(t, tok, "kim", "phone"), n.connectToken(t, tok, "kim", "web")
	h := n.adminHTTP(t, app)

	if kicked, err := h.Kick(ctx(t), "kim", "phone"); err != nil || kicked != 1 {
		t.Fatalf("kick phone: %d %v", kicked, err)
	}
	requireKicked(t, phone, clientpb.KickReason_KICK_REASON_ADMIN)
	requireAlive(t, web)
	if kicked, err := h.Kick(ctx(t), "kim", "phone"); err != nil || kicked != 0 {
		t.Fatalf("kick a device not connected: %d %v", kicked, err)
	}
	again := n.connectToken(t, tok, "kim", "phone")
	if kicked, err := h.Kick(ctx(t), "kim", ""); err != nil || kicked != 2 {
		t.Fatalf("kick all: %d %v", kicked, err)
	}
	requireKicked(t, web, clientpb.KickReason_KICK_REASON_ADMIN)
	requireKicked(t, again, clientpb.KickReason_KICK_REASON_ADMIN)
	requireAlive(t, n.connectToken(t, tok, "kim", "web"))

	admin, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	base := n.http + "/v1/admin/users/"
	for _, tc := range []struct {
		name, url string
		body      any
		status    int
	}{
		{"unknown user", base + "nobody/kick?app=" + app, nil, 404},
		{"bad device id", base + "kim/kick?app=" + app, map[string]string{"device_id": "a b"}, 400},
		{"unknown field", base + "kim/kick?app=" + app, map[string]string{"device": "web"}, 400},
		{"body over 1 KiB", base + "kim/kick?app=" + app, map[string]string{"device_id": strings.Repeat("x", 2000)}, 413},
		{"unknown app", base + "kim/kick?app=nope-" + app, nil, 404},
	} {
		if got := call(t, http.MethodPost, tc.url, admin, tc.body); got.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, got.status, got.body, tc.status)
		}
	}
}

// TestAdminUsersRefusals: every endpoint is refused without a token (401),
// with a user token (403) and with a forged one (401); bad pages are 400.
func TestAdminUsersRefusals(t *testing.T) {
	n := shared
	alice := n.newUser(t, "aur")
	userTok := n.token(t, alice)
	live := n.connect(t, alice, "web", nil)
	admin, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	base := n.http + "/v1/admin/users"
	for _, ep := range []struct{ method, url string }{
		{http.MethodGet, base},
		{http.MethodGet, base + "?q=" + alice},
		{http.MethodPost, base + "/" + alice + "/disable"},
		{http.MethodPost, base + "/" + alice + "/enable"},
		{http.MethodPost, base + "/" + alice + "/kick"},
	} {
		for _, tc := range []struct {
			name, token string
			status      int
		}{
			{"without a token", "", 401},
			{"with a user token", userTok, 403},
			{"with a forged token", "e30.e30.AAAA", 401},
		} {
			if got := call(t, ep.method, ep.url, tc.token, nil); got.status != tc.status {
				t.Errorf("%s %s %s: %d %s, want %d", ep.method, ep.url, tc.name, got.status, got.body, tc.status)
			}
		}
	}
	requireAlive(t, live) // no refused call disabled or kicked alice

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=-1", "after=a%2Fb", "q=", "q=a&limit=1001", "q=a&after=forged!", "app=No%20such"} {
		if got := call(t, http.MethodGet, base+"?"+q, admin, nil); got.status != 400 || !strings.Contains(got.body, "ERR_BAD_REQUEST") {
			t.Errorf("GET ?%s: %d %s, want 400", q, got.status, got.body)
		}
	}
	if got := call(t, http.MethodGet, base+"?limit=1000", admin, nil); got.status != 200 {
		t.Errorf("limit 1000: %d %s", got.status, got.body)
	}
}

// TestImctlUsers: imctl users list, search, disable, enable and kick an
// app's users through the admin API.
func TestImctlUsers(t *testing.T) {
	bin := buildImctl(t)
	adm := newImctl(t, bin)
	adm.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	id := newAppID("cu")
	adm.ok("apps", "create", id)
	alice := newImctl(t, bin)
	for _, u := range []string{"ann", "ben", "cid"} {
		alice.ok("--app", id, "register", u, "--password", "pw-"+u+"-12")
	}
	if out := adm.ok("--app", id, "users", "list", "--limit", "2"); out != "ann\t-\nben\t-\nnext: --after ben\n" {
		t.Fatalf("users list printed %q", out)
	}
	var page, found client.UserPage
	adm.okJSON(&page, "--json", "--app", id, "users", "list", "--after", "ben")
	if !slices.Equal(userIDs(page.Users), []string{"cid"}) || page.Next != "" {
		t.Fatalf("users list --after ben: %+v", page)
	}
	adm.okJSON(&found, "--json", "--app", id, "users", "search", "ben")
	if !slices.Equal(userIDs(found.Users), []string{"ben"}) {
		t.Fatalf("users search ben: %+v", found)
	}

	if out := adm.ok("--app", id, "users", "disable", "ben"); !strings.Contains(out, "ben: disabled; 0 device(s)") {
		t.Fatalf("users disable printed %q", out)
	}
	if _, stderr, err := alice.run("--app", id, "login", "ben", "--password", "pw-ben-12"); exitCode(err) != 1 || !strings.Contains(stderr, "user disabled") {
		t.Fatalf("login of a disabled user: exit %d, stderr %q", exitCode(err), stderr)
	}
	if out := adm.ok("--app", id, "users", "list"); !strings.Contains(out, "ben\t-\tdisabled\n") {
		t.Fatalf("users list after disable printed %q", out)
	}
	adm.ok("--app", id, "users", "enable", "ben")
	alice.ok("--app", id, "login", "ben", "--password", "pw-ben-12")
	var kicked struct {
		UserID string `json:"user_id"`
		Kicked int    `json:"kicked"`
	}
	adm.okJSON(&kicked, "--json", "--app", id, "users", "kick", "ben", "--device", "web")
	if kicked.UserID != "ben" || kicked.Kicked != 0 {
		t.Fatalf("users kick: %+v", kicked)
	}
	if _, stderr, err := adm.run("--app", id, "users", "kick", "nobody"); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_NOT_FOUND") {
		t.Fatalf("kick an unknown user: exit %d, stderr %q", exitCode(err), stderr)
	}
	if _, stderr, err := newImctl(t, bin).run("--app", id, "users", "list"); exitCode(err) != 1 || !strings.Contains(stderr, "admin") {
		t.Fatalf("users list without the admin secret: exit %d, stderr %q", exitCode(err), stderr)
	}
}
