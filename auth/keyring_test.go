package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// appSecrets is a fixed table of app secrets: the AppSecrets a Keyring
// consumes, without a registry.
type appSecrets map[string][][]byte

var errDisabledHere = errors.New("disabled")

func (a appSecrets) AppSecrets(_ context.Context, app string) ([][]byte, error) {
	s, ok := a[app]
	switch {
	case !ok:
		return nil, ErrUnknownApp
	case s == nil:
		return nil, errors.Join(ErrAppDisabled, errDisabledHere)
	}
	return s, nil
}

func TestKeyringApps(t *testing.T) {
	ctx := context.Background()
	def, _ := NewTokens(secret, time.Hour)
	oldA, newA := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("A", 32))
	secretB := []byte(strings.Repeat("b", 32))
	k := NewKeyring(def, appSecrets{"default": {}, "acme": {newA, oldA}, "beta": {secretB}, "off": nil})

	// Issued tokens verify, each as its app's user.
	for _, app := range []string{"default", "acme", "beta"} {
		tok, _, err := k.Issue(ctx, app, "alice", 0)
		if err != nil {
			t.Fatalf("issue %s: %v", app, err)
		}
		c, err := k.Verify(ctx, tok)
		if err != nil || c.App != app || c.UserID != "alice" {
			t.Fatalf("verify %s: %+v %v", app, c, err)
		}
		want := "alice"
		if app != "default" {
			want = app + ":alice"
		}
		if c.Qualified() != want {
			t.Fatalf("qualified %s = %q, want %q", app, c.Qualified(), want)
		}
	}
	// The previous secret of a rotation still verifies.
	old, _ := NewTokens(oldA, time.Hour)
	tok, _, _ := old.IssueApp("acme", "bob", time.Hour)
	if c, err := k.Verify(ctx, tok); err != nil || c.App != "acme" {
		t.Fatalf("previous secret: %+v %v", c, err)
	}
	// Refusals: a claim under another app's or the default secret, no claim
	// under an app's secret, an unknown or disabled app, a bad app id.
	b, _ := NewTokens(secretB, time.Hour)
	refused := map[string]string{}
	refused["acme claim under beta's secret"], _, _ = b.IssueApp("acme", "bob", time.Hour)
	refused["acme claim under the default secret"], _, _ = def.IssueApp("acme", "bob", time.Hour)
	refused["no claim under acme's secret"], _, _ = old.IssueApp("default", "bob", time.Hour)
	refused["unknown app"], _, _ = def.IssueApp("nope", "bob", time.Hour)
	refused["disabled app"], _, _ = def.IssueApp("off", "bob", time.Hour)
	for name, tok := range refused {
		if _, err := k.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	if _, _, err := def.IssueApp("Bad App", "bob", time.Hour); err == nil {
		t.Error("a token of an invalid app id was issued")
	}
	if _, _, err := k.Issue(ctx, "off", "bob", 0); !errors.Is(err, ErrAppDisabled) {
		t.Errorf("issue for a disabled app: %v", err)
	}
	if _, _, err := k.Issue(ctx, "nope", "bob", 0); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("issue for an unknown app: %v", err)
	}
	// The default app disabled: its tokens are refused too.
	kd := NewKeyring(def, appSecrets{"default": nil})
	tok, _, _ = def.Issue("alice", false)
	if _, err := kd.Verify(ctx, tok); !errors.Is(err, ErrAppDisabled) {
		t.Errorf("disabled default app: %v", err)
	}
	// Without apps, only the default app exists.
	k0 := NewKeyring(def, nil)
	if _, err := k0.Verify(ctx, tok); err != nil {
		t.Errorf("default token without apps: %v", err)
	}
	acme, _, _ := NewKeyring(def, appSecrets{"acme": {newA}}).Issue(ctx, "acme", "bob", 0)
	if _, err := k0.Verify(ctx, acme); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("app token without apps: %v", err)
	}
}
