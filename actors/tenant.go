package actors

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/apps"
	"actorim/cluster"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Applications (tenants) share the cluster and the stores, and never meet:
// the actors of one app are built with deps of their own (forApp), whose
// grain router and stores qualify every user id, group id and key by the
// app (ids.Qualify). The actors' code names users as its clients do
// ("alice"); only the edges of deps know the app. A grain's identity is
// its qualified id, from which it learns its app on activation. The
// default app's ids are unqualified, so data from before apps existed is
// the default app's as it stands.

// Apps is what the actors need of the app registry: an app's settings.
type Apps interface {
	Get(ctx context.Context, id string) (apps.App, error)
}

// tenants caches the deps of each app, rebuilt when its record changes.
type tenants struct {
	mu   sync.Mutex
	deps map[string]*deps
}

// maxTenants bounds the cached deps; beyond it the cache starts over.
const maxTenants = 4096

// forApp returns the deps of app's actors. The default app's are d's own
// unless its record sets limits.
func (d *deps) forApp(app string) *deps {
	base := d.base
	if base == nil {
		base = d
	}
	if app == "" {
		app = ids.DefaultApp
	}
	var rec apps.App
	if base.apps != nil {
		ctx, cancel := base.storeCtx()
		a, err := base.apps.Get(ctx, app)
		cancel()
		if err == nil {
			rec = a
		} else if app != ids.DefaultApp {
			base.log.Warn("app settings unavailable", "app", app, "err", err)
		}
	}
	base.tenants.mu.Lock()
	defer base.tenants.mu.Unlock()
	if t, ok := base.tenants.deps[app]; ok && t.appUpdatedMs == rec.UpdatedAtMs {
		return t
	}
	t := *base
	t.base, t.app, t.appUpdatedMs = base, app, rec.UpdatedAtMs
	t.cfg = base.cfg.forApp(rec.Settings)
	t.settings = rec.Settings
	t.member = &grains{Member: base.member.Member, app: app}
	if app != ids.DefaultApp {
		sc := scoped{prefix: app + ":", d: base}
		t.accounts, t.timelines, t.sessions = scopedAccounts{sc}, scopedTimelines{sc}, scopedSessions{sc}
		t.records, t.sets = scopedRecords{sc}, scopedSets{sc}
		if base.media != nil {
			t.media = scopedMedia{sc}
		}
		if base.eraser != nil {
			t.eraser = scopedEraser{sc, base.eraser}
		}
		if base.archive != nil {
			t.archive = scopedEraser{sc, base.archive}
		}
	}
	if len(base.tenants.deps) >= maxTenants {
		clear(base.tenants.deps)
	}
	base.tenants.deps[app] = &t
	return &t
}

// scope splits a qualified user id handed to the Service into the deps
// of its app and the user's id within it.
func (d *deps) scope(q string) (*deps, string) {
	app, user := ids.Unqualify(q)
	return d.forApp(app), user
}

// forApp applies an app's settings to the node's configuration: an app
// may choose its device policy and lower the node's limits, never raise
// them.
func (c Config) forApp(s apps.Settings) Config {
	if s.DevicePolicy != "" {
		if p, err := ParseDevicePolicy(s.DevicePolicy); err == nil {
			c.DevicePolicy = p
		}
	}
	if s.MaxContentBytes > 0 {
		c.MaxContentBytes = min(c.MaxContentBytes, s.MaxContentBytes)
	}
	if s.MaxGroupMembers > 0 {
		c.MaxGroupMembers = min(c.MaxGroupMembers, s.MaxGroupMembers)
	}
	return c
}

// grains is the cluster as one app's actors see it: every grain identity
// they name is qualified by their app, so that none can address a grain of
// another app.
type grains struct {
	*cluster.Member
	app string
}

func (g *grains) id(identity string) string { return ids.Qualify(g.app, identity) }

// Get returns the PID of the app's grain identity of kind.
func (g *grains) Get(ctx context.Context, identity, kind string) (*actor.PID, error) {
	return g.Member.Get(ctx, g.id(identity), kind)
}

// Request asks the app's grain identity of kind.
func (g *grains) Request(ctx context.Context, identity, kind string, msg any) (any, error) {
	return g.Member.Request(ctx, g.id(identity), kind, msg)
}

// Evict forgets a cached PID of the app's grain identity.
func (g *grains) Evict(identity, kind string, pid *actor.PID) {
	g.Member.Evict(g.id(identity), kind, pid)
}

// owns reports whether pid is still where the app's grain identity lives.
func (g *grains) owns(owners cluster.Owners, pid *actor.PID, identity, kind string) bool {
	return cluster.Owns(owners, pid, g.id(identity), kind)
}

// scoped qualifies the ids and keys one app's actors hand the stores.
type scoped struct {
	prefix string // "<app>:"
	d      *deps  // the node's deps, holding the unscoped stores
}

func (s scoped) q(id string) string { return s.prefix + id }

func (s scoped) qs(list []string) []string {
	out := make([]string, len(list))
	for i, id := range list {
		out[i] = s.prefix + id
	}
	return out
}

// own strips the app's prefix from an id the store returns; an id of
// another app (never expected) becomes one no user of this app can hold.
func (s scoped) own(id string) string {
	if rest, ok := strings.CutPrefix(id, s.prefix); ok {
		return rest
	}
	return "#foreign:" + id
}

type scopedAccounts struct{ scoped }

func (s scopedAccounts) CreateAccount(ctx context.Context, a persistence.Account) error {
	a.UserID = s.q(a.UserID)
	return s.d.accounts.CreateAccount(ctx, a)
}

func (s scopedAccounts) GetAccount(ctx context.Context, userID string) (persistence.Account, error) {
	a, err := s.d.accounts.GetAccount(ctx, s.q(userID))
	a.UserID = userID
	return a, err
}

// Users lists the app's users: those whose qualified id has its prefix,
// which sort together.
func (s scopedAccounts) Users(ctx context.Context, after string, limit int) ([]string, error) {
	store := s.d.accounts
	if def, ok := store.(defaultAccounts); ok {
		store = def.Accounts // the node's store: the default app's view leaves out every qualified id
	}
	raw, err := store.Users(ctx, s.q(after), limit)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(raw))
	for _, id := range raw {
		rest, ok := strings.CutPrefix(id, s.prefix)
		if !ok {
			break // past the app's ids
		}
		if !strings.HasPrefix(rest, "#") {
			out = append(out, rest)
		}
	}
	return out, nil
}

type scopedTimelines struct{ scoped }

func (s scopedTimelines) req(r *persistence.AppendRequest) *persistence.AppendRequest {
	c := *r
	if c.Sender != "" {
		c.Sender = s.q(c.Sender)
	}
	c.Timelines = s.qs(r.Timelines)
	return &c
}

func (s scopedTimelines) Append(ctx context.Context, r *persistence.AppendRequest) (*persistence.AppendResult, error) {
	return s.d.timelines.Append(ctx, s.req(r))
}

func (s scopedTimelines) AppendAll(ctx context.Context, rs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error) {
	out := make([]*persistence.AppendRequest, len(rs))
	for i, r := range rs {
		out[i] = s.req(r)
	}
	return s.d.timelines.AppendAll(ctx, out)
}

func (s scopedTimelines) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	return s.d.timelines.ReadTimeline(ctx, s.q(userID), afterSeq, limit)
}

func (s scopedTimelines) LastSeq(ctx context.Context, userID string) (uint64, error) {
	return s.d.timelines.LastSeq(ctx, s.q(userID))
}

func (s scopedTimelines) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	return s.d.timelines.ReadConversation(ctx, s.q(userID), conversationID, beforeSeq, limit)
}

type scopedSessions struct{ scoped }

func (s scopedSessions) PutSession(ctx context.Context, ss persistence.Session, ttl time.Duration) error {
	ss.UserID = s.q(ss.UserID)
	return s.d.sessions.PutSession(ctx, ss, ttl)
}

func (s scopedSessions) DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error {
	return s.d.sessions.DeleteSession(ctx, s.q(userID), deviceID, sessionID)
}

func (s scopedSessions) Sessions(ctx context.Context, userID string) ([]persistence.Session, error) {
	list, err := s.d.sessions.Sessions(ctx, s.q(userID))
	for i := range list {
		list[i].UserID = s.own(list[i].UserID)
	}
	return list, err
}

type scopedRecords struct{ scoped }

func (s scopedRecords) GetState(ctx context.Context, key string) ([]byte, error) {
	return s.d.records.GetState(ctx, s.q(key))
}

func (s scopedRecords) PutState(ctx context.Context, key string, value []byte) error {
	return s.d.records.PutState(ctx, s.q(key), value)
}

func (s scopedRecords) DeleteState(ctx context.Context, key string) error {
	return s.d.records.DeleteState(ctx, s.q(key))
}

type scopedSets struct{ scoped }

func (s scopedSets) AddToSet(ctx context.Context, set, member string) error {
	return s.d.sets.AddToSet(ctx, s.q(set), member)
}

func (s scopedSets) SetMembers(ctx context.Context, set string) ([]string, error) {
	return s.d.sets.SetMembers(ctx, s.q(set))
}

type scopedMedia struct{ scoped }

// GetMediaFile returns the record of a file with its owner as the app knows
// it: a file uploaded by another app's user has an owner no user of this
// app is, so that it can never be sent from here (media.go checks owners).
func (s scopedMedia) GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error) {
	f, err := s.d.media.GetMediaFile(ctx, id)
	f.Owner = s.own(f.Owner)
	return f, err
}

func (s scopedMedia) MarkMediaSent(ctx context.Context, id string, atMs uint64) error {
	return s.d.media.MarkMediaSent(ctx, id, atMs)
}

// defaultAccounts is the node's Accounts as the default app sees it: its
// user listing leaves out every other app's users (qualified ids, which
// hold ':').
type defaultAccounts struct{ Accounts }

func (a defaultAccounts) Users(ctx context.Context, after string, limit int) ([]string, error) {
	var out []string
	for len(out) < limit {
		raw, err := a.Accounts.Users(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		for _, id := range raw {
			if !strings.Contains(id, ":") && len(out) < limit {
				out = append(out, id)
			}
		}
		if len(raw) < limit {
			break
		}
		after = raw[len(raw)-1]
		if app, _, ok := strings.Cut(after, ":"); ok {
			// Skip the rest of that app's ids at once: ';' sorts right
			// after ':', and no user id holds it.
			after = app + ";"
		}
	}
	return out, nil
}
