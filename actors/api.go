package actors

import (
	"context"
	"errors"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// Send sends a message as userID from a server-side device (the HTTP API).
func (r *Runtime) Send(ctx context.Context, userID, deviceID string, s *clientpb.Send) (*clientpb.SendAck, *clientpb.Error) {
	var res any
	var err error
	if s.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		if !ids.ValidUser(s.GetTo()) {
			return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: to must be a group id")
		}
		res, err = r.member.Request(ctx, s.GetTo(), KindGroup, &actorpb.GroupSend{User: userID, DeviceId: deviceID, Send: s})
	} else {
		res, err = r.member.Request(ctx, userID, KindUser, &actorpb.SendRequest{DeviceId: deviceID, Send: s})
	}
	if err != nil {
		return nil, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "no answer in time; retry with the same client_msg_id")
	}
	sr := res.(*actorpb.SendResult)
	if sr.GetError() != nil {
		return nil, sr.GetError()
	}
	return sr.GetAck(), nil
}

// CreateAccount registers userID with a password hash. With ifMissing, an
// existing account is left as it is and no error is returned.
func (r *Runtime) CreateAccount(ctx context.Context, userID, passwordHash string, ifMissing bool) *clientpb.Error {
	res, err := r.member.Request(ctx, userID, KindUser, &actorpb.CreateAccount{PasswordHash: passwordHash, IfMissing: ifMissing})
	if err != nil {
		return clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "try again")
	}
	return res.(*actorpb.CreateAccountResult).GetError()
}

// Account returns userID's password hash; found is false when no such user.
// It reads the store and activates no grain: looking up made-up user ids
// (a login flood) must not leave a grain behind for each.
func (r *Runtime) Account(ctx context.Context, userID string) (found bool, passwordHash string, e *clientpb.Error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
	defer cancel()
	a, err := r.store.GetAccount(ctx, userID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, "", nil
	case err != nil:
		r.log.Error("get account", "user", userID, "err", err)
		return false, "", clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable")
	}
	return true, a.PasswordHash, nil
}
