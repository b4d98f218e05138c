package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
)

// Profiles (issue 14): SetProfile, GetProfiles, SearchUsers, ProfileChanged
// and the admin endpoints, against the shared node.

func setProfile(nick, avatar, extra *string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_SetProfile{SetProfile: &clientpb.SetProfile{Nickname: nick, AvatarUrl: avatar, Extra: extra}}}
}

func getProfiles(users ...string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_GetProfiles{GetProfiles: &clientpb.GetProfiles{Users: users}}}
}

func searchUsers(q string, limit uint32, cursor string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_SearchUsers{SearchUsers: &clientpb.SearchUsers{Query: q, Limit: limit, Cursor: cursor}}}
}

// uniqueNick is a nickname prefix no other test (or run on the shared node) uses.
func uniqueNick(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9+userSeq.Add(1))
}

func profileIDs(ps []*clientpb.Profile) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.GetUserId())
	}
	return out
}

// searchAll pages through a search with pages of limit and returns every
// user found.
func (d *device) searchAll(t *testing.T, q string, limit uint32) []string {
	t.Helper()
	var out []string
	cursor := ""
	for range 50 {
		r := d.mustSoc(t, searchUsers(q, limit, cursor)).GetSearch()
		out = append(out, profileIDs(r.GetUsers())...)
		if cursor = r.GetNextCursor(); cursor == "" {
			return out
		}
	}
	t.Fatalf("search %q: no end after 50 pages", q)
	return nil
}

// profileSignal waits for the next ProfileChanged signal, skipping others;
// nil if none arrives within d.
func (d *device) profileSignal(t *testing.T, within time.Duration) *clientpb.Profile {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-d.Signals():
			if p := s.GetProfileChanged().GetProfile(); p != nil {
				return p
			}
		case <-deadline:
			return nil
		}
	}
}

func TestProfileSetGetSearch(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "pa"), n.newUser(t, "pb")
	a := n.connect(t, alice, "a1", nil)
	b := n.connect(t, bob, "b1", nil)
	nick := uniqueNick("Ålice Wönder")

	got := a.mustSoc(t, setProfile(sp("  "+nick+"  "), sp("https://img.example.com/a.png?s=64"), sp(`{ "color": "red", "n": [1, 2] }`))).GetProfile()
	if got.GetUserId() != alice || got.GetNickname() != nick || got.GetAvatarUrl() != "https://img.example.com/a.png?s=64" ||
		got.GetExtra() != `{"color":"red","n":[1,2]}` || got.GetUpdatedAtMs() == 0 {
		t.Fatalf("SetProfile answered %v; want the trimmed nickname, the avatar and the compacted extra", got)
	}

	// Anyone sees nickname and avatar; extra only the user and friends.
	ps := b.mustSoc(t, getProfiles(alice, bob, "nobody-"+bob, alice)).GetProfiles().GetProfiles()
	if !eq(profileIDs(ps), []string{alice, bob}) {
		t.Fatalf("GetProfiles = %v, want alice then bob (the unknown user left out, the repeat once)", profileIDs(ps))
	}
	if ps[0].GetNickname() != nick || ps[0].GetAvatarUrl() == "" || ps[0].GetExtra() != "" {
		t.Fatalf("bob sees alice as %v; want nickname and avatar, no extra", ps[0])
	}
	if ps[1].GetNickname() != "" || ps[1].GetUpdatedAtMs() != 0 {
		t.Fatalf("bob's own empty profile = %v", ps[1])
	}
	if own := a.mustSoc(t, getProfiles(alice)).GetProfiles().GetProfiles(); len(own) != 1 || own[0].GetExtra() == "" {
		t.Fatalf("alice's own profile = %v, want extra", own)
	}

	// Search: by nickname prefix in any case, and by exact id.
	for _, q := range []string{strings.ToUpper("Ålice Wön"), "ålice wönder", strings.ToLower(nick)} {
		if found := b.searchAll(t, q, 50); !contains(found, alice) {
			t.Errorf("search %q = %v, want alice", q, found)
		}
	}
	r := b.mustSoc(t, searchUsers(alice, 0, "")).GetSearch()
	if len(r.GetUsers()) == 0 || r.GetUsers()[0].GetUserId() != alice || r.GetUsers()[0].GetExtra() != "" {
		t.Fatalf("search by id = %v, want alice first, without extra", r.GetUsers())
	}

	// Paging: three users share a nickname prefix; pages of one find each once.
	common := uniqueNick("pager")
	var want []string
	for i := range 3 {
		u := n.newUser(t, "pp")
		n.connect(t, u, "d", nil).mustSoc(t, setProfile(sp(fmt.Sprintf("%s %d", common, i)), nil, nil))
		want = append(want, u)
	}
	if found := b.searchAll(t, common, 1); !eq(found, want) {
		t.Fatalf("paged search = %v, want %v in nickname order", found, want)
	}

	// Only the fields given change; "" clears, and a cleared nickname is not found.
	got = a.mustSoc(t, setProfile(nil, sp(""), nil)).GetProfile()
	if got.GetNickname() != nick || got.GetAvatarUrl() != "" || got.GetExtra() == "" {
		t.Fatalf("after clearing the avatar: %v", got)
	}
	a.mustSoc(t, setProfile(sp(""), nil, nil))
	if found := b.searchAll(t, nick, 50); contains(found, alice) {
		t.Fatalf("search after the nickname was cleared = %v, still alice", found)
	}
	renamed := uniqueNick("Renamed")
	a.mustSoc(t, setProfile(sp(renamed), nil, nil))
	if found := b.searchAll(t, renamed, 50); !eq(found, []string{alice}) {
		t.Fatalf("search for the new nickname = %v", found)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestProfilePushedToFriendsOnChange(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "pfa"), n.newUser(t, "pfb"), n.newUser(t, "pfc")
	a1, a2 := n.connect(t, alice, "a1", nil), n.connect(t, alice, "a2", nil)
	b := n.connect(t, bob, "b1", nil)
	c := n.connect(t, carol, "c1", nil)
	befriend(t, a1, b)
	a2.collect(t, 2, 5*time.Second) // the friend events

	nick := uniqueNick("Pushy")
	a1.mustSoc(t, setProfile(sp(nick), nil, sp(`{"status":"away"}`)))
	for _, d := range []*device{b, a2} {
		p := d.profileSignal(t, 5*time.Second)
		if p.GetUserId() != alice || p.GetNickname() != nick || p.GetExtra() != `{"status":"away"}` {
			t.Fatalf("%s/%s: ProfileChanged = %v, want alice's new profile with extra", d.user, d.id, p)
		}
	}
	if p := a1.profileSignal(t, 300*time.Millisecond); p != nil {
		t.Fatalf("the device that set the profile got ProfileChanged: %v", p)
	}
	if p := c.profileSignal(t, 300*time.Millisecond); p != nil {
		t.Fatalf("carol, no friend, got ProfileChanged: %v", p)
	}
	// A friend reads extra.
	if ps := b.mustSoc(t, getProfiles(alice)).GetProfiles().GetProfiles(); len(ps) != 1 || ps[0].GetExtra() != `{"status":"away"}` {
		t.Fatalf("bob (a friend) reads %v, want extra", ps)
	}
	// Setting the same profile again pushes nothing.
	a1.mustSoc(t, setProfile(sp(nick), nil, nil))
	if p := b.profileSignal(t, 300*time.Millisecond); p != nil {
		t.Fatalf("an unchanged profile was pushed: %v", p)
	}
}

func TestProfileBlockedUserCannotSeeOrSearch(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "pka"), n.newUser(t, "pkb"), n.newUser(t, "pkc")
	a := n.connect(t, alice, "a1", nil)
	b := n.connect(t, bob, "b1", nil)
	c := n.connect(t, carol, "c1", nil)
	befriend(t, a, b)
	nick := uniqueNick("Hidden")
	a.mustSoc(t, setProfile(sp(nick), nil, sp(`{"x":1}`)))
	if b.profileSignal(t, 5*time.Second) == nil {
		t.Fatal("bob, a friend, was not told before the block")
	}

	a.mustSoc(t, blockUser(bob, true))
	if ps := b.mustSoc(t, getProfiles(alice, carol)).GetProfiles().GetProfiles(); !eq(profileIDs(ps), []string{carol}) {
		t.Fatalf("bob's GetProfiles after alice blocked him = %v, want carol only", profileIDs(ps))
	}
	if found := b.searchAll(t, nick, 50); len(found) != 0 {
		t.Fatalf("bob's search by nickname = %v, want nothing", found)
	}
	if found := b.searchAll(t, alice, 50); contains(found, alice) {
		t.Fatalf("bob's search by id = %v, want no alice", found)
	}
	// Others still find her, and she still sees bob.
	if found := c.searchAll(t, nick, 50); !eq(found, []string{alice}) {
		t.Fatalf("carol's search = %v, want alice", found)
	}
	if ps := a.mustSoc(t, getProfiles(bob)).GetProfiles().GetProfiles(); !eq(profileIDs(ps), []string{bob}) {
		t.Fatalf("alice's GetProfiles of the user she blocked = %v", profileIDs(ps))
	}
	// A change no longer reaches bob, friend though he still is.
	a.mustSoc(t, setProfile(sp(nick+" 2"), nil, nil))
	if p := b.profileSignal(t, 500*time.Millisecond); p != nil {
		t.Fatalf("bob, blocked, got ProfileChanged: %v", p)
	}
	// Unblocked, he sees her again.
	a.mustSoc(t, blockUser(bob, false))
	if ps := b.mustSoc(t, getProfiles(alice)).GetProfiles().GetProfiles(); len(ps) != 1 || ps[0].GetExtra() != `{"x":1}` {
		t.Fatalf("after the unblock bob reads %v", ps)
	}
}

func TestProfileRefusals(t *testing.T) {
	n := shared
	alice := n.newUser(t, "pra")
	a := n.connect(t, alice, "a1", nil)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	for _, tc := range []struct {
		name string
		f    *clientpb.Frame
		code clientpb.ErrorCode
	}{
		{"no field", setProfile(nil, nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"nickname of 65 characters", setProfile(sp(strings.Repeat("é", 65)), nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"control character", setProfile(sp("a\x07b"), nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"newline", setProfile(sp("a\nb"), nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"bidi override", setProfile(sp("abc\u202Egnp.exe"), nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"invalid UTF-8", setProfile(sp("a\xffb"), nil, nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"javascript avatar", setProfile(nil, sp("javascript:alert(1)"), nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"ftp avatar", setProfile(nil, sp("ftp://example.com/a.png"), nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"relative avatar", setProfile(nil, sp("/a.png"), nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"avatar with credentials", setProfile(nil, sp("https://u:p@example.com/a.png"), nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"avatar over 1024 bytes", setProfile(nil, sp("https://example.com/"+strings.Repeat("a", 1010)), nil), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"extra an array", setProfile(nil, nil, sp(`[1,2]`)), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"extra not JSON", setProfile(nil, nil, sp(`{"a":`)), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"extra over 4 KiB", setProfile(nil, nil, sp(`{"a":"`+strings.Repeat("x", 4096)+`"}`)), clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{"101 users", getProfiles(many...), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"bad user id", getProfiles("a/b"), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"empty query", searchUsers("   ", 0, ""), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"query of 65 characters", searchUsers(strings.Repeat("q", 65), 0, ""), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"limit 51", searchUsers("a", 51, ""), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"forged cursor", searchUsers("a", 0, "not a cursor!"), clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) { a.refusedSoc(t, tc.f, tc.code) })
	}
	if p := a.mustSoc(t, getProfiles(alice)).GetProfiles().GetProfiles(); len(p) != 1 || p[0].GetUpdatedAtMs() != 0 {
		t.Fatalf("after the refusals alice's profile is %v, want untouched", p)
	}

	// At most 10 changes in a row, then ERR_RATE_LIMITED with a retry time.
	for i := range 10 {
		a.mustSoc(t, setProfile(sp(fmt.Sprintf("n%d", i)), nil, nil))
	}
	_, err := a.socOp(t, setProfile(sp("one more"), nil, nil))
	var e *client.Error
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_RATE_LIMITED || !errors.As(err, &e) || e.RetryAfter <= 0 {
		t.Fatalf("the 11th change: %v, want ERR_RATE_LIMITED with retryAfterMs", err)
	}
}

func TestProfileAdminEndpoints(t *testing.T) {
	n := shared
	alice := n.newUser(t, "pda")
	a := n.connect(t, alice, "a1", nil)
	admin, _, err := n.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	userTok := n.token(t, alice)
	url := n.http + "/v1/admin/users/" + alice + "/profile"
	body := map[string]any{"nickname": " Admin Set ", "avatarUrl": "https://example.com/x.png", "extra": `{"vip":true}`}

	// Refused without the admin credential, and nothing changed.
	for _, tc := range []struct {
		name, method, token string
		status              int
	}{
		{"PUT without a token", http.MethodPut, "", 401},
		{"PUT with a user token", http.MethodPut, userTok, 403},
		{"PUT with a forged token", http.MethodPut, "e30.e30.AAAA", 401},
		{"GET without a token", http.MethodGet, "", 401},
		{"GET with a user token", http.MethodGet, userTok, 403},
	} {
		var b any
		if tc.method == http.MethodPut {
			b = body
		}
		if got := call(t, tc.method, url, tc.token, b); got.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, got.status, got.body, tc.status)
		}
	}
	if p := a.mustSoc(t, getProfiles(alice)).GetProfiles().GetProfiles(); p[0].GetUpdatedAtMs() != 0 {
		t.Fatalf("a refused PUT changed the profile: %v", p[0])
	}

	got := call(t, http.MethodPut, url, admin, body)
	var p struct {
		UserID, Nickname, AvatarURL, Extra, UpdatedAtMs string
	}
	if got.status != 200 || json.Unmarshal([]byte(got.body), &p) != nil || p.UserID != alice || p.Nickname != "Admin Set" || p.Extra != `{"vip":true}` || p.UpdatedAtMs == "" {
		t.Fatalf("admin PUT: %d %s", got.status, got.body)
	}
	// The user's devices learn of it (none set it).
	if s := a.profileSignal(t, 5*time.Second); s.GetNickname() != "Admin Set" {
		t.Fatalf("ProfileChanged after the admin PUT = %v", s)
	}
	if got := call(t, http.MethodGet, url, admin, nil); got.status != 200 || !strings.Contains(got.body, `"extra":"{\"vip\":true}"`) {
		t.Fatalf("admin GET: %d %s, want the whole profile with extra", got.status, got.body)
	}
	h := &client.HTTP{BaseURL: n.http, Token: admin}
	if pr, err := h.SetProfileOf(ctx(t), alice, &clientpb.SetProfile{AvatarUrl: sp("")}); err != nil || pr.GetAvatarUrl() != "" || pr.GetNickname() != "Admin Set" {
		t.Fatalf("SetProfileOf: %v, %v", pr, err)
	}

	for _, tc := range []struct {
		name, method, url string
		body              any
		status            int
		code              string
	}{
		{"GET of an unknown user", http.MethodGet, n.http + "/v1/admin/users/nobody-" + alice + "/profile", nil, 404, "ERR_NOT_FOUND"},
		{"PUT of an unknown user", http.MethodPut, n.http + "/v1/admin/users/nobody-" + alice + "/profile", body, 404, "ERR_NOT_FOUND"},
		{"bad user id", http.MethodGet, n.http + "/v1/admin/users/a%2Fb/profile", nil, 400, "ERR_BAD_REQUEST"},
		{"bad avatar", http.MethodPut, url, map[string]any{"avatarUrl": "data:image/png;base64,AAAA"}, 400, "ERR_BAD_REQUEST"},
		{"extra not an object", http.MethodPut, url, map[string]any{"extra": "42"}, 400, "ERR_BAD_REQUEST"},
		{"extra over 4 KiB", http.MethodPut, url, map[string]any{"extra": `{"a":"` + strings.Repeat("x", 5000) + `"}`}, 413, "ERR_PAYLOAD_TOO_LARGE"},
		{"not a SetProfile", http.MethodPut, url, map[string]any{"nick": "x"}, 400, "ERR_BAD_REQUEST"},
		{"body over 32 KiB", http.MethodPut, url, map[string]any{"extra": strings.Repeat("x", 40<<10)}, 413, "ERR_PAYLOAD_TOO_LARGE"},
	} {
		got := call(t, tc.method, tc.url, admin, tc.body)
		if got.status != tc.status || !strings.Contains(got.body, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, got.status, got.body, tc.status, tc.code)
		}
	}
	if got := call(t, http.MethodPut, url, admin, `{"nickname":"x"}`, "Content-Type", "text/plain"); got.status != 415 {
		t.Errorf("PUT as text/plain: %d, want 415", got.status)
	}
}

// TestProfileImctl drives imctl profile set, get and search, and the admin
// set, against the shared node.
func TestProfileImctl(t *testing.T) {
	bin := buildImctl(t)
	alice, bob := freshID("pia"), freshID("pib")
	a, b := newImctl(t, bin), newImctl(t, bin)
	a.ok("register", alice, "--password", "pw-"+alice)
	b.ok("register", bob, "--password", "pw-"+bob)
	a.ok("login", alice, "--password", "pw-"+alice)
	b.ok("login", bob, "--password", "pw-"+bob)
	nick := uniqueNick("Imctl Alice")

	p := &clientpb.Profile{}
	a.okProto(p, "--as", alice, "profile", "set", "--nickname", nick, "--extra", `{"k": 1}`, "--json")
	if p.GetNickname() != nick || p.GetExtra() != `{"k":1}` {
		t.Fatalf("profile set printed %v", p)
	}
	if out := b.ok("--as", bob, "profile", "get", alice); strings.TrimSpace(out) != fmt.Sprintf("%s %q", alice, nick) {
		t.Fatalf("profile get printed %q, want the nickname without extra", out)
	}
	res := &clientpb.UserSearchResult{}
	b.okProto(res, "--as", bob, "profile", "search", strings.ToLower(nick), "--json")
	if !eq(profileIDs(res.GetUsers()), []string{alice}) {
		t.Fatalf("profile search printed %v", res)
	}
	if _, stderr, err := b.run("--as", bob, "profile", "set", "--avatar", "ftp://x/y.png"); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_BAD_REQUEST") {
		t.Fatalf("a bad avatar: %v, %q", err, stderr)
	}

	adminFile := filepath.Join(t.TempDir(), "admin.secret")
	if err := os.WriteFile(adminFile, []byte(testAdminSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.ok("profile", "set", "--admin", alice, "--avatar", "https://example.com/a.png", "--admin-secret-file", adminFile)
	if out := a.ok("profile", "get", "--admin", alice, "--admin-secret-file", adminFile); !strings.Contains(out, "avatar=https://example.com/a.png extra={\"k\":1}") {
		t.Fatalf("admin profile get printed %q", out)
	}
}
