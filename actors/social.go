package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// onSocial answers the friend, blacklist, settings and presence requests
// (frames 17 to 25).
func (g *userGrain) onSocial(ctx actor.Context, m *actorpb.UserOp) *actorpb.OpResult {
	return opError(clientpb.ErrorCode_ERR_UNSUPPORTED, "not implemented yet")
}

// mayMessage decides whether this user may send a private message to user
// to: nil, or ERR_BLOCKED / ERR_NOT_FRIEND.
func (g *userGrain) mayMessage(to string) *clientpb.Error {
	return nil
}

// blocks reports whether this user blocked user.
func (g *userGrain) blocks(user string) bool {
	return false
}
