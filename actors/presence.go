package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// maxPresenceQuery bounds the users one presence query names.
const maxPresenceQuery = 200

// presenceQuery answers from the stored sessions, without activating any
// grain. Only friends' presence is visible: anyone else, and a friend who
// blocked the caller, shows offline.
func (g *userGrain) presenceQuery(users []string) *actorpb.OpResult {
	if len(users) > maxPresenceQuery {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "presence_query: at most 200 users")
	}
	for _, u := range users {
		if !ids.ValidUser(u) {
			return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "presence_query: bad user id "+u)
		}
	}
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	l := &clientpb.PresenceList{Users: make([]*clientpb.Presence, 0, len(users))}
	for _, u := range users {
		p := &clientpb.Presence{User: u}
		l.Users = append(l.Users, p)
		if u != g.id && st.GetFriends()[u] == nil {
			continue
		}
		sessions, err := g.d.sessionsOf(u)
		if err != nil {
			return failed(errStoreUnavailable)
		}
		if len(sessions) == 0 {
			continue
		}
		if u != g.id {
			pol, err := g.d.policy(u)
			if err != nil {
				return failed(errStoreUnavailable)
			}
			if pol.GetBlocked()[g.id] {
				continue
			}
		}
		p.Platforms = platformsOf(sessions)
		p.Online = true
	}
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Presence{Presence: l}}}
}

func (d *deps) sessionsOf(user string) ([]persistence.Session, error) {
	sctx, cancel := d.storeCtx()
	defer cancel()
	return d.sessions.Sessions(sctx, user)
}

func platformsOf(sessions []persistence.Session) []clientpb.Platform {
	var out []clientpb.Platform
	for _, s := range sessions {
		out = append(out, s.Platform)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// platforms is the sorted set of the platforms of the attached devices.
func (g *userGrain) platforms() []clientpb.Platform {
	var out []clientpb.Platform
	for _, d := range g.devices {
		out = append(out, d.platform)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func presenceSignal(user string, platforms []clientpb.Platform) *clientpb.Signal {
	return &clientpb.Signal{Kind: &clientpb.Signal_Presence{Presence: &clientpb.Presence{
		User: user, Online: len(platforms) > 0, Platforms: platforms,
	}}}
}

// presenceBaseline records what friends were told before this activation:
// the devices it adopted from the store.
func (g *userGrain) presenceBaseline() { g.soc.shown = g.platforms() }

// pushPresence tells the online friends when this user came online, went
// offline or changed its set of platforms. Called wherever the device set
// changes. Friends this user blocked are not told, nor friends who blocked
// this user (their policy record is read only for those online).
func (g *userGrain) pushPresence(ctx actor.Context) {
	now := g.platforms()
	if slices.Equal(now, g.soc.shown) {
		return
	}
	g.soc.shown = now
	st, e := g.socialState()
	if e != nil {
		return
	}
	s := presenceSignal(g.id, now)
	for f := range st.GetFriends() {
		if !st.GetBlocked()[f] {
			g.d.presenceTo(ctx, f, g.id, s)
		}
	}
}

// presenceTo passes a presence signal about user from to the online devices
// of user to, found in the store, unless to blocked from.
func (d *deps) presenceTo(ctx actor.Context, to, from string, s *clientpb.Signal) {
	sessions, err := d.sessionsOf(to)
	if err != nil || len(sessions) == 0 {
		return
	}
	if pol, err := d.policy(to); err != nil || pol.GetBlocked()[from] {
		return
	}
	msg := &actorpb.DeviceSignal{Signal: s}
	for _, ss := range sessions {
		ctx.Send(actor.NewPID(ss.Node, ss.ConnID), msg)
	}
}
