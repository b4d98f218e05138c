// Package apps keeps the applications (tenants) of a deployment: several
// products share one set of nodes and stores, each fully apart from the
// others. An app has an id, token secrets of its own (two at once during a
// rotation), settings (device policy, limits, webhooks, push, retention)
// and can be disabled. Users are qualified by their app inside the server
// (ids.Qualify), so that user alice of one app and alice of another are
// different users in every grain and every stored key.
//
// A deployment with no apps has one, ids.DefaultApp, whose tokens are
// signed under the node's auth secret and whose users' ids are stored as
// they always were; it exists without a record, and gets one only when an
// admin configures or disables it.
//
// Records live in the hot store (so every node of a cluster sees them) and
// each node caches them for Config.CacheTTL.
package apps

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"actorim/auth"
	"actorim/ids"
	"actorim/persistence"
)

// Errors of the registry.
var (
	// ErrNotFound reports an app the deployment does not have.
	ErrNotFound = fmt.Errorf("apps: %w", auth.ErrUnknownApp)
	// ErrDisabled reports an app an admin disabled.
	ErrDisabled = fmt.Errorf("apps: %w", auth.ErrAppDisabled)
	// ErrExists reports a Create of an id already taken.
	ErrExists = errors.New("apps: app exists")
	// ErrBadID reports an id that is not a valid app id (ids.ValidApp).
	ErrBadID = errors.New("apps: invalid app id")
	// ErrBadSettings reports settings out of their bounds; the message says which.
	ErrBadSettings = errors.New("apps: invalid settings")
)

// App is one application.
type App struct {
	ID       string `json:"id"`
	Disabled bool   `json:"disabled,omitempty"`
	// Secrets sign and verify the app's user tokens: the first signs, a
	// second (the one before a rotation) still verifies. The default app's
	// tokens use the node's auth secret instead; it has none here.
	Secrets []string `json:"secrets,omitempty"`
	// WebhookSecrets sign the webhooks sent to the app server, as Secrets
	// do tokens (the first signs; the receiver accepts either).
	WebhookSecrets []string `json:"webhook_secrets,omitempty"`
	Settings       Settings `json:"settings"`
	CreatedAtMs    uint64   `json:"created_at_ms,omitempty"`
	UpdatedAtMs    uint64   `json:"updated_at_ms,omitempty"`
}

// Settings are an app's own choices. Zero values take the node's
// configuration.
type Settings struct {
	// DevicePolicy is "multi", "per-platform" or "single" (see
	// actors.DevicePolicy). Empty: the node's.
	DevicePolicy string `json:"device_policy,omitempty"`
	// MaxContentBytes bounds a message's content, at most the node's.
	MaxContentBytes int `json:"max_content_bytes,omitempty"`
	// MaxGroupMembers bounds a group's size, at most the node's.
	MaxGroupMembers int `json:"max_group_members,omitempty"`
	// Webhook is where the app server is told of events.
	Webhook Webhook `json:"webhook"`
	// Push tunes offline push (through the webhook's push.offline event).
	Push Push `json:"push"`
	// RetentionMs, when set, is how long the app's messages are kept: older
	// ones are deleted from the hot store (by every node's retention sweep,
	// node.Config.RetentionInterval) and no longer served by sync, history
	// or the conversation list, nor from the archive. 0: kept forever.
	RetentionMs int64 `json:"retention_ms,omitempty"`
	// ArchiveOnUserDelete is what a user's deletion does to their rows in
	// the archive: "keep" (the default: the archive is the app's record)
	// or "delete".
	ArchiveOnUserDelete string `json:"archive_on_user_delete,omitempty"`
	// WordFilter is the built-in word filter applied to text content before
	// the before-send webhook.
	WordFilter WordFilter `json:"word_filter"`
}

// Webhook is an app's webhook endpoint.
type Webhook struct {
	// URL receives every event as a signed POST; empty: no webhooks.
	URL string `json:"url,omitempty"`
	// Events lists the after-the-fact events the app wants (empty: all).
	Events []string `json:"events,omitempty"`
	// BeforeSend asks the app server about every message before it is
	// stored (allow, refuse or replace), waiting at most TimeoutMs
	// (default 2000); on a timeout or error the message is stored when
	// FailOpen, refused otherwise.
	BeforeSend bool `json:"before_send,omitempty"`
	TimeoutMs  int  `json:"timeout_ms,omitempty"`
	FailOpen   bool `json:"fail_open,omitempty"`
}

// Push tunes offline push.
type Push struct {
	// Enabled calls the webhook with push.offline when a message reaches a
	// user with no device online (or only backgrounded ones).
	Enabled bool `json:"enabled,omitempty"`
	// Preview is "none" (the default: no content in the push) or "text"
	// (the first 100 characters of a text message).
	Preview string `json:"preview,omitempty"`
	// MinIntervalMs is the least time between two pushes to one device
	// (default 1000): the messages that arrive meanwhile are pushed as one,
	// when it has passed, naming the latest and how many there were.
	MinIntervalMs int `json:"min_interval_ms,omitempty"`
}

// DefaultPushIntervalMs is Push.MinIntervalMs when unset.
const DefaultPushIntervalMs = 1000

// MinInterval is p.MinIntervalMs with its default applied.
func (p Push) MinInterval() time.Duration {
	if p.MinIntervalMs <= 0 {
		return DefaultPushIntervalMs * time.Millisecond
	}
	return time.Duration(p.MinIntervalMs) * time.Millisecond
}

// WordFilter blocks or masks words in text content.
type WordFilter struct {
	Words []string `json:"words,omitempty"`
	// Action is "block" (the send is refused) or "mask" (each word is
	// replaced by asterisks). Default block.
	Action string `json:"action,omitempty"`
}

// Bounds of settings.
const (
	maxWords       = 1000
	maxWordBytes   = 64
	maxURLBytes    = 2048
	maxTimeoutMs   = 10_000
	maxEventsNamed = 32
	maxPushMs      = 3_600_000
	minRetentionMs = 1000
	maxRetentionMs = 100 * 365 * 24 * 3_600_000
)

// Validate reports settings out of their bounds.
func (s Settings) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSettings, fmt.Sprintf(format, a...))
	}
	switch s.DevicePolicy {
	case "", "multi", "per-platform", "single":
	default:
		return bad("device_policy %q is not multi, per-platform or single", s.DevicePolicy)
	}
	if s.MaxContentBytes < 0 || s.MaxGroupMembers < 0 {
		return bad("limits must not be negative")
	}
	w := s.Webhook
	if len(w.URL) > maxURLBytes || (w.URL != "" && !httpURL(w.URL)) {
		return bad("webhook url must be an http or https URL of at most %d bytes", maxURLBytes)
	}
	if w.BeforeSend && w.URL == "" {
		return bad("webhook before_send needs a url")
	}
	if w.TimeoutMs < 0 || w.TimeoutMs > maxTimeoutMs {
		return bad("webhook timeout_ms must be 0 to %d", maxTimeoutMs)
	}
	if len(w.Events) > maxEventsNamed {
		return bad("at most %d webhook events", maxEventsNamed)
	}
	switch s.Push.Preview {
	case "", "none", "text":
	default:
		return bad("push preview %q is not none or text", s.Push.Preview)
	}
	if s.Push.MinIntervalMs < 0 || s.Push.MinIntervalMs > maxPushMs {
		return bad("push min_interval_ms must be 0 to %d", maxPushMs)
	}
	if s.Push.Enabled && w.URL == "" {
		return bad("push needs a webhook url")
	}
	if s.RetentionMs != 0 && (s.RetentionMs < minRetentionMs || s.RetentionMs > maxRetentionMs) {
		return bad("retention_ms must be 0 (keep forever) or %d to %d", minRetentionMs, int64(maxRetentionMs))
	}
	switch s.ArchiveOnUserDelete {
	case "", "keep", "delete":
	default:
		return bad("archive_on_user_delete %q is not keep or delete", s.ArchiveOnUserDelete)
	}
	switch s.WordFilter.Action {
	case "", "block", "mask":
	default:
		return bad("word_filter action %q is not block or mask", s.WordFilter.Action)
	}
	if len(s.WordFilter.Words) > maxWords {
		return bad("at most %d filtered words", maxWords)
	}
	for _, word := range s.WordFilter.Words {
		if word == "" || len(word) > maxWordBytes {
			return bad("filtered words are 1 to %d bytes", maxWordBytes)
		}
	}
	return nil
}

func httpURL(u string) bool {
	return len(u) > 8 && (u[:7] == "http://" || u[:8] == "https://")
}

// Store is what the registry keeps its records in: the hot store's state
// records and sets.
type Store interface {
	GetState(ctx context.Context, key string) ([]byte, error)
	PutState(ctx context.Context, key string, value []byte) error
	AddToSet(ctx context.Context, set, member string) error
	SetMembers(ctx context.Context, set string) ([]string, error)
}

// Keys of the registry's records. They sit outside every app's keys: an
// app's keys start with "<app>:" and the default app's with two letters
// and '/' (actors/keys.go).
const (
	indexSet  = "apps"
	keyPrefix = "app/"
)

// Config tunes the registry. Zero values are the defaults.
type Config struct {
	// CacheTTL is how long a node trusts its copy of an app's record, and
	// so how long a change made on another node takes to apply here.
	// Default 2s.
	CacheTTL time.Duration
	// MaxCached bounds the records (and misses) cached. Default 10,000.
	MaxCached int
}

// Registry creates, reads and changes apps.
type Registry struct {
	cfg   Config
	store Store
	now   func() time.Time

	mu    sync.RWMutex // readers: every webhook call and login asks Get
	cache map[string]cached
}

type cached struct {
	app App
	err error
	at  time.Time
}

// New returns a registry over store.
func New(cfg Config, store Store) *Registry {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 2 * time.Second
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = 10_000
	}
	return &Registry{cfg: cfg, store: store, now: time.Now, cache: map[string]cached{}}
}

// Get returns the app with id, from the cache when fresh. The default app
// always exists. Errors: ErrNotFound, or the store's.
func (r *Registry) Get(ctx context.Context, id string) (App, error) {
	if id == "" {
		id = ids.DefaultApp
	}
	r.mu.RLock()
	c, ok := r.cache[id]
	r.mu.RUnlock()
	if ok && r.now().Sub(c.at) < r.cfg.CacheTTL {
		return c.app, c.err
	}
	app, err := r.load(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return App{}, err // a store error is not cached
	}
	r.mu.Lock()
	if len(r.cache) >= r.cfg.MaxCached {
		clear(r.cache)
	}
	r.cache[id] = cached{app: app, err: err, at: r.now()}
	r.mu.Unlock()
	return app, err
}

func (r *Registry) load(ctx context.Context, id string) (App, error) {
	if !ids.ValidApp(id) {
		return App{}, ErrNotFound
	}
	b, err := r.store.GetState(ctx, keyPrefix+id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		if id == ids.DefaultApp {
			return App{ID: id}, nil
		}
		return App{}, ErrNotFound
	case err != nil:
		return App{}, fmt.Errorf("apps: read %s: %w", id, err)
	}
	var a App
	if err := json.Unmarshal(b, &a); err != nil {
		return App{}, fmt.Errorf("apps: decode %s: %w", id, err)
	}
	return a, nil
}

// AppSecrets implements auth.AppSecrets.
func (r *Registry) AppSecrets(ctx context.Context, id string) ([][]byte, error) {
	a, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	out := make([][]byte, len(a.Secrets))
	for i, s := range a.Secrets {
		out[i] = []byte(s)
	}
	return out, nil
}

// Enabled reports whether app's users may log in and use the API: it
// exists and is not disabled. Store errors count as enabled (a store that
// cannot answer stops the users anyway).
func (r *Registry) Enabled(ctx context.Context, id string) bool {
	a, err := r.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return false
	case err != nil:
		return true
	}
	return !a.Disabled
}

// Create registers a new app with settings, and returns it with its first
// token and webhook secrets. The default app cannot be created (it
// exists); configure it with Update.
func (r *Registry) Create(ctx context.Context, id string, s Settings) (App, error) {
	if !ids.ValidApp(id) || id == ids.DefaultApp {
		return App{}, ErrBadID
	}
	if err := s.Validate(); err != nil {
		return App{}, err
	}
	if _, err := r.load(ctx, id); err == nil {
		return App{}, ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return App{}, err
	}
	now := uint64(r.now().UnixMilli())
	a := App{ID: id, Secrets: []string{newSecret()}, WebhookSecrets: []string{newSecret()}, Settings: s,
		CreatedAtMs: now, UpdatedAtMs: now}
	if err := r.put(ctx, a); err != nil {
		return App{}, err
	}
	if err := r.store.AddToSet(ctx, indexSet, id); err != nil {
		return App{}, fmt.Errorf("apps: index %s: %w", id, err)
	}
	return a, nil
}

// Update changes app id with fn, which sees the current record and may
// change anything but the id. Concurrent updates of one app on several
// nodes are last-writer-wins (admin changes are rare and whole).
func (r *Registry) Update(ctx context.Context, id string, fn func(*App) error) (App, error) {
	a, err := r.load(ctx, id)
	if err != nil {
		return App{}, err
	}
	if err := fn(&a); err != nil {
		return App{}, err
	}
	a.ID = id
	if err := a.Settings.Validate(); err != nil {
		return App{}, err
	}
	if a.Settings.Webhook.URL != "" && len(a.WebhookSecrets) == 0 {
		// The default app gets its first webhook secret with its first
		// webhook.
		a.WebhookSecrets = []string{newSecret()}
	}
	a.UpdatedAtMs = uint64(r.now().UnixMilli())
	if a.CreatedAtMs == 0 {
		a.CreatedAtMs = a.UpdatedAtMs
	}
	if err := r.put(ctx, a); err != nil {
		return App{}, err
	}
	if id == ids.DefaultApp {
		if err := r.store.AddToSet(ctx, indexSet, id); err != nil {
			return App{}, fmt.Errorf("apps: index %s: %w", id, err)
		}
	}
	return a, nil
}

// RotateSecret puts a new token secret first and keeps the previous one
// (only), so that tokens signed before the rotation stay valid until the
// next one. The default app's tokens use the node's secret: ErrBadID.
func (r *Registry) RotateSecret(ctx context.Context, id string) (App, error) {
	if id == ids.DefaultApp {
		return App{}, ErrBadID
	}
	return r.Update(ctx, id, func(a *App) error {
		a.Secrets = rotate(a.Secrets)
		return nil
	})
}

// RotateWebhookSecret does for the webhook secret what RotateSecret does
// for the token secret.
func (r *Registry) RotateWebhookSecret(ctx context.Context, id string) (App, error) {
	return r.Update(ctx, id, func(a *App) error {
		a.WebhookSecrets = rotate(a.WebhookSecrets)
		return nil
	})
}

func rotate(s []string) []string {
	out := []string{newSecret()}
	if len(s) > 0 {
		out = append(out, s[0])
	}
	return out
}

// List returns every app, the default one first, then by id.
func (r *Registry) List(ctx context.Context) ([]App, error) {
	names, err := r.store.SetMembers(ctx, indexSet)
	if err != nil {
		return nil, fmt.Errorf("apps: list: %w", err)
	}
	sort.Strings(names)
	out := []App{}
	def, err := r.load(ctx, ids.DefaultApp)
	if err != nil {
		return nil, err
	}
	out = append(out, def)
	for _, id := range names {
		if id == ids.DefaultApp {
			continue
		}
		a, err := r.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (r *Registry) put(ctx context.Context, a App) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := r.store.PutState(ctx, keyPrefix+a.ID, b); err != nil {
		return fmt.Errorf("apps: write %s: %w", a.ID, err)
	}
	r.mu.Lock()
	r.cache[a.ID] = cached{app: a, at: r.now()}
	r.mu.Unlock()
	return nil
}

// newSecret returns 32 random bytes, base64url: a token or webhook secret.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
