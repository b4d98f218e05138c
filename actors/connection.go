package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"actorim/cluster"
	"actorim/ids"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// Outbound is the socket side of a connection, implemented by the gateway.
type Outbound interface {
	// WriteFrame encodes and writes one frame. Safe for concurrent use.
	WriteFrame(f *clientpb.Frame) error
	// Close sends a close frame with code and reason and closes the socket.
	Close(code int, reason string)
}

// Session is a verified login, handed from the gateway to a new connection.
type Session struct {
	// App is the user's application (ids.DefaultApp when there is one);
	// UserID is the user's id within it.
	App       string
	UserID    string
	DeviceID  string
	SessionID string
	Platform  clientpb.Platform
	// LastSeq is the device's resume point, nil to start at the timeline's end.
	LastSeq *uint64
	// LoginID is the Login frame's id, echoed on LoginOK.
	LoginID uint32
	// HeartbeatMs and MaxFrameBytes are reported in LoginOK.
	HeartbeatMs, MaxFrameBytes uint32
	// TokenIssuedAt is the login token's "iat" (zero if it had none); the
	// user grain refuses tokens issued before the user's revocation.
	TokenIssuedAt time.Time
}

// Inbound is the gateway's side of a logged-in connection: where its
// frames go.
type Inbound interface {
	// Frame hands over a decoded client frame; done is called once it is
	// answered, or dropped.
	Frame(f *clientpb.Frame, done func())
	// SocketClosed tells the connection its socket is gone.
	SocketClosed()
}

// Conn is the gateway's handle on a connection actor.
type Conn struct {
	pid  *actor.PID
	root *actor.RootContext
}

// Frame hands a decoded client frame to the connection. done is called once
// the frame is answered (for a Send: when the grain's result came back), or
// dropped; the gateway bounds the frames of a connection not yet done.
func (c *Conn) Frame(f *clientpb.Frame, done func()) {
	c.root.Send(c.pid, inboundFrame{f: f, done: done})
}

// SocketClosed tells the connection its socket is gone.
func (c *Conn) SocketClosed() { c.root.Send(c.pid, socketClosed{}) }

// Messages local to a connection actor (never cross nodes).
type (
	inboundFrame struct {
		f    *clientpb.Frame
		done func()
	}
	socketClosed struct{}
	pumpNow      struct{}
	retryTick    struct{}
	sweepTick    struct{}
	// topologyChanged carries the owners of the cluster's new topology.
	topologyChanged struct{ owners cluster.Owners }
)

type connActor struct {
	d *deps
	// conns is the node's registry of connection actors (Service.Bind).
	conns    *sync.Map
	sess     Session
	out      Outbound
	user     *actor.PID // the user grain, watched
	st       *stream
	pumping  bool // a pumpNow is queued
	timer    *time.Timer
	timerAt  time.Time
	attached bool
	done     bool

	// Sends in flight to the user grain, by request id; answered by
	// SendResult messages, or failed by the sweep when they time out.
	pending  map[uint64]pendingSend
	nextReq  uint64
	sweeping bool

	// Sends waiting for the app's before-send webhook, in the order the
	// device sent them; the head's call runs off the actor while screening
	// (webhooks.go).
	screenQ   []screenJob
	screening bool

	// muted holds the group conversations whose messages this user muted:
	// they are pushed and synced flagged silent.
	muted map[string]bool

	// background: the device last reported its app in the background
	// (DeviceState); loggedOut: it sent Logout. The grain learns both.
	background, loggedOut bool

	// budget is the connection's write budget in bytes (Config.WriteBudget).
	budget *rate.Limiter
}

func (c *connActor) setMuted(convs []string) {
	c.muted = nil
	for _, conv := range convs {
		if c.muted == nil {
			c.muted = map[string]bool{}
		}
		c.muted[conv] = true
	}
}

// flagSilent returns entries with the group messages of muted conversations
// flagged silent. Entries are shared with other connections, so a flagged
// one is a copy.
func (c *connActor) flagSilent(entries []*clientpb.Entry) []*clientpb.Entry {
	if len(c.muted) == 0 {
		return entries
	}
	var out []*clientpb.Entry
	for i, e := range entries {
		m := e.GetMessage()
		if m == nil || m.GetSilent() || !c.muted[m.GetConversationId()] || m.GetContent().GetEvent() != nil {
			if out != nil {
				out = append(out, e)
			}
			continue
		}
		if out == nil {
			out = append(make([]*clientpb.Entry, 0, len(entries)), entries[:i]...)
		}
		cm := proto.Clone(m).(*clientpb.Message)
		cm.Silent = true
		out = append(out, &clientpb.Entry{Seq: e.GetSeq(), Item: &clientpb.Entry_Message{Message: cm}})
	}
	if out == nil {
		return entries
	}
	return out
}

func (c *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
	case inboundFrame:
		if c.done || !c.onFrame(ctx, m.f, m.done) {
			m.done()
		}
	case *actorpb.Notify:
		if c.st != nil {
			c.st.observe(m.GetEntries())
			c.schedulePump(ctx)
		}
	case pumpNow:
		c.pumping = false
		c.pump(ctx)
	case retryTick:
		c.timerAt = time.Time{}
		c.resend()
		c.armTimer(ctx)
	case *actorpb.KickDevice:
		c.write(&clientpb.Frame{Body: &clientpb.Frame_Kick{Kick: &clientpb.Kick{Reason: m.GetReason(), Message: m.GetMessage()}}})
		switch m.GetReason() {
		case clientpb.KickReason_KICK_REASON_REVOKED:
			c.out.Close(clientpb.CloseUnauthenticated, "token revoked")
		case clientpb.KickReason_KICK_REASON_DISABLED:
			c.out.Close(clientpb.CloseUnauthenticated, "user disabled")
		default:
			c.out.Close(clientpb.CloseKicked, "kicked")
		}
		c.attached = false // the grain already forgot this device
		c.finish(ctx)
	case socketClosed:
		c.finish(ctx)
	case *actorpb.DeviceSignal:
		if !c.done && c.attached {
			c.write(&clientpb.Frame{Body: &clientpb.Frame_Signal{Signal: m.GetSignal()}})
		}
	case *actorpb.MutedChanged:
		c.setMuted(m.GetMuted())
	case *actorpb.SendResult:
		c.onSendResult(ctx, m)
	case screened:
		c.onScreened(ctx, m)
	case sweepTick:
		c.sweep(ctx)
	case *actor.Terminated:
		if c.user != nil && m.GetWho().Equal(c.user) && !c.done {
			c.d.member.Evict(c.sess.UserID, KindUser, c.user)
			c.reattach(ctx)
		}
	case topologyChanged:
		// The grain moved (its owner changed): follow it even if its old home
		// never tells us, as a node that is shutting down or dead may not.
		if c.user != nil && !c.done && !c.d.member.owns(m.owners, c.user, c.sess.UserID, KindUser) {
			c.d.member.Evict(c.sess.UserID, KindUser, c.user)
			c.reattach(ctx)
		}
	case *actor.DeadLetterResponse:
		// A send reached no grain: its PID is dead.
		switch {
		case c.done:
		case c.user != nil && (m.Target == nil || m.Target.Equal(c.user)):
			c.d.member.Evict(c.sess.UserID, KindUser, c.user)
			c.reattach(ctx)
		default:
			c.groupGone(m.Target)
		}
	case *actor.Stopped:
		c.conns.Delete(ctx.Self())
		if c.timer != nil {
			c.timer.Stop()
		}
	}
}

func (c *connActor) start(ctx actor.Context) {
	c.conns.Store(ctx.Self(), struct{}{})
	res, err := c.attach(ctx, false)
	if err != nil {
		c.d.log.Warn("login: attach failed", "user", c.sess.UserID, "err", err)
		c.write(errorFrame(c.sess.LoginID, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "login could not complete, reconnect")))
		c.out.Close(clientpb.CloseTryAgain, "try again")
		c.finish(ctx)
		return
	}
	if e := res.GetError(); e != nil {
		c.write(errorFrame(c.sess.LoginID, e))
		// Refused for good (a revoked token, a disabled user): 4001, which
		// clients do not retry with the same token.
		if code := e.GetCode(); code == clientpb.ErrorCode_ERR_UNAUTHENTICATED || code == clientpb.ErrorCode_ERR_FORBIDDEN {
			c.out.Close(clientpb.CloseUnauthenticated, "unauthenticated")
		} else {
			c.out.Close(clientpb.CloseTryAgain, "login refused")
		}
		c.finish(ctx)
		return
	}
	c.attached = true
	c.setMuted(res.GetMuted())
	c.d.metrics.Connections.Inc()
	latest := res.GetLatestSeq()
	next := latest + 1
	if c.sess.LastSeq != nil {
		// A resume point beyond the timeline (a client bug or lost server data)
		// is clamped so the device sees everything that exists.
		next = min(*c.sess.LastSeq, latest) + 1
	}
	cfg := c.d.cfg
	c.st = newStream(next, latest, cfg.PushWindow, cfg.PushPage, cfg.PushRetryMin, cfg.PushRetryMax)
	c.write(&clientpb.Frame{Id: c.sess.LoginID, Body: &clientpb.Frame_LoginOk{LoginOk: &clientpb.LoginOK{
		UserId:        c.sess.UserID,
		SessionId:     c.sess.SessionID,
		LatestSeq:     latest,
		ServerTimeMs:  uint64(time.Now().UnixMilli()),
		HeartbeatMs:   c.sess.HeartbeatMs,
		MaxFrameBytes: c.sess.MaxFrameBytes,
		StreamFromSeq: next,
	}}})
	c.pump(ctx)
}

// attach registers this connection with the user grain and watches the
// grain, so that a grain that moves or dies triggers a re-attach.
func (c *connActor) attach(ctx actor.Context, resume bool) (*actorpb.AttachResult, error) {
	rctx, cancel := context.WithTimeout(context.Background(), c.d.member.RequestTimeout())
	defer cancel()
	msg := &actorpb.Attach{
		DeviceId: c.sess.DeviceID, Platform: c.sess.Platform, SessionId: c.sess.SessionID,
		Conn: pidOf(ctx.Self()), Resume: resume, Background: c.background,
	}
	if !c.sess.TokenIssuedAt.IsZero() {
		msg.TokenIssuedAtMs = uint64(c.sess.TokenIssuedAt.UnixMilli())
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		pid, err := c.d.member.Get(rctx, c.sess.UserID, KindUser)
		if err != nil {
			return nil, err
		}
		res, err := ctx.RequestFuture(pid, msg, attachAttempt).Result()
		if err != nil {
			lastErr = err
			c.d.member.Evict(c.sess.UserID, KindUser, pid)
			continue
		}
		// Only in a cluster can the grain move (or die with its node) while
		// this connection lives; standalone, watching it would only cost memory.
		if c.d.member.Clustered() {
			ctx.Watch(pid)
		}
		c.user = pid
		return res.(*actorpb.AttachResult), nil
	}
	return nil, lastErr
}

// slowReattach is a re-attach worth a warning: the connection's frames wait
// meanwhile.
const slowReattach = 500 * time.Millisecond

// attachAttempt bounds one Attach: a grain answers it in milliseconds, and a
// PID that does not answer belongs to an activation that is gone.
const attachAttempt = time.Second

// reattach follows the user grain to its new activation and catches up on
// anything appended meanwhile.
func (c *connActor) reattach(ctx actor.Context) {
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > slowReattach {
			c.d.log.Warn("slow re-attach", "user", c.sess.UserID, "took", d)
		}
	}()
	c.user = nil
	// The old activation will never answer: fail its sends now so clients
	// retry them (with their client_msg_id) at once.
	for rid, p := range c.pending {
		delete(c.pending, rid)
		p.done()
		c.write(errorFrame(p.frameID, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "session moved; retry with the same client_msg_id")))
	}
	res, err := c.attach(ctx, true)
	if err == nil && res.GetReplaced() {
		c.write(&clientpb.Frame{Body: &clientpb.Frame_Kick{Kick: &clientpb.Kick{
			Reason: clientpb.KickReason_KICK_REASON_REPLACED, Message: "this device logged in on another connection"}}})
		c.out.Close(clientpb.CloseKicked, "kicked")
		c.attached = false // the grain holds the newer session
		c.finish(ctx)
		return
	}
	if err != nil || res.GetError() != nil {
		c.d.log.Warn("re-attach failed", "user", c.sess.UserID, "err", err, "error", res.GetError())
		c.out.Close(clientpb.CloseTryAgain, "session lost, reconnect")
		c.finish(ctx)
		return
	}
	c.setMuted(res.GetMuted())
	c.st.observeLatest(res.GetLatestSeq())
	c.pump(ctx)
}

// finish ends the connection: detaches from the grain and stops the actor.
func (c *connActor) finish(ctx actor.Context) {
	if c.done {
		return
	}
	c.done = true
	if c.attached {
		c.d.metrics.Connections.Dec()
		if c.user != nil {
			ctx.Send(c.user, &actorpb.Detach{DeviceId: c.sess.DeviceID, SessionId: c.sess.SessionID, Logout: c.loggedOut})
		}
	}
	ctx.Stop(ctx.Self())
}

func (c *connActor) write(f *clientpb.Frame) {
	// A failed write means the socket is gone; the gateway's reader sees it
	// too and reports socketClosed.
	_ = c.out.WriteFrame(f)
}

// onFrame serves one client frame. It reports whether it kept the frame's
// done (a request still waiting for a grain's answer, which calls it);
// otherwise the frame is finished when onFrame returns.
func (c *connActor) onFrame(ctx actor.Context, f *clientpb.Frame, done func()) (kept bool) {
	id := f.GetId()
	switch b := f.GetBody().(type) {
	case *clientpb.Frame_Send:
		if b.Send.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
			return c.onGroupSend(ctx, id, b.Send, done)
		}
		return c.onSend(ctx, id, b.Send, done)
	case *clientpb.Frame_PushAck:
		c.observeAck(b.PushAck.GetSeq())
		if !c.st.ack(b.PushAck.GetSeq(), time.Now()) {
			c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "push_ack: seq was never pushed")))
		}
		c.pump(ctx)
	case *clientpb.Frame_Sync:
		res, e := c.d.sync(context.Background(), c.sess.UserID, b.Sync)
		if res != nil {
			res.Entries = c.flagSilent(res.Entries)
		}
		c.answer(e, &clientpb.Frame{Id: id, Body: &clientpb.Frame_SyncResult{SyncResult: res}})
	case *clientpb.Frame_History:
		res, e := c.d.history(context.Background(), c.sess.UserID, b.History)
		if res != nil {
			res.Entries = c.flagSilent(res.Entries)
		}
		c.answer(e, &clientpb.Frame{Id: id, Body: &clientpb.Frame_HistoryResult{HistoryResult: res}})
	case *clientpb.Frame_Ping:
		c.write(&clientpb.Frame{Id: id, Body: &clientpb.Frame_Pong{Pong: &clientpb.Pong{ServerTimeMs: uint64(time.Now().UnixMilli())}}})
	case *clientpb.Frame_Logout:
		c.loggedOut = true
		c.out.Close(1000, "logout")
		c.finish(ctx)
	case *clientpb.Frame_Login:
		c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_ALREADY_LOGGED_IN, "this connection is logged in")))
	case *clientpb.Frame_FriendRequest, *clientpb.Frame_FriendRespond, *clientpb.Frame_FriendDelete,
		*clientpb.Frame_FriendUpdate, *clientpb.Frame_Category, *clientpb.Frame_FriendList,
		*clientpb.Frame_Block, *clientpb.Frame_Settings, *clientpb.Frame_PresenceQuery,
		*clientpb.Frame_Typing, *clientpb.Frame_Read, *clientpb.Frame_Recall,
		*clientpb.Frame_Conversations, *clientpb.Frame_ConversationUpdate, *clientpb.Frame_Group,
		*clientpb.Frame_SetProfile, *clientpb.Frame_RegisterPush:
		return c.onOp(ctx, f, done)
	case *clientpb.Frame_DeviceState:
		c.background = b.DeviceState.GetBackground() // carried to a re-attach
		return c.onOp(ctx, f, done)
	case *clientpb.Frame_GetProfiles, *clientpb.Frame_SearchUsers:
		c.onProfileRead(id, f) // profile.go
	case nil:
		c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "frame has no body")))
	default:
		c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "the server does not accept this frame from clients")))
	}
	return false
}

// answer writes the error when there is one, else the answer f.
func (c *connActor) answer(e *clientpb.Error, f *clientpb.Frame) {
	if e != nil {
		f = errorFrame(f.GetId(), e)
	}
	c.write(f)
}

// opTimeout bounds a request from a connection to a grain.
const opTimeout = 5 * time.Second

// onOp forwards one of the requests answered by a Result (frames 17 to 31)
// to the grain that decides it, without blocking the connection. It keeps
// done until the answer (or its timeout) comes back.
func (c *connActor) onOp(ctx actor.Context, f *clientpb.Frame, done func()) (kept bool) {
	id := f.GetId()
	var pid *actor.PID
	var msg any
	if g, ok := f.GetBody().(*clientpb.Frame_Group); ok {
		if !ids.ValidUser(g.Group.GetGroupId()) {
			c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: group_id must be 1 to 64 characters of [A-Za-z0-9_.@-]")))
			return false
		}
		rctx, cancel := context.WithTimeout(context.Background(), c.d.member.RequestTimeout())
		p, err := c.d.member.Get(rctx, g.Group.GetGroupId(), KindGroup)
		cancel()
		if err != nil {
			c.write(errorFrame(id, errGroupUnreachable))
			return false
		}
		pid, msg = p, &actorpb.GroupOp{User: c.sess.UserID, Request: g.Group}
	} else {
		if c.user == nil {
			c.write(errorFrame(id, errSessionMoving))
			return false
		}
		pid, msg = c.user, &actorpb.UserOp{DeviceId: c.sess.DeviceID, SessionId: c.sess.SessionID, Frame: f}
	}
	c.askOp(ctx, id, pid, msg, done, true)
	return true
}

// askOp sends msg to pid and writes its OpResult (or error) as the answer
// to request id. A group grain that just stopped (one whose group does not
// exist stops soon after answering) leaves a dead PID in the caches for a
// moment: a dead letter from a group is asked once more at a fresh PID.
// done is called once, with the answer.
func (c *connActor) askOp(ctx actor.Context, id uint32, pid *actor.PID, msg any, done func(), retry bool) {
	fut := ctx.RequestFuture(pid, msg, opTimeout)
	ctx.ReenterAfter(fut, func(res any, err error) {
		if op, group := msg.(*actorpb.GroupOp); group && retry && errors.Is(err, actor.ErrDeadLetter) {
			gid := op.GetRequest().GetGroupId()
			c.d.member.Evict(gid, KindGroup, pid)
			rctx, cancel := context.WithTimeout(context.Background(), c.d.member.RequestTimeout())
			p, gerr := c.d.member.Get(rctx, gid, KindGroup)
			cancel()
			if gerr == nil {
				c.askOp(ctx, id, p, msg, done, false)
				return
			}
		}
		done()
		r, ok := res.(*actorpb.OpResult)
		switch {
		case err != nil || !ok:
			c.write(errorFrame(id, errNoAnswer))
		case r.GetError() != nil:
			c.write(errorFrame(id, r.GetError()))
		default:
			res := r.GetResult()
			if res == nil {
				res = &clientpb.Result{}
			}
			c.write(&clientpb.Frame{Id: id, Body: &clientpb.Frame_Result{Result: res}})
		}
	})
}
