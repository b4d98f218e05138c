package actors

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// userGrain is the virtual actor of one user. It keeps the user's online
// devices, applies the multi-device policy, and performs the user's sends.
// Its only durable state lives in the store; the device list is rebuilt by
// the connections re-attaching whenever the grain is activated elsewhere.
type userGrain struct {
	d          *deps
	id         string
	devices    map[string]*device // by device id
	refreshing bool               // a session refresh is scheduled
	// hasAccount caches that the account exists: users of tokens minted by an
	// application server are provisioned at their first login.
	hasAccount bool
	// convs is the conversation index, loaded on first use (convs.go).
	convs *storepb.ConvState
	soc   social // friends and blacklist (social.go), presence (presence.go)
	// tokens is the user's token revocation, loaded on first use (tokens.go).
	tokens *storepb.TokenState
	// unknown is set when the grain learned that its user has no account.
	unknown bool
	// prof bounds the rate of profile changes (profile.go).
	prof profileLimit
	// hook is the presence the app's webhook was told (webhook_events.go).
	hook presenceHook
	// push is the offline push state (push.go).
	push pushes
}

type device struct {
	platform clientpb.Platform
	session  string
	conn     *actor.PID
	// tokenIssuedAtMs is when the device's login token was issued (0: not
	// known, for a device adopted from an earlier activation).
	tokenIssuedAtMs uint64
	// background: the device reported its app in the background
	// (DeviceState); it is pushed as if offline (push.go).
	background bool
}

func newUserGrain(d *deps) *userGrain {
	return &userGrain{d: d, devices: map[string]*device{}}
}

func (g *userGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pcluster.ClusterInit:
		var app string
		app, g.id = ids.Unqualify(m.Identity.GetIdentity())
		g.d = g.d.forApp(app)
		g.d.metrics.GrainsActivated.Inc()
		g.d.metrics.LiveGrains.WithLabelValues(KindUser).Inc()
		ctx.SetReceiveTimeout(g.d.cfg.GrainIdle)
		g.loadSessions(ctx)
		g.presenceBaseline()
		g.hook.online = len(g.devices) > 0
	case refreshSessions:
		g.refreshing = false
		g.putSessions()
		g.scheduleRefresh(ctx)
	case *actor.Restarting, *actor.Stopped:
		g.d.metrics.LiveGrains.WithLabelValues(KindUser).Dec()
	case *actorpb.SendRequest:
		g.onSend(ctx, m)
		g.stopIfUnknown(ctx)
	case *actorpb.Deliver:
		g.notify(ctx, m.GetEntries(), m.GetExceptSession())
		if ctx.Sender() != nil {
			ctx.Respond(&actorpb.DeliverAck{})
		}
		g.offlinePush(ctx, m.GetEntries())
	case pushFlush:
		g.flushPushes(ctx, false)
	case *actorpb.UserOp:
		g.onUserOp(ctx, m)
	case *actorpb.SignalDevices:
		if !g.blocks(m.GetFrom()) {
			g.signal(ctx, m.GetSignal())
		}
	case *actorpb.AdminRecall:
		ctx.Respond(g.onAdminRecall(ctx, m))
	case *actorpb.Attach:
		g.onAttach(ctx, m)
		g.pushPresence(ctx)
		g.presenceHooks(m.GetDeviceId())
	case *actorpb.Detach:
		d, ok := g.devices[m.GetDeviceId()]
		if ok && d.session == m.GetSessionId() {
			g.unwatch(ctx, d.conn)
			g.removeDevice(m.GetDeviceId(), d)
		}
		// A logout drops the device's push registration, also when the
		// watch reported the connection gone first (it may overtake the
		// Detach between nodes), unless a newer session of the device is on.
		if m.GetLogout() && (!ok || d.session == m.GetSessionId()) {
			g.dropPush(func(id string, _ *storepb.PushDevice) bool { return id == m.GetDeviceId() })
		}
		g.pushPresence(ctx)
		g.presenceHooks("")
	case *actor.Terminated:
		for id, d := range g.devices {
			if d.conn.Equal(m.GetWho()) {
				g.removeDevice(id, d)
			}
		}
		g.pushPresence(ctx)
		g.presenceHooks("")
	case *actorpb.PeerOp:
		ctx.Respond(g.onPeerOp(m))
	case *actorpb.CreateAccount:
		ctx.Respond(g.createAccount(m))
	case *actorpb.GetAccount:
		res := g.getAccount()
		ctx.Respond(res)
		g.unknown = !res.GetFound() && res.GetError() == nil
		g.stopIfUnknown(ctx)
	case *actorpb.RevokeTokens:
		ctx.Respond(g.onRevokeTokens(ctx, m))
	case *actorpb.SetDisabled:
		ctx.Respond(g.onSetDisabled(ctx, m))
	case *actorpb.KickUser:
		ctx.Respond(g.onKickUser(ctx, m))
	case *actorpb.AdminPush:
		ctx.Respond(g.onAdminPush(m))
	case *actorpb.AdminSetProfile:
		ctx.Respond(g.onAdminSetProfile(ctx, m))
	case *actorpb.EraseUser:
		ctx.Respond(g.onErase(ctx))
		g.stopIfUnknown(ctx)
	case *actor.ReceiveTimeout:
		if len(g.devices) == 0 {
			g.flushPushes(ctx, true)
			ctx.Stop(ctx.Self())
		} else {
			ctx.SetReceiveTimeout(g.d.cfg.GrainIdle) // after a short one (stopIfUnknown)
		}
	}
}

func (g *userGrain) onAttach(ctx actor.Context, m *actorpb.Attach) {
	conn := fromPB(m.GetConn())
	if conn == nil || !ids.ValidDevice(m.GetDeviceId()) {
		ctx.Respond(&actorpb.AttachResult{Error: clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "attach: bad device or connection")})
		return
	}
	if e := g.ensureAccount(); e != nil {
		ctx.Respond(&actorpb.AttachResult{Error: e})
		return
	}
	// Checked here, not only by the gateway, so that a login racing a
	// revocation or a disable cannot attach after its kick.
	if e := g.loginRefused(m.GetTokenIssuedAtMs()); e != nil {
		ctx.Respond(&actorpb.AttachResult{Error: e})
		return
	}
	if !m.GetResume() {
		g.applyPolicy(ctx, m)
	}
	if old, ok := g.devices[m.GetDeviceId()]; ok && !old.conn.Equal(conn) {
		// A connection following this grain after a move must not displace a
		// newer login of the same device, which may have attached first; it
		// is the one replaced.
		if m.GetResume() && old.session > m.GetSessionId() {
			ctx.Respond(&actorpb.AttachResult{Replaced: true})
			return
		}
		g.unwatch(ctx, old.conn)
	}
	d := &device{platform: m.GetPlatform(), session: m.GetSessionId(), conn: conn, tokenIssuedAtMs: m.GetTokenIssuedAtMs(), background: m.GetBackground()}
	g.devices[m.GetDeviceId()] = d
	g.watch(ctx, conn)
	g.putSession(m.GetDeviceId(), d)
	g.scheduleRefresh(ctx)

	sctx, cancel := g.d.storeCtx()
	defer cancel()
	latest, err := g.d.timelines.LastSeq(sctx, g.id)
	if err != nil {
		g.d.log.Error("attach: read last seq", "user", g.id, "err", err)
		ctx.Respond(&actorpb.AttachResult{Error: errStoreUnavailable})
		return
	}
	ctx.Respond(&actorpb.AttachResult{LatestSeq: latest, Muted: g.mutedConvs()})
}

// ensureAccount provisions the user on first login with a token the
// application server minted: the shared secret vouches for the user id.
func (g *userGrain) ensureAccount() *clientpb.Error {
	if g.hasAccount {
		return nil
	}
	if r := g.createAccount(&actorpb.CreateAccount{IfMissing: true}); r.GetError() != nil {
		return r.GetError()
	}
	g.hasAccount = true
	return nil
}

// applyPolicy kicks the devices a new login displaces: always the same device
// id on another connection, and per the policy other devices of the same
// platform or all other devices.
func (g *userGrain) applyPolicy(ctx actor.Context, m *actorpb.Attach) {
	for id, d := range g.devices {
		var reason clientpb.KickReason
		var why string
		switch {
		case id == m.GetDeviceId():
			if d.session == m.GetSessionId() {
				continue
			}
			reason, why = clientpb.KickReason_KICK_REASON_REPLACED, "this device logged in on another connection"
		case g.d.cfg.DevicePolicy == PolicySingle:
			reason, why = clientpb.KickReason_KICK_REASON_DEVICE_POLICY, "another device logged in (one device allowed)"
		case g.d.cfg.DevicePolicy == PolicyPerPlatform && d.platform == m.GetPlatform():
			reason, why = clientpb.KickReason_KICK_REASON_DEVICE_POLICY, "another device of this platform logged in (one per platform allowed)"
		default:
			continue
		}
		ctx.Send(d.conn, &actorpb.KickDevice{Reason: reason, Message: why})
		g.unwatch(ctx, d.conn)
		g.removeDevice(id, d)
	}
}

// stopIfUnknown stops a grain whose user turned out not to exist soon after
// it answered (see unknownIdle): requests naming random user ids must not
// each keep a grain for GrainIdle.
func (g *userGrain) stopIfUnknown(ctx actor.Context) {
	if g.unknown && len(g.devices) == 0 {
		g.unknown = false
		ctx.SetReceiveTimeout(unknownIdle)
	}
}

func (g *userGrain) createAccount(m *actorpb.CreateAccount) *actorpb.CreateAccountResult {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	err := g.d.accounts.CreateAccount(sctx, persistence.Account{
		UserID: g.id, PasswordHash: m.GetPasswordHash(), CreatedAtMs: uint64(time.Now().UnixMilli()),
	})
	switch {
	case err == nil, errors.Is(err, persistence.ErrExists) && m.GetIfMissing():
		return &actorpb.CreateAccountResult{}
	case errors.Is(err, persistence.ErrExists):
		return &actorpb.CreateAccountResult{Error: clientError(clientpb.ErrorCode_ERR_CONFLICT, "user id already registered")}
	default:
		g.d.log.Error("create account", "user", g.id, "err", err)
		return &actorpb.CreateAccountResult{Error: errStoreUnavailable}
	}
}

func (g *userGrain) getAccount() *actorpb.GetAccountResult {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	a, err := g.d.accounts.GetAccount(sctx, g.id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return &actorpb.GetAccountResult{}
	case err != nil:
		g.d.log.Error("get account", "user", g.id, "err", err)
		return &actorpb.GetAccountResult{Error: errStoreUnavailable}
	}
	return &actorpb.GetAccountResult{Found: true, PasswordHash: a.PasswordHash, CreatedAtMs: a.CreatedAtMs}
}

// watch watches a connection on another node, whose death (with its node)
// nothing else would report. A connection on this node always detaches when
// it ends, and watching costs each side a set of its own (about 1 KiB per
// idle connection).
func (g *userGrain) watch(ctx actor.Context, conn *actor.PID) {
	if conn.GetAddress() != ctx.Self().GetAddress() {
		ctx.Watch(conn)
	}
}

func (g *userGrain) unwatch(ctx actor.Context, conn *actor.PID) {
	// Unwatching a PID that is not watched (a local one attached directly)
	// is harmless, and an adopted local one may be watched.
	ctx.Unwatch(conn)
}

// Device sessions are written to the store so that a new activation of this
// grain (after a move or a crash) knows the devices at once, and so that
// presence can be answered without activating grains. They expire unless
// refreshed, which the grain does while it has devices.
const (
	sessionTTL     = 90 * time.Second
	sessionRefresh = sessionTTL / 3
)

type refreshSessions struct{}

func (g *userGrain) putSession(deviceID string, d *device) {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	err := g.d.sessions.PutSession(sctx, persistence.Session{
		UserID: g.id, DeviceID: deviceID, SessionID: d.session, Platform: d.platform,
		Node: d.conn.GetAddress(), ConnID: d.conn.GetId(),
	}, sessionTTL)
	if err != nil {
		g.d.log.Warn("put session", "user", g.id, "device", deviceID, "err", err)
	}
}

func (g *userGrain) putSessions() {
	for id, d := range g.devices {
		g.putSession(id, d)
	}
}

func (g *userGrain) removeDevice(deviceID string, d *device) {
	delete(g.devices, deviceID)
	g.hook.gone, g.hook.platform = deviceID, d.platform
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	if err := g.d.sessions.DeleteSession(sctx, g.id, deviceID, d.session); err != nil {
		g.d.log.Warn("delete session", "user", g.id, "device", deviceID, "err", err)
	}
}

func (g *userGrain) scheduleRefresh(ctx actor.Context) {
	if g.refreshing || len(g.devices) == 0 {
		return
	}
	g.refreshing = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(sessionRefresh, func() { root.Send(self, refreshSessions{}) })
}

// loadSessions adopts the devices recorded by an earlier activation; a
// connection that is gone is reported by the watch and dropped.
func (g *userGrain) loadSessions(ctx actor.Context) {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	sessions, err := g.d.sessions.Sessions(sctx, g.id)
	if err != nil {
		g.d.log.Warn("load sessions", "user", g.id, "err", err)
		return
	}
	for _, s := range sessions {
		conn := actor.NewPID(s.Node, s.ConnID)
		g.devices[s.DeviceID] = &device{platform: s.Platform, session: s.SessionID, conn: conn}
		// Watched wherever it lives: an adopted connection may be dead
		// already (its Detach went to the old activation), and watching a
		// dead PID reports it at once; otherwise the device would stay, and
		// its session be refreshed, forever.
		ctx.Watch(conn)
	}
	g.scheduleRefresh(ctx)
}

// onUserOp answers a request of the user's own (frames 17 to 30, 32).
func (g *userGrain) onUserOp(ctx actor.Context, m *actorpb.UserOp) {
	var res *actorpb.OpResult
	switch b := m.GetFrame().GetBody().(type) {
	case *clientpb.Frame_Typing:
		res = g.onTyping(ctx, b.Typing)
	case *clientpb.Frame_Read:
		res = g.onMarkRead(ctx, b.Read)
	case *clientpb.Frame_Recall:
		res = g.onRecall(ctx, b.Recall)
	case *clientpb.Frame_Conversations:
		res = g.onConversations(ctx)
	case *clientpb.Frame_ConversationUpdate:
		res = g.onConversationUpdate(ctx, b.ConversationUpdate)
	case *clientpb.Frame_SetProfile:
		res = g.onSetProfile(ctx, m, b.SetProfile)
	case *clientpb.Frame_RegisterPush:
		res = g.onRegisterPush(m, b.RegisterPush)
	case *clientpb.Frame_DeviceState:
		res = g.onDeviceState(m, b.DeviceState)
	default:
		res = g.onSocial(ctx, m)
	}
	if res == nil {
		res = &actorpb.OpResult{}
	}
	ctx.Respond(res)
}
