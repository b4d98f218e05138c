package ids

import (
	"strings"
	"testing"
)

func TestValidUser(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"alice", true}, {"a.b-c_d@x", true}, {"", false}, {"a/b", false},
		{"a:b", false}, {"a b", false}, {"é", false},
		{string(make([]byte, 65)), false},
	} {
		if got := ValidUser(tc.in); got != tc.want {
			t.Errorf("ValidUser(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !ValidDevice("web:1") || ValidDevice("a/b") {
		t.Error("ValidDevice accepts ':' and refuses '/'")
	}
	if !ValidClientMsgID("c-1{x}") || ValidClientMsgID("a b") || ValidClientMsgID("a/b") || ValidClientMsgID("") {
		t.Error("ValidClientMsgID")
	}
}

func TestConversationRoundTrip(t *testing.T) {
	id := Private("bob", "alice")
	if id != "p:alice:bob" || Private("alice", "bob") != id {
		t.Fatalf("Private = %q", id)
	}
	c, err := Parse(id)
	if err != nil || c.A != "alice" || c.B != "bob" || !c.Has("bob") || c.Has("carol") {
		t.Fatalf("Parse(%q) = %+v, %v", id, c, err)
	}
	if g, err := Parse(Group("team")); err != nil || g.Group != "team" || g.Has("team") {
		t.Fatalf("Parse group = %+v, %v", g, err)
	}
	if s, err := Parse(System("news")); err != nil || s.System != "news" || s.Group != "" || s.Has("news") {
		t.Fatalf("Parse system = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "x:a", "p:bob:alice", "p:alice", "p:a:b:c", "g:", "g:a/b", "s:", "s:a:b"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestQualify(t *testing.T) {
	for _, tc := range []struct{ app, user, q string }{
		{DefaultApp, "alice", "alice"},
		{"", "alice", "alice"},
		{"acme", "alice", "acme:alice"},
		{"acme", "#g:team", "acme:#g:team"},
		{DefaultApp, "#g:team", "#g:team"},
	} {
		if got := Qualify(tc.app, tc.user); got != tc.q {
			t.Errorf("Qualify(%q, %q) = %q, want %q", tc.app, tc.user, got, tc.q)
		}
		app, user := Unqualify(tc.q)
		wantApp := tc.app
		if wantApp == "" {
			wantApp = DefaultApp
		}
		if app != wantApp || user != tc.user {
			t.Errorf("Unqualify(%q) = %q, %q, want %q, %q", tc.q, app, user, wantApp, tc.user)
		}
	}
	for _, s := range []string{"", "-a", "A", "a:b", "a/b", strings.Repeat("a", 33)} {
		if ValidApp(s) {
			t.Errorf("ValidApp(%q) = true", s)
		}
	}
	for _, s := range []string{"a", "acme", "my-app_2", strings.Repeat("a", 32)} {
		if !ValidApp(s) {
			t.Errorf("ValidApp(%q) = false", s)
		}
	}
}
