package actors

import (
	"context"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/hooks"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Offline push (docs/webhooks.md, push.offline). A device registers its
// push token (RegisterPush), kept in the user's record pt/<user>, and says
// when its app goes to the background (DeviceState). When a message reaches
// the user's grain (a Deliver) and none of the user's devices is online in
// the foreground, the grain hands the node's push batcher one note naming
// the registered devices that are offline or backgrounded, the unread total
// as the badge, and the message (with a preview when the app shows them).
// No note is made for the user's own messages, events, silent messages or
// muted conversations.
//
// Each device is pushed at most once per the app's push interval: messages
// arriving meanwhile are held in the grain and pushed as one when it has
// passed (the latest message, with how many it stands for). A message is
// considered once per activation (seq above the highest seen), so a
// delivery hint that comes twice does not push twice.
//
// Pushes are a courtesy beside the durable timeline: a delivery hint lost
// between nodes, a note held back when the grain's node crashes or one in
// the batcher's window then is not pushed; the message itself syncs.

// Bounds of push registrations.
const (
	maxPushDevices  = 20
	maxPushToken    = 4096
	maxPushProvider = 32
)

// pushKey names user's push registrations (a storepb.PushState).
func pushKey(user string) string { return "pt/" + user }

// pushFlush is the grain's reminder to push what the rate limit held back.
type pushFlush struct{}

// pushes is the grain's offline push state.
type pushes struct {
	st      *storepb.PushState // registrations, loaded on first use
	seq     uint64             // highest timeline seq considered
	last    map[string]time.Time
	held    map[string]*heldPush // by device
	flushAt time.Time            // when a pushFlush is due (zero: none armed)
}

// heldPush is what the rate limit holds back for a device.
type heldPush struct {
	msg       *clientpb.Message
	count     int
	mentioned bool
}

var (
	errPushProvider = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "register_push: provider must be 1 to 32 characters of [a-z0-9_.-]")
	errPushToken    = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "register_push: token must be at most 4096 printable ASCII characters")
)

func validProvider(s string) bool {
	if len(s) == 0 || len(s) > maxPushProvider {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func validPushToken(s string) bool {
	if len(s) > maxPushToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// pushState returns the user's registrations, loading them on first use.
func (g *userGrain) pushState() (*storepb.PushState, error) {
	if g.push.st == nil {
		st := &storepb.PushState{}
		if _, err := g.d.loadState(pushKey(g.id), st); err != nil {
			return nil, err
		}
		g.push.st = st
	}
	return g.push.st, nil
}

// savePush writes the registrations (deleting the record when none is left).
func (g *userGrain) savePush(st *storepb.PushState) error {
	if len(st.GetDevices()) == 0 {
		sctx, cancel := g.d.storeCtx()
		defer cancel()
		if err := g.d.records.DeleteState(sctx, pushKey(g.id)); err != nil {
			return err
		}
	} else if err := g.d.saveState(pushKey(g.id), st); err != nil {
		return err
	}
	g.push.st = st
	return nil
}

// onRegisterPush records (or, with no token, removes) the device's push
// registration.
func (g *userGrain) onRegisterPush(m *actorpb.UserOp, r *clientpb.RegisterPush) *actorpb.OpResult {
	token := r.GetToken()
	if !validPushToken(token) {
		return &actorpb.OpResult{Error: errPushToken}
	}
	if token != "" && !validProvider(r.GetProvider()) {
		return &actorpb.OpResult{Error: errPushProvider}
	}
	st, err := g.pushState()
	if err != nil {
		g.d.log.Error("push: load registrations", "user", g.id, "err", err)
		return &actorpb.OpResult{Error: errStoreUnavailable}
	}
	device := m.GetDeviceId()
	cur := st.GetDevices()[device]
	if token == "" && cur == nil || token != "" && cur.GetToken() == token && cur.GetProvider() == r.GetProvider() {
		return &actorpb.OpResult{} // nothing changes
	}
	next := &storepb.PushState{Devices: map[string]*storepb.PushDevice{}}
	for id, d := range st.GetDevices() {
		next.Devices[id] = d
	}
	if token == "" {
		delete(next.Devices, device)
	} else {
		var platform clientpb.Platform
		if d := g.devices[device]; d != nil {
			platform = d.platform
		}
		next.Devices[device] = &storepb.PushDevice{Provider: r.GetProvider(), Token: token, Platform: platform, RegisteredAtMs: nowMs()}
		for len(next.Devices) > maxPushDevices { // forget the oldest registration
			oldest := ""
			for id, d := range next.Devices {
				if oldest == "" || d.GetRegisteredAtMs() < next.Devices[oldest].GetRegisteredAtMs() ||
					d.GetRegisteredAtMs() == next.Devices[oldest].GetRegisteredAtMs() && id < oldest {
					oldest = id
				}
			}
			delete(next.Devices, oldest)
		}
	}
	if err := g.savePush(next); err != nil {
		g.d.log.Error("push: save registrations", "user", g.id, "err", err)
		return &actorpb.OpResult{Error: errStoreUnavailable}
	}
	return &actorpb.OpResult{}
}

// dropPush removes the registrations drop reports true for. A failure is
// logged: the registrations stay, and the app server may still be asked to
// push to them.
func (g *userGrain) dropPush(drop func(id string, d *storepb.PushDevice) bool) {
	st, err := g.pushState()
	if err != nil {
		g.d.log.Error("push: load registrations", "user", g.id, "err", err)
		return
	}
	next := &storepb.PushState{Devices: map[string]*storepb.PushDevice{}}
	for id, d := range st.GetDevices() {
		if !drop(id, d) {
			next.Devices[id] = d
		}
	}
	if len(next.Devices) == len(st.GetDevices()) {
		return
	}
	if err := g.savePush(next); err != nil {
		g.d.log.Error("push: save registrations", "user", g.id, "err", err)
	}
}

// onDeviceState records whether the device's app is in the background.
func (g *userGrain) onDeviceState(m *actorpb.UserOp, s *clientpb.DeviceState) *actorpb.OpResult {
	if d := g.devices[m.GetDeviceId()]; d != nil && d.session == m.GetSessionId() {
		d.background = s.GetBackground()
	}
	return &actorpb.OpResult{}
}

// pushing reports whether the app pushes to offline devices.
func (d *deps) pushing() bool {
	return d.webhooks != nil && d.settings.Push.Enabled && d.settings.Webhook.URL != ""
}

// pushable reports whether m, in the user's timeline, may alert the user.
func (g *userGrain) pushable(m *clientpb.Message) bool {
	return m != nil && m.GetFrom() != g.id && !m.GetSilent() && !m.GetRecalled() &&
		m.GetContent() != nil && m.GetContent().GetEvent() == nil
}

// mentions reports whether m @mentions the user.
func (g *userGrain) mentions(m *clientpb.Message) bool {
	for _, u := range m.GetMentions() {
		if u == g.id || u == "all" {
			return true
		}
	}
	return false
}

// pushTargets returns the registered devices to push now: none when a
// device is online in the foreground, else those offline or backgrounded.
func (g *userGrain) pushTargets() map[string]*storepb.PushDevice {
	for _, d := range g.devices {
		if !d.background {
			return nil
		}
	}
	st, err := g.pushState()
	if err != nil {
		g.d.log.Error("push: load registrations", "user", g.id, "err", err)
		return nil
	}
	return st.GetDevices()
}

// offlinePush considers entries just appended to the user's timeline for a
// push (see the top of this file).
func (g *userGrain) offlinePush(ctx actor.Context, entries []*clientpb.Entry) {
	if !g.d.pushing() {
		return
	}
	var fresh []*clientpb.Message
	for _, e := range entries {
		if e.GetSeq() <= g.push.seq {
			continue
		}
		g.push.seq = e.GetSeq()
		if m := e.GetMessage(); g.pushable(m) {
			fresh = append(fresh, m)
		}
	}
	if len(fresh) == 0 {
		return
	}
	targets := g.pushTargets()
	if len(targets) == 0 {
		return
	}
	if st, err := g.access(); err != nil || st.GetDisabled() {
		return
	}
	// The index brings the unread counts (the badge) and the mutes up to
	// this message.
	if err := g.indexConvs(); err != nil {
		g.d.log.Warn("push: index conversations", "user", g.id, "err", err)
		return
	}
	var latest *clientpb.Message
	count, mentioned := 0, false
	for _, m := range fresh {
		if g.convs.GetConvs()[m.GetConversationId()].GetMuted() {
			continue
		}
		latest, count, mentioned = m, count+1, mentioned || g.mentions(m)
	}
	if latest == nil {
		return
	}
	now := time.Now()
	interval := g.d.settings.Push.MinInterval()
	var ready []string
	for id := range targets {
		if h := g.push.held[id]; h != nil {
			h.msg, h.count, h.mentioned = latest, h.count+count, h.mentioned || mentioned
			continue
		}
		if last, ok := g.push.last[id]; ok && now.Sub(last) < interval {
			if g.push.held == nil {
				g.push.held = map[string]*heldPush{}
			}
			g.push.held[id] = &heldPush{msg: latest, count: count, mentioned: mentioned}
			g.armPushFlush(ctx, last.Add(interval))
			continue
		}
		ready = append(ready, id)
	}
	g.emitPush(ready, targets, latest, count, mentioned, now)
}

// armPushFlush makes sure a pushFlush comes by at.
func (g *userGrain) armPushFlush(ctx actor.Context, at time.Time) {
	if !g.push.flushAt.IsZero() && !g.push.flushAt.After(at) {
		return
	}
	g.push.flushAt = at
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(time.Until(at), func() { root.Send(self, pushFlush{}) })
}

// flushPushes pushes what the rate limit held back and is due now (all of
// it when all: the grain is stopping).
func (g *userGrain) flushPushes(ctx actor.Context, all bool) {
	g.push.flushAt = time.Time{}
	if len(g.push.held) == 0 {
		return
	}
	now := time.Now()
	interval := g.d.settings.Push.MinInterval()
	due := map[*heldPush][]string{}
	var next time.Time
	for id, h := range g.push.held {
		at := g.push.last[id].Add(interval)
		if !all && at.After(now) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		due[h] = append(due[h], id)
		delete(g.push.held, id)
	}
	if !next.IsZero() {
		g.armPushFlush(ctx, next)
	}
	targets := g.pushTargets()
	if len(targets) == 0 || len(due) == 0 {
		return // a device came to the foreground meanwhile: it sees the messages
	}
	if err := g.indexConvs(); err != nil {
		g.d.log.Warn("push: index conversations", "user", g.id, "err", err)
		return
	}
	for h, devices := range due {
		g.emitPush(devices, targets, h.msg, h.count, h.mentioned, now)
	}
}

// emitPush hands the batcher one note for the devices (those still in
// targets) and records when they were pushed.
func (g *userGrain) emitPush(devices []string, targets map[string]*storepb.PushDevice, m *clientpb.Message, count int, mentioned bool, now time.Time) {
	sort.Strings(devices)
	var tokens []hooks.PushToken
	for _, id := range devices {
		t := targets[id]
		if t == nil {
			continue
		}
		tokens = append(tokens, hooks.PushToken{Device: id, Platform: platformName(t.GetPlatform()), Provider: t.GetProvider(), Token: t.GetToken()})
		if g.push.last == nil {
			g.push.last = map[string]time.Time{}
		}
		g.push.last[id] = now
	}
	if len(tokens) == 0 {
		return
	}
	badge := 0
	for _, c := range g.convs.GetConvs() {
		badge += int(c.GetUnread())
	}
	g.d.webhooks.Push(hooks.PushNote{
		App:       g.d.app,
		Message:   hooks.PushMessageOf(m, g.d.settings.Push.Preview == "text"),
		Recipient: hooks.PushRecipient{User: g.id, Tokens: tokens, Badge: badge, Count: count, Mentioned: mentioned},
	})
}

// PushRegistration is a device's push registration as the admin API shows
// it.
type PushRegistration struct {
	DeviceID       string
	Platform       string
	Provider       string
	Token          string
	RegisteredAtMs uint64
}

// PushRegistrations lists an existing user's push registrations (qualified
// user id), by device id.
func (s *Service) PushRegistrations(ctx context.Context, user string) ([]PushRegistration, *clientpb.Error) {
	res, e := s.adminPush(ctx, user, &actorpb.AdminPush{})
	return registrationsOf(res.GetState()), e
}

// RemovePushRegistration removes device's push registration from an
// existing user, when token is empty or still the registered one; it
// reports whether one was removed.
func (s *Service) RemovePushRegistration(ctx context.Context, user, device, token string) (bool, *clientpb.Error) {
	res, e := s.adminPush(ctx, user, &actorpb.AdminPush{Remove: true, DeviceId: device, Token: token})
	return res.GetRemoved(), e
}

func (s *Service) adminPush(ctx context.Context, user string, msg *actorpb.AdminPush) (*actorpb.AdminPushResult, *clientpb.Error) {
	d, user := s.d.scope(user)
	if e := d.requireAccount(ctx, user); e != nil {
		return nil, e
	}
	res, err := d.member.Request(ctx, user, KindUser, msg)
	if err != nil {
		return nil, errNoAnswer
	}
	r, ok := res.(*actorpb.AdminPushResult)
	if !ok {
		return nil, errUnexpectedAnswer
	}
	return r, r.GetError()
}

// registrationsOf lists st's registrations by device id.
func registrationsOf(st *storepb.PushState) []PushRegistration {
	out := make([]PushRegistration, 0, len(st.GetDevices()))
	for id, d := range st.GetDevices() {
		out = append(out, PushRegistration{DeviceID: id, Platform: platformName(d.GetPlatform()), Provider: d.GetProvider(),
			Token: d.GetToken(), RegisteredAtMs: d.GetRegisteredAtMs()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}

// onAdminPush serves the admin API's reading or removal of registrations.
func (g *userGrain) onAdminPush(m *actorpb.AdminPush) *actorpb.AdminPushResult {
	st, err := g.pushState()
	if err != nil {
		g.d.log.Error("push: load registrations", "user", g.id, "err", err)
		return &actorpb.AdminPushResult{Error: errStoreUnavailable}
	}
	if !m.GetRemove() {
		return &actorpb.AdminPushResult{State: st}
	}
	cur := st.GetDevices()[m.GetDeviceId()]
	if cur == nil || (m.GetToken() != "" && cur.GetToken() != m.GetToken()) {
		return &actorpb.AdminPushResult{State: st}
	}
	g.dropPush(func(id string, _ *storepb.PushDevice) bool { return id == m.GetDeviceId() })
	if g.push.st.GetDevices()[m.GetDeviceId()] != nil { // the write failed
		return &actorpb.AdminPushResult{Error: errStoreUnavailable}
	}
	return &actorpb.AdminPushResult{State: g.push.st, Removed: true}
}
