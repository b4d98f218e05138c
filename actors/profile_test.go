package actors

import (
	"strings"
	"testing"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

func TestValidateSetProfile(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name string
		sp   *clientpb.SetProfile
		code clientpb.ErrorCode // unspecified: accepted
	}{
		{"nickname", &clientpb.SetProfile{Nickname: s("  Ålice 👩‍💻 ")}, 0},
		{"clear all", &clientpb.SetProfile{Nickname: s(""), AvatarUrl: s(""), Extra: s("")}, 0},
		{"64 characters after trimming", &clientpb.SetProfile{Nickname: s(" " + strings.Repeat("é", 64) + " ")}, 0},
		{"nothing", &clientpb.SetProfile{}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"65 characters", &clientpb.SetProfile{Nickname: s(strings.Repeat("é", 65))}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"C1 control", &clientpb.SetProfile{Nickname: s("a\u0085b")}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"isolate", &clientpb.SetProfile{Nickname: s("a\u2067b")}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"paragraph separator", &clientpb.SetProfile{Nickname: s("a\u2029b")}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"https avatar", &clientpb.SetProfile{AvatarUrl: s("https://cdn.example.com/a%20b.png")}, 0},
		{"avatar with a space", &clientpb.SetProfile{AvatarUrl: s("https://cdn.example.com/a b.png")}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"avatar without host", &clientpb.SetProfile{AvatarUrl: s("https:///a.png")}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"object", &clientpb.SetProfile{Extra: s(` {"a": {"b": [1]}} `)}, 0},
		{"string", &clientpb.SetProfile{Extra: s(`"{}"`)}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"two objects", &clientpb.SetProfile{Extra: s(`{}{}`)}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"4 KiB and one", &clientpb.SetProfile{Extra: s(`{"a":"` + strings.Repeat("x", 4090) + `"}`)}, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validateSetProfile(tc.sp).GetCode(); got != tc.code {
				t.Fatalf("validateSetProfile = %v, want %v", got, tc.code)
			}
		})
	}
}

func TestFoldName(t *testing.T) {
	for in, want := range map[string]string{
		"  Alice ": "alice",
		"Straße":   "strasse",
		"STRASSE":  "strasse",
		"ÅNGSTRÖM": "ångström",
	} {
		if got := foldName(in); got != want {
			t.Errorf("foldName(%q) = %q, want %q", in, got, want)
		}
	}
	long := foldName(strings.Repeat("ŉ", 64)) // each folds to 3 bytes
	if len(long) > persistence.MaxDirectoryBytes || persistence.CheckDirectory("s", "", long) != nil {
		t.Fatalf("foldName of a long name: %d bytes, not a valid directory name", len(long))
	}
}

func TestCursorRoundTrip(t *testing.T) {
	n := persistence.Name{User: "alice", Name: "ålice w"}
	got, ok := decodeCursor(encodeCursor(n))
	if !ok || got != n {
		t.Fatalf("decodeCursor(encodeCursor(%v)) = %v, %v", n, got, ok)
	}
	for _, bad := range []string{"!!", encodeCursor(persistence.Name{User: "a/b", Name: "x"}), strings.Repeat("A", 600)} {
		if _, ok := decodeCursor(bad); ok {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}
