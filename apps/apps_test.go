package apps

import (
	"context"
	"errors"
	"testing"
	"time"

	"actorim/persistence/embedded"
)

func newRegistry(t *testing.T) (*Registry, *embedded.Store) {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return New(Config{}, st), st
}

func TestRegistryLifecycle(t *testing.T) {
	ctx := context.Background()
	r, st := newRegistry(t)

	// The default app exists without a record, with no secrets of its own.
	def, err := r.Get(ctx, "default")
	if err != nil || def.ID != "default" || def.Disabled {
		t.Fatalf("default: %+v %v", def, err)
	}
	if _, err := r.Get(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown app: %v", err)
	}
	a, err := r.Create(ctx, "acme", Settings{DevicePolicy: "single"})
	if err != nil || len(a.Secrets) != 1 || len(a.WebhookSecrets) != 1 || a.Secrets[0] == a.WebhookSecrets[0] || a.CreatedAtMs == 0 {
		t.Fatalf("create: %+v %v", a, err)
	}
	if _, err := r.Create(ctx, "acme", Settings{}); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	for _, bad := range []string{"default", "", "Acme", "a:b", "-a"} {
		if _, err := r.Create(ctx, bad, Settings{}); !errors.Is(err, ErrBadID) {
			t.Errorf("create %q: %v, want ErrBadID", bad, err)
		}
	}
	if _, err := r.Create(ctx, "bad", Settings{Webhook: Webhook{BeforeSend: true}}); !errors.Is(err, ErrBadSettings) {
		t.Fatalf("before-send without a url: %v", err)
	}

	// Another registry over the same store (another node) sees it.
	other := New(Config{CacheTTL: time.Millisecond}, st)
	if got, err := other.Get(ctx, "acme"); err != nil || got.Settings.DevicePolicy != "single" {
		t.Fatalf("other node: %+v %v", got, err)
	}
	secrets, err := other.AppSecrets(ctx, "acme")
	if err != nil || len(secrets) != 1 || string(secrets[0]) != a.Secrets[0] {
		t.Fatalf("secrets: %q %v", secrets, err)
	}

	// A rotation keeps the previous secret only.
	r1, _ := r.RotateSecret(ctx, "acme")
	r2, _ := r.RotateSecret(ctx, "acme")
	if len(r2.Secrets) != 2 || r2.Secrets[1] != r1.Secrets[0] || r1.Secrets[1] != a.Secrets[0] {
		t.Fatalf("rotations: %v then %v", r1.Secrets, r2.Secrets)
	}
	if _, err := r.RotateSecret(ctx, "default"); !errors.Is(err, ErrBadID) {
		t.Fatalf("rotate the default app: %v", err)
	}
	w, _ := r.RotateWebhookSecret(ctx, "acme")
	if len(w.WebhookSecrets) != 2 || w.WebhookSecrets[1] != a.WebhookSecrets[0] {
		t.Fatalf("webhook rotation: %v", w.WebhookSecrets)
	}

	// Disabled: secrets refused, not enabled, on every node once its cache
	// lapses.
	if _, err := r.Update(ctx, "acme", func(a *App) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := other.AppSecrets(ctx, "acme"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("secrets of a disabled app: %v", err)
	}
	if other.Enabled(ctx, "acme") || other.Enabled(ctx, "nope") || !other.Enabled(ctx, "default") {
		t.Fatal("Enabled is wrong")
	}
	// Settings are validated on update too.
	if _, err := r.Update(ctx, "acme", func(a *App) error { a.Settings.Push.Preview = "all"; return nil }); !errors.Is(err, ErrBadSettings) {
		t.Fatalf("bad update: %v", err)
	}
	// The default app may be configured; List puts it first.
	if _, err := r.Update(ctx, "default", func(a *App) error { a.Settings.MaxContentBytes = 100; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "beta", Settings{}); err != nil {
		t.Fatal(err)
	}
	list, err := other.List(ctx)
	if err != nil || len(list) != 3 || list[0].ID != "default" || list[0].Settings.MaxContentBytes != 100 || list[1].ID != "acme" || list[2].ID != "beta" {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func TestSettingsValidate(t *testing.T) {
	good := []Settings{{}, {DevicePolicy: "per-platform", MaxContentBytes: 10, Webhook: Webhook{URL: "https://x.example/h", BeforeSend: true, TimeoutMs: 500},
		Push: Push{Enabled: true, Preview: "text"}, ArchiveOnUserDelete: "delete", WordFilter: WordFilter{Words: []string{"bad"}, Action: "mask"}}}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Settings{
		{DevicePolicy: "two"}, {MaxContentBytes: -1}, {Webhook: Webhook{URL: "ftp://x"}}, {Webhook: Webhook{URL: "http://x", TimeoutMs: 20_000}},
		{Push: Push{Enabled: true}}, {Push: Push{Preview: "all"}}, {Push: Push{MinIntervalMs: -1}}, {Push: Push{MinIntervalMs: 3_600_001}}, {RetentionMs: 999}, {RetentionMs: -1}, {ArchiveOnUserDelete: "purge"},
		{WordFilter: WordFilter{Action: "drop"}}, {WordFilter: WordFilter{Words: []string{""}}},
	}
	for _, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrBadSettings) {
			t.Errorf("%+v: %v, want ErrBadSettings", s, err)
		}
	}
}
