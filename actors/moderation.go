package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// moderator is the actor of the events of a message the server removed
// (the admin API): no user id starts with '#'.
const moderator = "#moderator"

// DeleteMessage removes message msgID of a conversation for everyone, as
// moderation (the admin API): it is recalled as its sender could, without
// the time window, and every participant's devices get the EVENT_RECALLED
// event with actor "#moderator"; sync and history show it recalled, without
// content, from then on. The conversation is app's (empty: the default
// app); an unknown message is ERR_NOT_FOUND, one removed already is no
// error.
func (s *Service) DeleteMessage(ctx context.Context, app, conversationID string, msgID uint64) *clientpb.Error {
	d := s.d.forApp(app)
	c, err := ids.Parse(conversationID)
	switch {
	case err != nil:
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad conversation id")
	case c.System != "":
		return clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "broadcasts are not deleted one by one")
	case msgID == 0:
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad message id")
	}
	if c.Group != "" {
		_, e := d.askOp(ctx, c.Group, KindGroup, &actorpb.GroupRecall{User: moderator, MsgId: msgID, Moderation: true})
		return e
	}
	if e := d.requireAccount(ctx, c.A); e != nil {
		return e
	}
	_, e := d.askOp(ctx, c.A, KindUser, &actorpb.AdminRecall{ConversationId: conversationID, MsgId: msgID})
	return e
}

// askOp asks a grain for msg, answered by an OpResult, and returns its
// result or its error (no answer in time: errNoAnswer).
func (d *deps) askOp(ctx context.Context, identity, kind string, msg any) (*clientpb.Result, *clientpb.Error) {
	res, err := d.member.Request(ctx, identity, kind, msg)
	if err != nil {
		return nil, errNoAnswer
	}
	r, ok := res.(*actorpb.OpResult)
	switch {
	case !ok:
		return nil, errUnexpectedAnswer
	case r.GetError() != nil:
		return nil, r.GetError()
	}
	return r.GetResult(), nil
}

// onAdminRecall recalls a private message of this user's for everyone
// (Service.DeleteMessage): the message is in this user's timeline, sent by
// either participant.
func (g *userGrain) onAdminRecall(ctx actor.Context, m *actorpb.AdminRecall) *actorpb.OpResult {
	conv := m.GetConversationId()
	msg, res := g.ownMessage(conv, m.GetMsgId())
	if res != nil {
		return res
	}
	if msg == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such message in this conversation")
	}
	if done, res := g.d.recalled(conv, msg.GetId()); res != nil || done {
		return res
	}
	if res := g.d.markRecalled(conv, msg.GetId()); res != nil {
		return res
	}
	other := msg.GetTo()
	if other == g.id {
		other = msg.GetFrom()
	}
	timelines := []string{g.id, other}
	if other == g.id {
		timelines = timelines[:1]
	}
	entries, err := g.d.appendEvent(conv, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, g.id, other,
		&clientpb.Event{Type: clientpb.EventType_EVENT_RECALLED, Actor: moderator, Users: []string{msg.GetFrom()}, MsgId: msg.GetId()}, timelines)
	if err != nil {
		return failed(errStoreUnavailable)
	}
	g.notify(ctx, entries[:1], "")
	g.d.deliverEntries(ctx, g.id, timelines, entries, "")
	return nil
}

// GroupOp performs a group request for the app server (the admin API):
// as user as (a user of app, who must exist), or, with as empty, with the
// authority of the group's owner, so that the app server can manage any
// group (members, roles, dissolve) as its owner would. The events it makes
// name the acting user (the owner). Creating a group needs as, its owner.
func (s *Service) GroupOp(ctx context.Context, app, groupID, as string, req *clientpb.GroupRequest) (*clientpb.Result, *clientpb.Error) {
	d := s.d.forApp(app)
	if !ids.ValidUser(groupID) {
		return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad group id")
	}
	op := &actorpb.GroupOp{User: as, Request: req, AsOwner: as == ""}
	if as != "" {
		if !ids.ValidUser(as) {
			return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad user id in as")
		}
		if e := d.requireAccount(ctx, as); e != nil {
			return nil, e
		}
	} else if _, ok := req.GetOp().(*clientpb.GroupRequest_Create_); ok {
		return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "create: name the owner (as)")
	}
	res, e := d.askOp(ctx, groupID, KindGroup, op)
	if e != nil {
		return nil, e
	}
	if res == nil {
		return &clientpb.Result{}, nil
	}
	return res, nil
}
