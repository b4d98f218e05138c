package actors

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Erasing a user (the right to erasure; Service.DeleteUser). The user's
// grain does it, in an order that leaves the others consistent at every
// step and lets a call cut short be finished by the next:
//
//  1. it writes the marker "ux/<user>", so that the user counts as known
//     until the end even once the account is gone;
//  2. it kicks the user's devices;
//  3. it leaves every group of its conversation index (GroupErase: an
//     owner's group passes to the longest-standing admin, else member, or
//     is dissolved when the owner was alone), withdraws its pending join
//     requests and lifts its bans there;
//  4. it deletes every friend as a FriendDelete does (the friend is told),
//     and withdraws the friend requests both ways;
//  5. it removes the directory entry and deletes its records (us/, up/,
//     uc/, ut/, pf/; keys.go);
//  6. the store erases the account, timeline, counters, dedup keys and
//     sessions (persistence.Eraser), and the archive the user's rows when
//     the app's ArchiveOnUserDelete is "delete";
//  7. it deletes the marker.
//
// Messages the user sent stay in the timelines of those they were sent
// to, attributed to the id, as in every IM.

// Eraser deletes a user's account, timeline and sessions
// (persistence.Eraser). Consumed by the user grain's erasure only.
type Eraser interface {
	EraseUser(ctx context.Context, userID string) error
}

type scopedEraser struct {
	scoped
	e Eraser // the node's
}

func (s scopedEraser) EraseUser(ctx context.Context, userID string) error {
	return s.e.EraseUser(ctx, s.q(userID))
}

var errNoEraser = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "this store cannot erase users")

// DeleteUser erases userID and its data (see erase.go): answered once the
// user is gone, ERR_NOT_FOUND when there is no such user (no grain is
// activated for it). A call that fails midway may be repeated: it finishes
// the job.
func (s *Service) DeleteUser(ctx context.Context, userID string) *clientpb.Error {
	d, userID := s.d.scope(userID)
	if d.eraser == nil {
		return errNoEraser
	}
	found, _, e := d.account(ctx, userID)
	if e != nil {
		return e
	}
	if !found {
		var err error
		if found, err = d.erasing(ctx, userID); err != nil {
			d.log.Error("read erasure marker", "user", userID, "err", err)
			return errStoreUnavailable
		}
	}
	if !found {
		return clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such user: "+userID)
	}
	res, err := d.member.Request(ctx, userID, KindUser, &actorpb.EraseUser{})
	if err != nil {
		return errNoAnswer
	}
	r, ok := res.(*actorpb.EraseUserResult)
	if !ok {
		return errUnexpectedAnswer
	}
	return r.GetError()
}

// erasing reports whether an erasure of user is under way (its marker).
func (d *deps) erasing(ctx context.Context, user string) (bool, error) {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	_, err := d.records.GetState(sctx, eraseKey(user))
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// onErase erases the grain's user; see the steps above.
func (g *userGrain) onErase(ctx actor.Context) *actorpb.EraseUserResult {
	if g.d.eraser == nil {
		return &actorpb.EraseUserResult{Error: errNoEraser}
	}
	res := g.getAccount()
	if res.GetError() != nil {
		return &actorpb.EraseUserResult{Error: res.GetError()}
	}
	if !res.GetFound() {
		erasing, err := g.d.erasing(context.Background(), g.id)
		if err != nil {
			g.d.log.Error("read erasure marker", "user", g.id, "err", err)
			return &actorpb.EraseUserResult{Error: errStoreUnavailable}
		}
		if !erasing {
			g.unknown = true
			return &actorpb.EraseUserResult{}
		}
	}
	if e := g.erase(ctx); e != nil {
		g.d.log.Warn("erase user: stopped midway; a repeated call finishes it", "user", g.id, "err", e.GetMessage())
		return &actorpb.EraseUserResult{Found: true, Error: e}
	}
	g.d.log.Info("user erased", "app", g.d.app, "user", g.id)
	return &actorpb.EraseUserResult{Found: true}
}

func (g *userGrain) erase(ctx actor.Context) *clientpb.Error {
	if e := g.putRecord(eraseKey(g.id), []byte(strconv.FormatUint(nowMs(), 10))); e != nil {
		return e
	}
	for id, d := range g.devices {
		ctx.Send(d.conn, &actorpb.KickDevice{Reason: clientpb.KickReason_KICK_REASON_REVOKED, Message: "this account was deleted"})
		g.unwatch(ctx, d.conn)
		g.removeDevice(id, d)
	}
	if e := g.leaveGroups(); e != nil {
		return e
	}
	if e := g.dropFriends(ctx); e != nil {
		return e
	}
	if g.d.directory != nil {
		sctx, cancel := g.d.storeCtx()
		err := g.d.directory.RemoveName(sctx, g.d.app, g.id)
		cancel()
		if err != nil {
			g.d.log.Error("erase user: directory", "user", g.id, "err", err)
			return errStoreUnavailable
		}
	}
	for _, key := range []string{socialKey(g.id), policyKey(g.id), convKey(g.id), tokenKey(g.id), profileKey(g.id), pushKey(g.id)} {
		if e := g.deleteRecord(key); e != nil {
			return e
		}
	}
	sctx, cancel := g.d.storeCtx()
	err := g.d.eraser.EraseUser(sctx, g.id)
	cancel()
	if err != nil {
		g.d.log.Error("erase user: store", "user", g.id, "err", err)
		return errStoreUnavailable
	}
	if g.d.archive != nil && g.d.settings.ArchiveOnUserDelete == "delete" {
		sctx, cancel := g.d.storeCtx()
		err := g.d.archive.EraseUser(sctx, g.id)
		cancel()
		if err != nil {
			g.d.log.Error("erase user: archive", "user", g.id, "err", err)
			return errStoreUnavailable
		}
	}
	if e := g.deleteRecord(eraseKey(g.id)); e != nil {
		return e
	}
	// What the grain remembers of the user is gone with it.
	*g = userGrain{d: g.d, id: g.id, devices: map[string]*device{}, unknown: true}
	return nil
}

func (g *userGrain) putRecord(key string, value []byte) *clientpb.Error {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	if err := g.d.records.PutState(sctx, key, value); err != nil {
		g.d.log.Error("erase user: write", "user", g.id, "key", key, "err", err)
		return errStoreUnavailable
	}
	return nil
}

func (g *userGrain) deleteRecord(key string) *clientpb.Error {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	if err := g.d.records.DeleteState(sctx, key); err != nil {
		g.d.log.Error("erase user: delete", "user", g.id, "key", key, "err", err)
		return errStoreUnavailable
	}
	return nil
}

// leaveGroups takes the user out of every group its conversation index
// knows (a member has the group's events in its timeline).
func (g *userGrain) leaveGroups() *clientpb.Error {
	if err := g.indexConvs(); err != nil {
		g.d.log.Error("erase user: conversations", "user", g.id, "err", err)
		return errStoreUnavailable
	}
	var groups []string
	for conv := range g.convs.GetConvs() {
		if c, err := ids.Parse(conv); err == nil && c.Group != "" {
			groups = append(groups, c.Group)
		}
	}
	slices.Sort(groups)
	for _, group := range groups {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		res, err := g.d.member.Request(ctx, group, KindGroup, &actorpb.GroupErase{User: g.id})
		cancel()
		if err != nil {
			g.d.log.Warn("erase user: group", "user", g.id, "group", group, "err", err)
			return clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group "+group+" did not answer in time, retry")
		}
		if r, ok := res.(*actorpb.OpResult); !ok || r.GetError() != nil {
			return clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group "+group+" could not remove the user, retry")
		}
	}
	return nil
}

// dropFriends deletes every friend (telling them, as a FriendDelete does)
// and withdraws the requests both ways.
func (g *userGrain) dropFriends(ctx actor.Context) *clientpb.Error {
	st, e := g.socialState()
	if e != nil {
		return e
	}
	for _, f := range sortedKeys(st.GetFriends()) {
		if r := g.friendDelete(ctx, f); r.GetError() != nil && r.GetError().GetCode() != clientpb.ErrorCode_ERR_NOT_FOUND {
			return r.GetError()
		}
	}
	st, e = g.socialState()
	if e != nil {
		return e
	}
	pendings := append(sortedKeys(st.GetOutgoing()), sortedKeys(st.GetIncoming())...)
	for _, u := range pendings {
		// A rejection clears whatever request either side holds.
		if e := g.peer(u, &actorpb.PeerOp{From: g.id, Type: clientpb.EventType_EVENT_FRIEND_REJECTED}); e != nil {
			return e
		}
		next, e := g.edit()
		if e != nil {
			return e
		}
		delete(next.Outgoing, u)
		delete(next.Incoming, u)
		if e := g.save(next, false); e != nil {
			return e
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// onErase takes an erased user out of the group: a member leaves (an
// owner hands the group on first, or dissolves it when alone), a pending
// join request is dropped and a ban lifted, the read mark forgotten.
func (g *groupGrain) onErase(ctx actor.Context, user string) *actorpb.OpResult {
	if g.st == nil {
		return nil
	}
	dirty := false
	if _, ok := g.st.GetRequests()[user]; ok {
		delete(g.st.Requests, user)
		dirty = true
	}
	if g.st.GetBanned()[user] {
		delete(g.st.Banned, user)
		dirty = true
	}
	if g.member(user) == nil {
		if dirty {
			return g.save()
		}
		return nil
	}
	if g.st.GetInfo().GetDissolved() {
		// No events in a dissolved group: the user just goes off record.
		delete(g.st.Members, user)
		delete(g.reads.GetReadMsgId(), user)
		g.readsDirty = true
		return g.save()
	}
	if g.role(user) == clientpb.GroupRole_GROUP_ROLE_OWNER {
		if heir := g.heir(user); heir != "" {
			if r := g.transfer(ctx, user, heir); r != nil {
				return r
			}
		} else if r := g.dissolve(ctx, user); r != nil {
			return r
		} else {
			delete(g.st.Members, user)
			delete(g.reads.GetReadMsgId(), user)
			g.readsDirty = true
			return g.save()
		}
	}
	return g.leave(ctx, user)
}

// heir is who inherits the group of its owner: the longest-standing admin,
// else the longest-standing member (the earlier id on a tie); "" when the
// owner is alone.
func (g *groupGrain) heir(owner string) string {
	var best string
	var bestRec *storepb.MemberRecord
	better := func(u string, m *storepb.MemberRecord) bool {
		if bestRec == nil {
			return true
		}
		ua := m.GetRole() == clientpb.GroupRole_GROUP_ROLE_ADMIN
		ba := bestRec.GetRole() == clientpb.GroupRole_GROUP_ROLE_ADMIN
		if ua != ba {
			return ua
		}
		if m.GetJoinedAtMs() != bestRec.GetJoinedAtMs() {
			return m.GetJoinedAtMs() < bestRec.GetJoinedAtMs()
		}
		return strings.Compare(u, best) < 0
	}
	for u, m := range g.st.GetMembers() {
		if u != owner && better(u, m) {
			best, bestRec = u, m
		}
	}
	return best
}
