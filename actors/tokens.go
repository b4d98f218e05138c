package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Token revocation: a user's access record "ut/<user>" holds a time; tokens
// issued before it are refused at login (by the user grain, at Attach) and
// over HTTP (by the gateway, through Service.TokensRevokedBefore), and
// revoking (Service.RevokeTokens) kicks the devices logged in with such
// tokens. The same record holds the user's disabled flag (access.go).

// tokensRevokedBefore reads userID's revocation from the store, never
// activating a grain.
func (d *deps) tokensRevokedBefore(ctx context.Context, userID string) (time.Time, *clientpb.Error) {
	st := &storepb.TokenState{}
	if _, err := d.loadRecord(ctx, tokenKey(userID), st); err != nil {
		d.log.Error("read token revocation", "user", userID, "err", err)
		return time.Time{}, errStoreUnavailable
	}
	return msTime(st.GetRevokedBeforeMs()), nil
}

// revokeTokens has the user's grain raise the revocation and kick the
// devices it covers; an unknown user activates no grain.
func (d *deps) revokeTokens(ctx context.Context, userID string, before time.Time) (revokedBefore time.Time, kicked int, e *clientpb.Error) {
	found, _, e := d.account(ctx, userID)
	if e != nil {
		return time.Time{}, 0, e
	}
	if !found {
		return time.Time{}, 0, clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such user")
	}
	ms := uint64(before.Add(time.Second - 1).Truncate(time.Second).UnixMilli())
	res, err := d.member.Request(ctx, userID, KindUser, &actorpb.RevokeTokens{BeforeMs: ms})
	if err != nil {
		return time.Time{}, 0, errNoAnswer
	}
	rr := res.(*actorpb.RevokeTokensResult)
	return msTime(rr.GetRevokedBeforeMs()), int(rr.GetKicked()), rr.GetError()
}

func msTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// access returns the user's access record, loading it on first use (only
// logins, revocations and disabling need it).
func (g *userGrain) access() (*storepb.TokenState, error) {
	if g.tokens == nil {
		st := &storepb.TokenState{}
		if _, err := g.d.loadState(tokenKey(g.id), st); err != nil {
			return nil, err
		}
		g.tokens = st
	}
	return g.tokens, nil
}

// revocation returns the user's revocation time in Unix ms.
func (g *userGrain) revocation() (uint64, error) {
	st, err := g.access()
	return st.GetRevokedBeforeMs(), err
}

// loginRefused reports whether a login with a token issued at issuedAtMs
// (0: unknown) is refused: the token is revoked or the user disabled. It
// fails closed when the record cannot be read.
func (g *userGrain) loginRefused(issuedAtMs uint64) *clientpb.Error {
	st, err := g.access()
	if err != nil {
		g.d.log.Error("read token revocation", "user", g.id, "err", err)
		return errStoreUnavailable
	}
	if before := st.GetRevokedBeforeMs(); before != 0 && issuedAtMs < before {
		return errTokenRevoked
	}
	if st.GetDisabled() {
		return errUserDisabled
	}
	return nil
}

func (g *userGrain) onRevokeTokens(ctx actor.Context, m *actorpb.RevokeTokens) *actorpb.RevokeTokensResult {
	cur, err := g.revocation()
	if err != nil {
		g.d.log.Error("read token revocation", "user", g.id, "err", err)
		return &actorpb.RevokeTokensResult{Error: errStoreUnavailable}
	}
	if m.GetBeforeMs() > cur {
		next := &storepb.TokenState{RevokedBeforeMs: m.GetBeforeMs(), Disabled: g.tokens.GetDisabled()}
		if err := g.d.saveState(tokenKey(g.id), next); err != nil {
			g.d.log.Error("write token revocation", "user", g.id, "err", err)
			return &actorpb.RevokeTokensResult{Error: errStoreUnavailable}
		}
		g.tokens, cur = next, next.GetRevokedBeforeMs()
	}
	// Devices adopted from an earlier activation have no known issue time
	// (0): they count as revoked.
	kicked := g.kick(ctx, func(_ string, d *device) bool { return d.tokenIssuedAtMs < cur },
		clientpb.KickReason_KICK_REASON_REVOKED, "your tokens were revoked: log in again")
	// A registration made before the revocation belongs to a revoked login.
	g.dropPush(func(_ string, d *storepb.PushDevice) bool { return d.GetRegisteredAtMs() < cur })
	return &actorpb.RevokeTokensResult{RevokedBeforeMs: cur, Kicked: uint32(kicked)}
}

// kick sends the devices that which selects a Kick with reason and why, and
// forgets them; it returns how many.
func (g *userGrain) kick(ctx actor.Context, which func(id string, d *device) bool, reason clientpb.KickReason, why string) int {
	kicked := 0
	for id, d := range g.devices {
		if !which(id, d) {
			continue
		}
		ctx.Send(d.conn, &actorpb.KickDevice{Reason: reason, Message: why})
		g.unwatch(ctx, d.conn)
		g.removeDevice(id, d)
		kicked++
	}
	if kicked > 0 {
		g.pushPresence(ctx)
		g.presenceHooks("")
	}
	return kicked
}
