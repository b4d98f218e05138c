package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/hooks"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// The group send path, in order:
//
//  1. connActor.onGroupSend (the connection, on a Send frame of a group):
//     checks the write budget, resolves media (media.go), finds the group
//     grain and sends it a GroupSend, tracked like a private send (send.go).
//  2. groupGrain.enqueueSend / checkSend (the group grain): validateSend,
//     membership, dissolution and mutes, then queues the message; the
//     timelines are the sender's, the group's own ("#g:<group>") and every
//     other member's (write diffusion).
//  3. groupGrain.flush / sendResult: the queued sends go to the store in one
//     Timelines.AppendAll (one durable write for the batch); each sender is
//     answered with a SendResult, and deliverEntries (deliver.go) tells every
//     member's user grain.

// onGroupSend forwards a group message to the group grain, which answers
// with a SendResult like the user grain does for private messages.
func (c *connActor) onGroupSend(ctx actor.Context, id uint32, s *clientpb.Send, done func()) (kept bool) {
	if !ids.ValidUser(s.GetTo()) {
		c.write(errorFrame(id, errToNotGroup))
		return false
	}
	if !c.withinBudget(id) {
		return false
	}
	s, ok := c.resolveMedia(id, s)
	if !ok {
		return false
	}
	if c.screensLater() {
		c.screenLater(ctx, screenJob{id: id, s: s, done: done, group: true})
		return true
	}
	if s, ok = c.screenSend(id, s); !ok {
		return false
	}
	return c.sendGroup(ctx, id, s, done)
}

// sendGroup forwards a screened group send to the group grain.
func (c *connActor) sendGroup(ctx actor.Context, id uint32, s *clientpb.Send, done func()) (kept bool) {
	rctx, cancel := context.WithTimeout(context.Background(), c.d.member.RequestTimeout())
	pid, err := c.d.member.Get(rctx, s.GetTo(), KindGroup)
	cancel()
	if err != nil {
		c.write(errorFrame(id, errGroupUnreachableSend))
		return false
	}
	rid := c.track(ctx, id, s, done, s.GetTo(), pid)
	ctx.Request(pid, &actorpb.GroupSend{User: c.sess.UserID, DeviceId: c.sess.DeviceID, SessionId: c.sess.SessionID, Send: s, RequestId: rid})
	return true
}

// groupGone fails at once the group sends that went to a dead group grain
// PID (the grain stopped, or its node left), instead of letting them wait
// for the sweep; the clients retry them with their client_msg_id, which
// reaches the grain's new activation.
func (c *connActor) groupGone(target *actor.PID) {
	for rid, p := range c.pending {
		if p.to == nil || !p.to.Equal(target) {
			continue
		}
		c.d.member.Evict(p.group, KindGroup, p.to)
		delete(c.pending, rid)
		p.done()
		c.write(errorFrame(p.frameID, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group moved; retry with the same client_msg_id")))
	}
}

// queuedSend is a group message accepted and waiting for its append.
type queuedSend struct {
	m         *actorpb.GroupSend
	replyTo   *actor.PID
	req       *persistence.AppendRequest
	timelines []string
}

type flushSends struct{}

// maxSendBatch bounds the messages of one group stored in one AppendAll.
const maxSendBatch = 128

// enqueueSend checks a member's message and queues it. The queue is stored
// when the grain has handled the messages already in its mailbox (a
// flushSends goes to the back of it), so sends that arrive together share
// one AppendAll, that is one durable write, instead of waiting for one fsync
// each: a group's messages are serialized by its grain, and this is what
// lets that grain keep up with its members.
func (g *groupGrain) enqueueSend(ctx actor.Context, m *actorpb.GroupSend) {
	req, timelines, e := g.checkSend(m)
	if e != nil {
		g.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
		ctx.Respond(&actorpb.SendResult{Error: e, RequestId: m.GetRequestId()})
		return
	}
	g.queue = append(g.queue, queuedSend{m: m, replyTo: ctx.Sender(), req: req, timelines: timelines})
	if len(g.queue) >= maxSendBatch {
		g.flush(ctx)
		return
	}
	if !g.flushQueued {
		g.flushQueued = true
		ctx.Send(ctx.Self(), flushSends{})
	}
}

// checkSend decides whether a member may send m and builds its append.
func (g *groupGrain) checkSend(m *actorpb.GroupSend) (*persistence.AppendRequest, []string, *clientpb.Error) {
	s, user := m.GetSend(), m.GetUser()
	if e := validateSend(s, g.d.cfg.MaxContentBytes); e != nil {
		return nil, nil, e
	}
	switch {
	case g.st == nil:
		return nil, nil, errNoGroup
	case g.st.GetInfo().GetDissolved():
		return nil, nil, errDissolved
	case g.member(user) == nil:
		return nil, nil, errNotMember
	}
	mem := g.member(user)
	now := uint64(time.Now().UnixMilli())
	if !g.isManager(user) && (g.st.GetInfo().GetMutedAll() || mem.GetMutedUntilMs() > now) {
		return nil, nil, clientError(clientpb.ErrorCode_ERR_MUTED, "muted in this group")
	}
	if len(s.GetMentions()) > 100 {
		return nil, nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: at most 100 mentions")
	}
	for _, u := range s.GetMentions() {
		if u != "all" && g.member(u) == nil {
			return nil, nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: mentioned user is not a member: "+u)
		}
	}
	msg := &clientpb.Message{
		ConversationId:   ids.Group(g.id),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP,
		From:             user,
		To:               g.id,
		FromDevice:       m.GetDeviceId(),
		ClientMsgId:      s.GetClientMsgId(),
		Content:          s.GetContent(),
		Mentions:         s.GetMentions(),
		Silent:           s.GetSilent(),
	}
	// The sender first (a duplicate's ack comes from the first timeline),
	// then the group's own sequence, then every other member.
	timelines := make([]string, 0, len(g.st.Members)+1)
	timelines = append(timelines, user, groupTimeline(g.id))
	for u := range g.st.Members {
		if u != user {
			timelines = append(timelines, u)
		}
	}
	return &persistence.AppendRequest{Sender: user, ClientMsgID: s.GetClientMsgId(), Message: msg, Timelines: timelines}, timelines, nil
}

// flush stores the queued sends in order, answers each sender and tells
// the members' grains.
func (g *groupGrain) flush(ctx actor.Context) {
	if len(g.queue) == 0 {
		return
	}
	batch := g.queue
	g.queue = nil
	reqs := make([]*persistence.AppendRequest, len(batch))
	for i, q := range batch {
		reqs[i] = q.req
	}
	sctx, cancel := g.d.storeCtx()
	start := time.Now()
	results, errs := g.d.timelines.AppendAll(sctx, reqs)
	cancel()
	g.d.metrics.AppendSeconds.Observe(time.Since(start).Seconds())
	if g.d.wantsHook(hooks.EventMessageStored) {
		// One queue write for the batch, before any ack (see send.go).
		var stored []*clientpb.Message
		for i := range batch {
			if errs[i] == nil {
				stored = append(stored, results[i].Entries[0].GetMessage())
			}
		}
		g.d.messageStored(stored...)
	}
	for i, q := range batch {
		res := g.sendResult(ctx, q, results[i], errs[i])
		res.RequestId = q.m.GetRequestId()
		if e := res.GetError(); e != nil {
			g.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
		}
		if q.replyTo != nil {
			ctx.Send(q.replyTo, res)
		}
	}
}

func (g *groupGrain) sendResult(ctx actor.Context, q queuedSend, res *persistence.AppendResult, err error) *actorpb.SendResult {
	if err != nil {
		g.d.log.Error("group send: append", "group", g.id, "err", err)
		return &actorpb.SendResult{Error: errNotStored}
	}
	own := res.Entries[0]
	if res.Duplicate && !sameSend(own.GetMessage(), ids.Group(g.id), g.id, q.m.GetSend()) {
		return &actorpb.SendResult{Error: errMsgIDReused}
	}
	ack := &clientpb.SendAck{
		ClientMsgId: q.req.ClientMsgID, MsgId: own.GetMessage().GetId(), Seq: own.GetSeq(),
		SentAtMs: own.GetMessage().GetSentAtMs(), ConversationId: ids.Group(g.id), Duplicate: res.Duplicate,
	}
	if res.Duplicate {
		g.d.metrics.Duplicates.Inc()
		return &actorpb.SendResult{Ack: ack}
	}
	g.d.metrics.MessagesSent.Inc()
	g.d.deliverEntries(ctx, "", q.timelines, res.Entries, q.m.GetSessionId())
	return &actorpb.SendResult{Ack: ack, Fanout: uint32(len(q.timelines))}
}
