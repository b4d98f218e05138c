package actors

import (
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"actorim/hooks"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Limits of the social state. The blacklist is bounded because it is part
// of the policy record read on private sends.
const (
	maxNoteRunes     = 256
	maxRemarkRunes   = 64
	maxCategoryRunes = 32
	maxCategories    = 50
	maxBlocked       = 1000
)

// peerTimeout bounds a PeerOp to the other user's grain. It is shorter than
// opTimeout so that the client gets this grain's answer, not the
// connection's own timeout.
const peerTimeout = 3 * time.Second

// social is the user grain's friends, blacklist and presence bookkeeping.
type social struct {
	st *storepb.SocialState // nil until loaded
	// shown is the platform set last announced to friends (empty: offline).
	shown []clientpb.Platform
}

// onSocial answers the friend, blacklist, settings and presence requests
// (frames 17 to 25).
func (g *userGrain) onSocial(ctx actor.Context, m *actorpb.UserOp) *actorpb.OpResult {
	switch b := m.GetFrame().GetBody().(type) {
	case *clientpb.Frame_FriendRequest:
		return g.friendRequest(ctx, b.FriendRequest)
	case *clientpb.Frame_FriendRespond:
		return g.friendRespond(ctx, b.FriendRespond.GetFrom(), b.FriendRespond.GetAccept())
	case *clientpb.Frame_FriendDelete:
		return g.friendDelete(ctx, b.FriendDelete.GetUser())
	case *clientpb.Frame_FriendUpdate:
		return g.friendUpdate(b.FriendUpdate)
	case *clientpb.Frame_Category:
		return g.categoryOp(b.Category)
	case *clientpb.Frame_FriendList:
		return g.friendList()
	case *clientpb.Frame_Block:
		return g.block(ctx, b.Block.GetUser(), b.Block.GetBlocked())
	case *clientpb.Frame_Settings:
		return g.updateSettings(b.Settings)
	case *clientpb.Frame_PresenceQuery:
		return g.presenceQuery(b.PresenceQuery.GetUsers())
	}
	return opError(clientpb.ErrorCode_ERR_UNSUPPORTED, "unsupported request")
}

// blocks reports whether this user blocked user.
func (g *userGrain) blocks(user string) bool {
	st, e := g.socialState()
	return e == nil && st.GetBlocked()[user]
}

// policy reads user's policy record; nil (no restrictions) when absent.
func (d *deps) policy(user string) (*storepb.SocialState, error) {
	pol := &storepb.SocialState{}
	found, err := d.loadState(policyKey(user), pol)
	switch {
	case err != nil:
		d.log.Warn("read policy", "user", user, "err", err)
		return nil, err
	case !found:
		return nil, nil
	}
	return pol, nil
}

// socialState loads the user's social state on first use.
func (g *userGrain) socialState() (*storepb.SocialState, *clientpb.Error) {
	if g.soc.st != nil {
		return g.soc.st, nil
	}
	st := &storepb.SocialState{}
	if _, err := g.d.loadState(socialKey(g.id), st); err != nil {
		g.d.log.Error("load social state", "user", g.id, "err", err)
		if errors.Is(err, errBadRecord) {
			return nil, clientError(clientpb.ErrorCode_ERR_INTERNAL, "social state unreadable")
		}
		return nil, errStoreUnavailable
	}
	g.soc.st = st
	return st, nil
}

// edit returns a copy of the state to change and save; the state in memory
// only changes once the copy is stored.
func (g *userGrain) edit() (*storepb.SocialState, *clientpb.Error) {
	st, e := g.socialState()
	if e != nil {
		return nil, e
	}
	next := proto.Clone(st).(*storepb.SocialState)
	if next.Friends == nil {
		next.Friends = map[string]*storepb.FriendRecord{}
	}
	if next.Incoming == nil {
		next.Incoming = map[string]*storepb.PendingRecord{}
	}
	if next.Outgoing == nil {
		next.Outgoing = map[string]*storepb.PendingRecord{}
	}
	if next.Blocked == nil {
		next.Blocked = map[string]bool{}
	}
	if next.RejectedAtMs == nil {
		next.RejectedAtMs = map[string]uint64{}
	}
	cool := uint64(g.d.cfg.FriendRequestCooldown.Milliseconds())
	now := nowMs()
	for u, at := range next.RejectedAtMs {
		if at+cool <= now {
			delete(next.RejectedAtMs, u)
		}
	}
	return next, nil
}

// save writes next through and makes it current; withPolicy also rewrites
// the policy record (always, even unchanged, so a retry repairs a policy
// write that failed after the state's).
func (g *userGrain) save(next *storepb.SocialState, withPolicy bool) *clientpb.Error {
	if err := g.d.saveState(socialKey(g.id), next); err != nil {
		g.d.log.Error("save social state", "user", g.id, "err", err)
		return errStoreUnavailable
	}
	g.soc.st = next
	if !withPolicy {
		return nil
	}
	var err error
	if len(next.GetBlocked()) == 0 && !next.GetFriendsOnly() {
		sctx, cancel := g.d.storeCtx()
		err = g.d.records.DeleteState(sctx, policyKey(g.id))
		cancel()
	} else {
		err = g.d.saveState(policyKey(g.id), &storepb.SocialState{Blocked: next.GetBlocked(), FriendsOnly: next.GetFriendsOnly()})
	}
	if err != nil {
		g.d.log.Error("save policy", "user", g.id, "err", err)
		return errStoreUnavailable
	}
	return nil
}

func nowMs() uint64 { return uint64(time.Now().UnixMilli()) }

// other validates the user id an operation is about.
func (g *userGrain) other(user, what string) *clientpb.Error {
	switch {
	case !ids.ValidUser(user):
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, what+": user must be 1 to 64 characters [A-Za-z0-9_.@-]")
	case user == g.id:
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, what+": not with yourself")
	}
	return nil
}

// exists reports whether user has an account, without activating its grain.
func (g *userGrain) exists(user string) *clientpb.Error {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	_, err := g.d.accounts.GetAccount(sctx, user)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return clientError(clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT, "no such user: "+user)
	case err != nil:
		return errStoreUnavailable
	}
	return nil
}

// peer has user's grain apply what this user did to it; only the owning
// grain writes a user's state. The call blocks this grain (onUserOp answers
// synchronously) for at most peerTimeout; PeerOp handlers never call other
// grains, so two grains can only wait on each other when both users act on
// each other at the same moment, and then both calls time out and are
// retried by the clients (every PeerOp is idempotent).
func (g *userGrain) peer(user string, op *actorpb.PeerOp) *clientpb.Error {
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	res, err := g.d.member.Request(ctx, user, KindUser, op)
	if err != nil {
		g.d.log.Warn("peer op", "user", g.id, "peer", user, "type", op.GetType().String(), "err", err)
		return clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, user+" did not answer in time, retry")
	}
	r, ok := res.(*actorpb.PeerOpResult)
	if !ok {
		return errUnexpectedAnswer
	}
	return r.GetError()
}

// friendEvent stores a friend event in both users' timelines (conversation
// p:<a>:<b>) and delivers it to both users' devices.
func (g *userGrain) friendEvent(ctx actor.Context, typ clientpb.EventType, other, note string) {
	ev := &clientpb.Event{Type: typ, Actor: g.id, Users: []string{other}, Note: note}
	timelines := []string{g.id, other}
	entries, err := g.d.appendEvent(ids.Private(g.id, other), clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, g.id, other, ev, timelines)
	if err != nil || len(entries) == 0 {
		return // logged; the state change stands, the event is lost
	}
	g.notify(ctx, entries[:1], "")
	g.d.deliverEntries(ctx, g.id, timelines, entries, "")
}

func (g *userGrain) friendRequest(ctx actor.Context, r *clientpb.FriendRequest) *actorpb.OpResult {
	to, note := r.GetTo(), r.GetNote()
	if e := g.other(to, "friend_request"); e != nil {
		return failed(e)
	}
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > maxNoteRunes {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "friend_request: note must be valid UTF-8 of at most 256 characters")
	}
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	switch {
	case st.GetBlocked()[to]:
		return opError(clientpb.ErrorCode_ERR_BLOCKED, "you blocked "+to+"; unblock them first")
	case st.GetFriends()[to] != nil:
		return opError(clientpb.ErrorCode_ERR_CONFLICT, "already friends with "+to)
	case st.GetIncoming()[to] != nil:
		// They asked first: asking back accepts.
		return g.friendRespond(ctx, to, true)
	}
	// A retry of a pending request asks the other side again, which changes
	// nothing there if it holds the request, and tells this side if it
	// no longer may (the other user blocked this one meanwhile).
	retry := st.GetOutgoing()[to] != nil
	if !retry {
		if max := g.d.cfg.MaxPendingFriendRequests; len(st.GetOutgoing()) >= max {
			return opError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED,
				"friend_request: at most "+strconv.Itoa(max)+" requests may wait for an answer")
		}
		if e := g.exists(to); e != nil {
			return failed(e)
		}
	}
	if e := g.peer(to, &actorpb.PeerOp{From: g.id, Type: clientpb.EventType_EVENT_FRIEND_REQUEST, Note: note}); e != nil {
		if retry && e.GetCode() == clientpb.ErrorCode_ERR_BLOCKED {
			g.dropOutgoing(to)
		}
		return failed(e)
	}
	if retry {
		g.friendHook(hooks.FriendRequest, to) // its id is the first's: the queue drops a copy
		return nil                            // nothing new to tell
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	next.Outgoing[to] = &storepb.PendingRecord{Note: note, AtMs: nowMs()}
	delete(next.RejectedAtMs, to) // asking someone is consenting to be asked back
	if e := g.save(next, false); e != nil {
		return failed(e)
	}
	g.friendHook(hooks.FriendRequest, to)
	g.friendEvent(ctx, clientpb.EventType_EVENT_FRIEND_REQUEST, to, note)
	return nil
}

// dropOutgoing forgets a request the other side refuses to hold.
func (g *userGrain) dropOutgoing(to string) {
	next, e := g.edit()
	if e != nil {
		return
	}
	delete(next.Outgoing, to)
	_ = g.save(next, false) // logged; the next retry tries again
}

func (g *userGrain) friendRespond(ctx actor.Context, from string, accept bool) *actorpb.OpResult {
	if e := g.other(from, "friend_respond"); e != nil {
		return failed(e)
	}
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	if st.GetIncoming()[from] == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "no pending friend request from "+from)
	}
	typ := clientpb.EventType_EVENT_FRIEND_REJECTED
	if accept {
		typ = clientpb.EventType_EVENT_FRIEND_ADDED
	}
	if e := g.peer(from, &actorpb.PeerOp{From: g.id, Type: typ}); e != nil {
		return failed(e)
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	delete(next.Incoming, from)
	if accept {
		delete(next.Outgoing, from)
		delete(next.RejectedAtMs, from)
		next.Friends[from] = &storepb.FriendRecord{SinceMs: nowMs()}
	} else {
		next.RejectedAtMs[from] = nowMs()
	}
	if e := g.save(next, false); e != nil {
		return failed(e)
	}
	g.friendHook(friendChanges[typ], from)
	g.friendEvent(ctx, typ, from, "")
	return nil
}

func (g *userGrain) friendDelete(ctx actor.Context, user string) *actorpb.OpResult {
	if e := g.other(user, "friend_delete"); e != nil {
		return failed(e)
	}
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	if st.GetFriends()[user] == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, user+" is not a friend")
	}
	if e := g.peer(user, &actorpb.PeerOp{From: g.id, Type: clientpb.EventType_EVENT_FRIEND_DELETED}); e != nil {
		return failed(e)
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	delete(next.Friends, user)
	if e := g.save(next, false); e != nil {
		return failed(e)
	}
	g.friendHook(hooks.FriendRemoved, user)
	g.friendEvent(ctx, clientpb.EventType_EVENT_FRIEND_DELETED, user, "")
	return nil
}

// onPeerOp applies what another user did to this one (PeerOp). Each type is
// idempotent: a retried request changes nothing more.
func (g *userGrain) onPeerOp(m *actorpb.PeerOp) *actorpb.PeerOpResult {
	from := m.GetFrom()
	if !ids.ValidUser(from) || from == g.id {
		return &actorpb.PeerOpResult{Error: clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "peer op: bad user")}
	}
	next, e := g.edit()
	if e != nil {
		return &actorpb.PeerOpResult{Error: e}
	}
	switch m.GetType() {
	case clientpb.EventType_EVENT_FRIEND_REQUEST:
		if e := g.mayRequest(next, from); e != nil || next.Incoming[from] != nil || next.Friends[from] != nil {
			return &actorpb.PeerOpResult{Error: e} // refused, or held already: nothing to write
		}
		next.Incoming[from] = &storepb.PendingRecord{Note: m.GetNote(), AtMs: nowMs()}
	case clientpb.EventType_EVENT_FRIEND_ADDED:
		if next.Friends[from] != nil {
			return &actorpb.PeerOpResult{}
		}
		delete(next.Outgoing, from)
		delete(next.Incoming, from)
		delete(next.RejectedAtMs, from)
		next.Friends[from] = &storepb.FriendRecord{SinceMs: nowMs()}
	case clientpb.EventType_EVENT_FRIEND_REJECTED:
		// No request between the two stands any more: from rejected this
		// user's request, or blocked this user (then a request of from's
		// to this user ends too).
		if next.Outgoing[from] == nil && next.Incoming[from] == nil {
			return &actorpb.PeerOpResult{}
		}
		delete(next.Outgoing, from)
		delete(next.Incoming, from)
	case clientpb.EventType_EVENT_FRIEND_DELETED:
		delete(next.Friends, from)
	default:
		return &actorpb.PeerOpResult{Error: clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "peer op: unknown type")}
	}
	return &actorpb.PeerOpResult{Error: g.save(next, false)}
}

// mayRequest decides whether from may file a friend request with this user
// (st is this user's state): nil, ERR_BLOCKED, ERR_RATE_LIMITED during the
// cool-down after a rejection, or ERR_LIMIT_EXCEEDED when too many requests
// wait already. A request held already or from a friend is always fine.
func (g *userGrain) mayRequest(st *storepb.SocialState, from string) *clientpb.Error {
	switch {
	case st.GetBlocked()[from]:
		return clientError(clientpb.ErrorCode_ERR_BLOCKED, g.id+" does not accept your requests")
	case st.GetIncoming()[from] != nil || st.GetFriends()[from] != nil:
		return nil
	}
	if at, ok := st.GetRejectedAtMs()[from]; ok {
		until := at + uint64(g.d.cfg.FriendRequestCooldown.Milliseconds())
		if now := nowMs(); now < until {
			e := clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, g.id+" rejected your request recently; ask again later")
			e.RetryAfterMs = uint32(min(until-now, math.MaxUint32))
			return e
		}
	}
	if max := g.d.cfg.MaxPendingFriendRequests; len(st.GetIncoming()) >= max {
		return clientError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED, g.id+" has too many friend requests waiting for an answer")
	}
	return nil
}

func (g *userGrain) friendUpdate(u *clientpb.FriendUpdate) *actorpb.OpResult {
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	if st.GetFriends()[u.GetUser()] == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "friend_update: "+u.GetUser()+" is not a friend")
	}
	if u.Remark != nil && (!utf8.ValidString(u.GetRemark()) || utf8.RuneCountInString(u.GetRemark()) > maxRemarkRunes) {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "friend_update: remark must be valid UTF-8 of at most 64 characters")
	}
	if u.Category != nil && u.GetCategory() != "" && !slices.Contains(st.GetCategories(), u.GetCategory()) {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "friend_update: no category "+u.GetCategory())
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	f := next.Friends[u.GetUser()]
	if u.Remark != nil {
		f.Remark = u.GetRemark()
	}
	if u.Category != nil {
		f.Category = u.GetCategory()
	}
	return &actorpb.OpResult{Error: g.save(next, false)}
}

func validCategory(name string) bool {
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxCategoryRunes {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (g *userGrain) categoryOp(c *clientpb.CategoryOp) *actorpb.OpResult {
	if !validCategory(c.GetName()) {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "category: name must be 1 to 32 printable characters")
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	at := slices.Index(next.Categories, c.GetName())
	switch c.GetOp() {
	case clientpb.CategoryOp_OP_CREATE:
		if at >= 0 {
			return opError(clientpb.ErrorCode_ERR_CONFLICT, "category: "+c.GetName()+" exists")
		}
		if len(next.Categories) >= maxCategories {
			return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "category: at most 50 categories")
		}
		next.Categories = append(next.Categories, c.GetName())
	case clientpb.CategoryOp_OP_RENAME:
		switch {
		case at < 0:
			return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "category: no category "+c.GetName())
		case !validCategory(c.GetNewName()):
			return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "category: new_name must be 1 to 32 printable characters")
		case slices.Contains(next.Categories, c.GetNewName()):
			return opError(clientpb.ErrorCode_ERR_CONFLICT, "category: "+c.GetNewName()+" exists")
		}
		next.Categories[at] = c.GetNewName()
		g.moveFriends(next, c.GetName(), c.GetNewName())
	case clientpb.CategoryOp_OP_DELETE:
		if at < 0 {
			return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "category: no category "+c.GetName())
		}
		next.Categories = slices.Delete(next.Categories, at, at+1)
		g.moveFriends(next, c.GetName(), "")
	default:
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "category: op must be create, rename or delete")
	}
	return &actorpb.OpResult{Error: g.save(next, false)}
}

func (g *userGrain) moveFriends(st *storepb.SocialState, from, to string) {
	for _, f := range st.Friends {
		if f.GetCategory() == from {
			f.Category = to
		}
	}
}

func (g *userGrain) friendList() *actorpb.OpResult {
	st, e := g.socialState()
	if e != nil {
		return failed(e)
	}
	l := &clientpb.FriendList{
		Categories: slices.Clone(st.GetCategories()),
		Settings:   &clientpb.Settings{FriendsOnly: st.GetFriendsOnly()},
	}
	for u, f := range st.GetFriends() {
		l.Friends = append(l.Friends, &clientpb.Friend{User: u, Remark: f.GetRemark(), Category: f.GetCategory(), SinceMs: f.GetSinceMs()})
	}
	sort.Slice(l.Friends, func(i, j int) bool { return l.Friends[i].User < l.Friends[j].User })
	l.Incoming = pending(st.GetIncoming())
	l.Outgoing = pending(st.GetOutgoing())
	for u, b := range st.GetBlocked() {
		if b {
			l.Blocked = append(l.Blocked, u)
		}
	}
	slices.Sort(l.Blocked)
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Friends{Friends: l}}}
}

// pending lists requests oldest first.
func pending(m map[string]*storepb.PendingRecord) []*clientpb.PendingRequest {
	out := make([]*clientpb.PendingRequest, 0, len(m))
	for u, p := range m {
		out = append(out, &clientpb.PendingRequest{User: u, Note: p.GetNote(), AtMs: p.GetAtMs()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AtMs != out[j].AtMs {
			return out[i].AtMs < out[j].AtMs
		}
		return out[i].User < out[j].User
	})
	return out
}

func (g *userGrain) block(ctx actor.Context, user string, blocked bool) *actorpb.OpResult {
	if e := g.other(user, "block"); e != nil {
		return failed(e)
	}
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	pending := false
	if blocked {
		if !next.Blocked[user] {
			if len(next.Blocked) >= maxBlocked {
				return opError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED, "block: the blacklist holds at most 1000 users")
			}
			if e := g.exists(user); e != nil {
				return failed(e)
			}
		}
		next.Blocked[user] = true
		pending = next.Incoming[user] != nil || next.Outgoing[user] != nil
		delete(next.Incoming, user)
		delete(next.Outgoing, user)
	} else {
		delete(next.Blocked, user)
	}
	if e := g.save(next, true); e != nil {
		return failed(e)
	}
	g.friendHook(blockChange(blocked), user)
	if pending {
		// The other side forgets the requests too, silently (a block is not
		// announced). Were it unreachable, its next retry of the request
		// learns of the block and forgets it then.
		_ = g.peer(user, &actorpb.PeerOp{From: g.id, Type: clientpb.EventType_EVENT_FRIEND_REJECTED})
	}
	// A friend's devices learn at once that this user vanished (or is back).
	if next.Friends[user] != nil {
		shown := g.soc.shown
		if blocked {
			shown = nil
		}
		g.d.presenceTo(ctx, user, g.id, presenceSignal(g.id, shown))
	}
	return nil
}

func (g *userGrain) updateSettings(u *clientpb.UpdateSettings) *actorpb.OpResult {
	next, e := g.edit()
	if e != nil {
		return failed(e)
	}
	if u.FriendsOnly != nil {
		next.FriendsOnly = u.GetFriendsOnly()
	}
	return &actorpb.OpResult{Error: g.save(next, true)}
}
