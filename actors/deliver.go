package actors

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// Delivery, after a durable append: deliverEntries and deliverTo hand each
// recipient's entry to its user grain (a Deliver); the grain's notify passes
// it to its attached connections (a Notify), which push it (stream.go).
// Entries are hints: a connection reads from its timeline whatever it was
// not told. appendEvent stores a system event the same way; signals
// (typing, presence) are ephemeral and never stored.

// deliverEntries tells each timeline's user grain about its entry. The
// timeline of self (the calling user grain, "" for none) is skipped: the
// caller notifies its devices itself. Internal timelines ('#') are skipped.
func (d *deps) deliverEntries(ctx actor.Context, self string, timelines []string, entries []*clientpb.Entry, exceptSession string) {
	for i, u := range timelines {
		if u == self || i >= len(entries) || (u != "" && u[0] == '#') {
			continue
		}
		d.deliverTo(ctx, u, &actorpb.Deliver{Entries: entries[i : i+1], ExceptSession: exceptSession}, true)
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
func (d *deps) deliverTo(ctx actor.Context, user string, msg *actorpb.Deliver, retry bool) {
	sctx, cancel := d.storeCtx()
	defer cancel()
	pid, err := d.member.Get(sctx, user, KindUser)
	if err != nil {
		d.log.Warn("deliver: grain unreachable", "user", user, "err", err)
		return
	}
	if pid.GetAddress() == ctx.Self().GetAddress() {
		ctx.Send(pid, msg)
		return
	}
	f := ctx.RequestFuture(pid, msg, deliverTimeout)
	ctx.ReenterAfter(f, func(_ any, err error) {
		if err == nil {
			return
		}
		d.member.Evict(user, KindUser, pid)
		if retry {
			d.deliverTo(ctx, user, msg, false)
		} else {
			d.log.Warn("deliver: no answer", "user", user, "err", err)
		}
	})
}

// notify hands entries to every attached device except the one whose
// session sent them (it has the SendAck).
func (g *userGrain) notify(ctx actor.Context, entries []*clientpb.Entry, exceptSession string) {
	if len(g.devices) == 0 || len(entries) == 0 {
		return
	}
	n := &actorpb.Notify{Entries: entries}
	for _, d := range g.devices {
		if d.session != exceptSession {
			ctx.Send(d.conn, n)
		}
	}
}

// deliverTimeout bounds the wait for a Deliver's answer before the retry.
const deliverTimeout = 2 * time.Second

// appendEvent stores a system event in the given timelines (in order) as a
// message of conversation conv and returns the entries, one per timeline.
// It does not deliver them; see deliverEntries.
func (d *deps) appendEvent(conv string, ctype clientpb.ConversationType, from, to string, ev *clientpb.Event, timelines []string) ([]*clientpb.Entry, error) {
	msg := &clientpb.Message{
		ConversationId:   conv,
		ConversationType: ctype,
		From:             from,
		To:               to,
		Content:          &clientpb.Content{Kind: &clientpb.Content_Event{Event: ev}},
	}
	sctx, cancel := d.storeCtx()
	defer cancel()
	res, err := d.timelines.Append(sctx, &persistence.AppendRequest{Sender: from, Message: msg, Timelines: timelines})
	if err != nil {
		if !errors.Is(err, persistence.ErrUnknownUser) {
			d.log.Error("append event", "type", ev.GetType().String(), "conv", conv, "err", err)
		}
		return nil, err
	}
	return res.Entries, nil
}

// signalSessions passes a signal straight to the connections of user's
// online devices, found in the store, without activating the user's grain.
func (d *deps) signalSessions(ctx actor.Context, user string, s *clientpb.Signal) {
	sctx, cancel := d.storeCtx()
	defer cancel()
	sessions, err := d.sessions.Sessions(sctx, user)
	if err != nil {
		return
	}
	msg := &actorpb.DeviceSignal{Signal: s}
	for _, ss := range sessions {
		ctx.Send(actor.NewPID(ss.Node, ss.ConnID), msg)
	}
}

// online reports whether user has a device session, without activating its grain.
func (d *deps) online(user string) bool {
	sctx, cancel := d.storeCtx()
	defer cancel()
	sessions, err := d.sessions.Sessions(sctx, user)
	return err == nil && len(sessions) > 0
}

// signal passes an ephemeral signal to every attached device.
func (g *userGrain) signal(ctx actor.Context, s *clientpb.Signal) {
	m := &actorpb.DeviceSignal{Signal: s}
	for _, d := range g.devices {
		ctx.Send(d.conn, m)
	}
}
