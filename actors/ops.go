package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// KindGroup is the cluster kind of group grains.
const KindGroup = "group"

// groupTimeline is the timeline of a group's own sequence: an internal
// account whose id no user can take ('#' and ':' are not allowed in ids).
func groupTimeline(groupID string) string { return "#" + ids.Group(groupID) }

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
		rctx, cancel := context.WithTimeout(context.Background(), c.rt.member.RequestTimeout())
		p, err := c.rt.member.Get(rctx, g.Group.GetGroupId(), KindGroup)
		cancel()
		if err != nil {
			c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group unreachable, retry")))
			return false
		}
		pid, msg = p, &actorpb.GroupOp{User: c.sess.UserID, Request: g.Group}
	} else {
		if c.user == nil {
			c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "session moving, retry")))
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
			c.rt.member.Evict(gid, KindGroup, pid)
			rctx, cancel := context.WithTimeout(context.Background(), c.rt.member.RequestTimeout())
			p, gerr := c.rt.member.Get(rctx, gid, KindGroup)
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
			c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "no answer in time, retry")))
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

// onGroupSend forwards a group message to the group grain, which answers
// with a SendResult like the user grain does for private messages.
func (c *connActor) onGroupSend(ctx actor.Context, id uint32, s *clientpb.Send, done func()) (kept bool) {
	if !ids.ValidUser(s.GetTo()) {
		c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: to must be a group id")))
		return false
	}
	if !c.withinBudget(id) {
		return false
	}
	rctx, cancel := context.WithTimeout(context.Background(), c.rt.member.RequestTimeout())
	pid, err := c.rt.member.Get(rctx, s.GetTo(), KindGroup)
	cancel()
	if err != nil {
		c.write(errorFrame(id, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group unreachable, retry with the same client_msg_id")))
		return false
	}
	rid := c.track(ctx, id, s, done, s.GetTo(), pid)
	ctx.Request(pid, &actorpb.GroupSend{User: c.sess.UserID, DeviceId: c.sess.DeviceID, SessionId: c.sess.SessionID, Send: s, RequestId: rid})
	return true
}

// onUserOp answers a request of the user's own (frames 17 to 30).
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
	default:
		res = g.onSocial(ctx, m)
	}
	if res == nil {
		res = &actorpb.OpResult{}
	}
	ctx.Respond(res)
}

func opError(code clientpb.ErrorCode, msg string) *actorpb.OpResult {
	return &actorpb.OpResult{Error: clientError(code, msg)}
}

var errUnavailable = opError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable, retry")

// appendEvent stores a system event in the given timelines (in order) as a
// message of conversation conv and returns the entries, one per timeline.
// It does not deliver them; see deliverEntries.
func (r *Runtime) appendEvent(conv string, ctype clientpb.ConversationType, from, to string, ev *clientpb.Event, timelines []string) ([]*clientpb.Entry, error) {
	msg := &clientpb.Message{
		ConversationId:   conv,
		ConversationType: ctype,
		From:             from,
		To:               to,
		Content:          &clientpb.Content{Kind: &clientpb.Content_Event{Event: ev}},
	}
	sctx, cancel := r.storeCtx()
	defer cancel()
	res, err := r.store.Append(sctx, &persistence.AppendRequest{Sender: from, Message: msg, Timelines: timelines})
	if err != nil {
		if !errors.Is(err, persistence.ErrUnknownUser) {
			r.log.Error("append event", "type", ev.GetType().String(), "conv", conv, "err", err)
		}
		return nil, err
	}
	return res.Entries, nil
}

// deliverEntries tells each timeline's user grain about its entry. The
// timeline of self (the calling user grain, "" for none) is skipped: the
// caller notifies its devices itself. Internal timelines ('#') are skipped.
func (r *Runtime) deliverEntries(ctx actor.Context, self string, timelines []string, entries []*clientpb.Entry, exceptSession string) {
	for i, u := range timelines {
		if u == self || i >= len(entries) || (u != "" && u[0] == '#') {
			continue
		}
		r.deliverTo(ctx, u, &actorpb.Deliver{Entries: entries[i : i+1], ExceptSession: exceptSession}, true)
	}
}

// deliverTo tells another user's grain about entries appended to its timeline.
//
// To a grain on this node it is a plain send: the local PID cache forgets a
// grain as it stops, a grain stops only when no device is attached, and a
// device that activates it again reads the timeline's end after these
// entries were stored. To another node it is a request, so that a PID gone
// stale (the grain moved) is noticed and the delivery retried once at the
// grain's new home, without blocking the caller meanwhile. Were both attempts
// lost, the entries are still durable and reach the devices with the next
// notification or re-attach.
func (r *Runtime) deliverTo(ctx actor.Context, user string, d *actorpb.Deliver, retry bool) {
	sctx, cancel := r.storeCtx()
	defer cancel()
	pid, err := r.member.Get(sctx, user, KindUser)
	if err != nil {
		r.log.Warn("deliver: grain unreachable", "user", user, "err", err)
		return
	}
	if pid.GetAddress() == ctx.Self().GetAddress() {
		ctx.Send(pid, d)
		return
	}
	f := ctx.RequestFuture(pid, d, deliverTimeout)
	ctx.ReenterAfter(f, func(_ any, err error) {
		if err == nil {
			return
		}
		r.member.Evict(user, KindUser, pid)
		if retry {
			r.deliverTo(ctx, user, d, false)
		} else {
			r.log.Warn("deliver: no answer", "user", user, "err", err)
		}
	})
}

// signalSessions passes a signal straight to the connections of user's
// online devices, found in the store, without activating the user's grain.
func (r *Runtime) signalSessions(ctx actor.Context, user string, s *clientpb.Signal) {
	sctx, cancel := r.storeCtx()
	defer cancel()
	sessions, err := r.store.Sessions(sctx, user)
	if err != nil {
		return
	}
	msg := &actorpb.DeviceSignal{Signal: s}
	for _, ss := range sessions {
		ctx.Send(actor.NewPID(ss.Node, ss.ConnID), msg)
	}
}

// online reports whether user has a device session, without activating its grain.
func (r *Runtime) online(user string) bool {
	sctx, cancel := r.storeCtx()
	defer cancel()
	sessions, err := r.store.Sessions(sctx, user)
	return err == nil && len(sessions) > 0
}
