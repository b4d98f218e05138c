package actors

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// The private send path, in order:
//
//  1. connActor.onSend (the connection, on a Send frame): checks the write
//     budget, resolves media (resolveMedia in media.go: the upload's record
//     fills the message's media and the file is marked sent), screens it
//     (word filter; the app's before-send webhook off the actor, one send
//     of the device at a time: webhooks.go), tracks the send under a
//     request id and sends a SendRequest to the user's grain, without
//     waiting for its answer.
//  2. userGrain.onSend / send (the sender's user grain): validateSend
//     (validate.go), mayMessage (blacklists and friends-only, one point read
//     of the recipient's policy record), then one Timelines.Append to the
//     sender's and the recipient's timelines, which decides seq, id and
//     dedup atomically. It notifies the sender's other devices (notify) and
//     hands the recipient's entry to deliverTo (deliver.go), then answers a
//     SendResult.
//  3. connActor.onSendResult (the connection): writes the SendAck, charges
//     the budget by fan-out, and marks the seq as the device's own so it is
//     not pushed back. Sends unanswered in time are failed by sweep.

// onSend forwards a Send to the user grain without waiting: the grain's
// SendResult comes back as a message. Requests to one grain are delivered in
// order, so a device's messages land in the order it sent them.
func (c *connActor) onSend(ctx actor.Context, id uint32, s *clientpb.Send, done func()) (kept bool) {
	if c.user == nil {
		c.write(errorFrame(id, errSessionMovingSend))
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
		c.screenLater(ctx, screenJob{id: id, s: s, done: done})
		return true
	}
	if s, ok = c.screenSend(id, s); !ok {
		return false
	}
	return c.sendPrivate(ctx, id, s, done)
}

// sendPrivate forwards a screened private send to the user grain.
func (c *connActor) sendPrivate(ctx actor.Context, id uint32, s *clientpb.Send, done func()) (kept bool) {
	if c.user == nil {
		c.write(errorFrame(id, errSessionMovingSend))
		return false
	}
	rid := c.track(ctx, id, s, done, "", nil)
	ctx.Request(c.user, &actorpb.SendRequest{DeviceId: c.sess.DeviceID, SessionId: c.sess.SessionID, Send: s, RequestId: rid})
	return true
}

// resolveMedia resolves a media Send on the connection actor, which waits
// for the store meanwhile: the device's later frames wait, so its messages
// still land in the order it sent them, and no grain waits (media.go). It
// answers a refused send itself.
func (c *connActor) resolveMedia(id uint32, s *clientpb.Send) (*clientpb.Send, bool) {
	r, e := c.d.resolveMedia(context.Background(), c.sess.UserID, s)
	if e != nil {
		c.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
		c.write(errorFrame(id, e))
		return nil, false
	}
	return r, true
}

func (g *userGrain) onSend(ctx actor.Context, m *actorpb.SendRequest) {
	res := g.send(ctx, m)
	if e := res.GetError(); e != nil {
		g.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
	}
	res.RequestId = m.GetRequestId()
	ctx.Respond(res)
}

func (g *userGrain) send(ctx actor.Context, m *actorpb.SendRequest) *actorpb.SendResult {
	s := m.GetSend()
	if e := validateSend(s, g.d.cfg.MaxContentBytes); e != nil {
		return &actorpb.SendResult{Error: e}
	}
	if s.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		return &actorpb.SendResult{Error: clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: group messages go to the group")}
	}
	if len(s.GetMentions()) > 0 {
		return &actorpb.SendResult{Error: clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: mentions are for group messages")}
	}
	if e := g.mayMessage(s.GetTo()); e != nil {
		return &actorpb.SendResult{Error: e}
	}
	conv := ids.Private(g.id, s.GetTo())
	msg := &clientpb.Message{
		ConversationId:   conv,
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
		From:             g.id,
		To:               s.GetTo(),
		FromDevice:       m.GetDeviceId(),
		ClientMsgId:      s.GetClientMsgId(),
		Content:          s.GetContent(),
		Silent:           s.GetSilent(),
	}
	timelines := []string{g.id, s.GetTo()}
	if s.GetTo() == g.id {
		timelines = timelines[:1] // a note to self lands once
	}

	sctx, cancel := g.d.storeCtx()
	defer cancel()
	start := time.Now()
	res, err := g.d.timelines.Append(sctx, &persistence.AppendRequest{
		Sender: g.id, ClientMsgID: s.GetClientMsgId(), Message: msg, Timelines: timelines,
	})
	g.d.metrics.AppendSeconds.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, persistence.ErrUnknownUser):
		// Only a server-side send (the admin API) can come from a user
		// without an account: say which of the two is missing.
		if e := g.senderExists(); e != nil {
			return &actorpb.SendResult{Error: e}
		}
		return &actorpb.SendResult{Error: clientError(clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT, "no such user: "+s.GetTo())}
	case err != nil:
		g.d.log.Error("send: append", "user", g.id, "err", err)
		return &actorpb.SendResult{Error: errNotStored}
	}

	own := res.Entries[0]
	if res.Duplicate && !sameSend(own.GetMessage(), conv, s.GetTo(), s) {
		return &actorpb.SendResult{Error: errMsgIDReused}
	}
	// The event is queued before the ack, for a duplicate too (its id
	// dedups): a crash between the append and the queueing loses it only
	// until the client retries.
	g.d.messageStored(own.GetMessage())
	ack := &clientpb.SendAck{
		ClientMsgId:    s.GetClientMsgId(),
		MsgId:          own.GetMessage().GetId(),
		Seq:            own.GetSeq(),
		SentAtMs:       own.GetMessage().GetSentAtMs(),
		ConversationId: conv,
		Duplicate:      res.Duplicate,
	}
	if res.Duplicate {
		g.d.metrics.Duplicates.Inc()
		return &actorpb.SendResult{Ack: ack}
	}
	g.d.metrics.MessagesSent.Inc()
	g.notify(ctx, res.Entries[:1], m.GetSessionId())
	if len(res.Entries) > 1 {
		g.d.deliverTo(ctx, s.GetTo(), &actorpb.Deliver{Entries: res.Entries[1:]}, true)
	}
	return &actorpb.SendResult{Ack: ack, Fanout: uint32(len(timelines))}
}

// sameSend reports whether orig, the stored message a duplicate
// client_msg_id names, is what s asks to send to conversation conv: a retry
// has the same recipient, content, mentions and silence.
func sameSend(orig *clientpb.Message, conv, to string, s *clientpb.Send) bool {
	return orig.GetConversationId() == conv && orig.GetTo() == to && orig.GetSilent() == s.GetSilent() &&
		proto.Equal(orig.GetContent(), s.GetContent()) && slices.Equal(orig.GetMentions(), s.GetMentions())
}

// senderExists answers nil when this user has an account; otherwise
// ERR_NOT_FOUND naming the user, and the grain stops soon after answering.
func (g *userGrain) senderExists() *clientpb.Error {
	if g.hasAccount {
		return nil
	}
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	_, err := g.d.accounts.GetAccount(sctx, g.id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		g.unknown = true
		return clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such user: "+g.id)
	case err != nil:
		return errStoreUnavailableSend
	}
	g.hasAccount = true
	return nil
}

// mayMessage decides whether this user may send a private message to user
// to: nil, or ERR_BLOCKED / ERR_NOT_FRIEND. It costs one point read of to's
// policy record (see policyKey).
func (g *userGrain) mayMessage(to string) *clientpb.Error {
	if to == g.id {
		return nil
	}
	st, e := g.socialState()
	if e != nil {
		return e
	}
	if st.GetBlocked()[to] {
		return clientError(clientpb.ErrorCode_ERR_BLOCKED, "you blocked "+to+"; unblock them first")
	}
	pol, err := g.d.policy(to)
	if err != nil {
		return errStoreUnavailableSend
	}
	switch {
	case pol.GetBlocked()[g.id]:
		return clientError(clientpb.ErrorCode_ERR_BLOCKED, to+" does not accept your messages")
	case pol.GetFriendsOnly() && st.GetFriends()[to] == nil:
		return clientError(clientpb.ErrorCode_ERR_NOT_FRIEND, to+" accepts messages from friends only")
	}
	return nil
}

func (c *connActor) onSendResult(ctx actor.Context, r *actorpb.SendResult) {
	p, ok := c.pending[r.GetRequestId()]
	if !ok {
		return // already failed by the sweep
	}
	delete(c.pending, r.GetRequestId())
	p.done()
	c.charge(p, r.GetFanout())
	if e := r.GetError(); e != nil {
		c.write(errorFrame(p.frameID, e))
		return
	}
	c.st.ownSent(r.GetAck().GetSeq())
	c.write(&clientpb.Frame{Id: p.frameID, Body: &clientpb.Frame_SendAck{SendAck: r.GetAck()}})
	c.schedulePump(ctx)
}

// pendingSend is a Send forwarded to the user grain and not yet answered.
type pendingSend struct {
	frameID  uint32
	deadline time.Time
	done     func() // the frame's release (see Conn.Frame)
	// bytes is the size of the message's content, charged to the write
	// budget once per timeline the grain reports it was written to.
	bytes int
	// group and to name the group grain a group send went to ("" and nil
	// for a private send, which goes to the user's grain).
	group string
	to    *actor.PID
}

// withinBudget refuses a send while the connection's write budget is spent
// (see Config.WriteBudget).
func (c *connActor) withinBudget(frameID uint32) bool {
	t := c.budget.Tokens()
	if t >= 0 {
		return true
	}
	wait := time.Duration(-t / float64(c.budget.Limit()) * float64(time.Second))
	c.write(errorFrame(frameID, &clientpb.Error{Code: clientpb.ErrorCode_ERR_RATE_LIMITED,
		Message:      "write budget spent (messages times their recipients); retry later with the same client_msg_id",
		RetryAfterMs: uint32(wait/time.Millisecond) + 1}))
	return false
}

// charge spends a stored message's cost from the write budget: its content
// and a fixed overhead, once per timeline it was written to. The budget may
// go into debt, which the next sends wait out.
func (c *connActor) charge(p pendingSend, fanout uint32) {
	if fanout == 0 {
		return
	}
	cost := int(fanout) * (p.bytes + entryOverhead)
	c.budget.ReserveN(time.Now(), min(cost, c.budget.Burst()))
}

// entryOverhead approximates what a stored timeline entry costs beyond its
// content (ids, seq, conversation, sender, keys).
const entryOverhead = 256

// track records a send about to be forwarded under a fresh request id, to
// be answered by a SendResult or failed by the sweep.
func (c *connActor) track(ctx actor.Context, frameID uint32, s *clientpb.Send, done func(), group string, to *actor.PID) uint64 {
	c.nextReq++
	if c.pending == nil {
		c.pending = map[uint64]pendingSend{}
	}
	c.pending[c.nextReq] = pendingSend{frameID: frameID, deadline: time.Now().Add(c.d.member.RequestTimeout()),
		done: done, bytes: s.GetContent().SizeVT(), group: group, to: to}
	c.armSweep(ctx)
	return c.nextReq
}

// armSweep schedules a sweep unless one is scheduled.
func (c *connActor) armSweep(ctx actor.Context) {
	if c.sweeping || c.done {
		return
	}
	c.sweeping = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(sweepEvery, func() { root.Send(self, sweepTick{}) })
}

// sweepEvery is how often unanswered sends are checked for their deadline.
const sweepEvery = 500 * time.Millisecond

// sweep fails sends the grain did not answer in time; the client retries
// them with the same client_msg_id, which is safe whatever became of them.
func (c *connActor) sweep(ctx actor.Context) {
	c.sweeping = false
	now := time.Now()
	for rid, p := range c.pending {
		if now.After(p.deadline) {
			delete(c.pending, rid)
			p.done()
			c.write(errorFrame(p.frameID, errNoAnswerSend))
		}
	}
	if len(c.pending) > 0 {
		c.armSweep(ctx)
	}
}
