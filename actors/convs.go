package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

func (g *userGrain) onTyping(ctx actor.Context, t *clientpb.Typing) *actorpb.OpResult { return nil }
func (g *userGrain) onMarkRead(ctx actor.Context, r *clientpb.MarkRead) *actorpb.OpResult {
	return nil
}
func (g *userGrain) onRecall(ctx actor.Context, r *clientpb.Recall) *actorpb.OpResult { return nil }
func (g *userGrain) onConversations(ctx actor.Context) *actorpb.OpResult              { return nil }
func (g *userGrain) onConversationUpdate(ctx actor.Context, u *clientpb.ConversationUpdate) *actorpb.OpResult {
	return nil
}

func (g *userGrain) mutedConvs() []string { return nil }
