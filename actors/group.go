package actors

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"actorim/hooks"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// groupGrain is the virtual actor of one group. It owns the group's record
// (info, members and roles, mutes, join requests, ban list), decides every
// operation on the group, and performs group sends: one atomic append puts a
// message in the sender's timeline, the group's own timeline (the group's
// sequence) and every other member's timeline (write diffusion), after which
// the members' user grains are told, and they push to online devices.
//
// State is written through to the store ("gs/<group>") on every change; the
// members' read marks ("gr/<group>") are written at most every readFlush.
type groupGrain struct {
	d      *deps
	id     string
	st     *storepb.GroupState // nil when the group does not exist
	reads  *storepb.GroupReads
	loaded bool
	// readsDirty is set when read marks changed since the last write.
	readsDirty, flushing bool
	// queue holds accepted sends not yet stored; flushQueued is set while a
	// flushSends is on its way. See enqueueSend.
	queue       []queuedSend
	flushQueued bool
	// stopping is set once the grain found no group and set a short idle
	// timeout; a create clears it.
	stopping bool
}

// maxJoinRequests bounds the join requests waiting in one group.
const maxJoinRequests = 200

type flushReads struct{}

// readFlush bounds how long a read mark may wait to be written: a crash
// loses at most this much of read-count progress, never a message.
const readFlush = 500 * time.Millisecond

func newGroupGrain(d *deps) *groupGrain { return &groupGrain{d: d} }

func (g *groupGrain) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actorpb.GroupSend, flushSends:
	default:
		// Sends accepted before this message are stored before it acts:
		// a kick, a mute or a recall applies to what came after it.
		g.flush(ctx)
	}
	g.receive(ctx)
	// A group that does not exist keeps no grain alive: requests for random
	// ids would otherwise each hold one for GrainIdle. The next request,
	// a create included, activates a fresh one.
	switch {
	case g.loaded && g.st == nil && !g.stopping:
		g.stopping = true
		ctx.SetReceiveTimeout(unknownIdle)
	case g.st != nil && g.stopping: // created meanwhile
		g.stopping = false
		ctx.SetReceiveTimeout(g.d.cfg.GrainIdle)
	}
}

// unknownIdle is how long the grain of a group or user that does not exist
// waits for another message before it stops. Not zero: messages queued
// behind a stop are dropped unanswered (their senders time out), so the
// grain answers a burst of requests for one id before it goes; 20,000
// random ids a second then keep at most about 2,000 grains.
const unknownIdle = 100 * time.Millisecond

func (g *groupGrain) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pcluster.ClusterInit:
		var app string
		app, g.id = ids.Unqualify(m.Identity.GetIdentity())
		g.d = g.d.forApp(app)
		g.d.metrics.LiveGrains.WithLabelValues(KindGroup).Inc()
		ctx.SetReceiveTimeout(g.d.cfg.GrainIdle)
	case *actor.Restarting, *actor.Stopped:
		g.d.metrics.LiveGrains.WithLabelValues(KindGroup).Dec()
	case *actorpb.GroupOp:
		if !g.load() {
			ctx.Respond(failed(errStoreUnavailable))
			return
		}
		ctx.Respond(g.onOp(ctx, m))
	case *actorpb.GroupSend:
		if !g.load() {
			ctx.Respond(&actorpb.SendResult{Error: errStoreUnavailable, RequestId: m.GetRequestId()})
			return
		}
		g.enqueueSend(ctx, m)
	case flushSends:
		g.flushQueued = false
		g.flush(ctx)
	case *actorpb.GroupRead:
		if !g.load() {
			ctx.Respond(failed(errStoreUnavailable))
			return
		}
		ctx.Respond(g.onRead(ctx, m))
	case *actorpb.GroupRecall:
		if !g.load() {
			ctx.Respond(failed(errStoreUnavailable))
			return
		}
		ctx.Respond(g.onRecall(ctx, m))
	case *actorpb.GroupErase:
		if !g.load() {
			ctx.Respond(failed(errStoreUnavailable))
			return
		}
		ctx.Respond(g.onErase(ctx, m.GetUser()))
	case *actorpb.GroupSignal:
		if g.load() && g.member(m.GetUser()) != nil && !g.st.GetInfo().GetDissolved() {
			for u := range g.st.GetMembers() {
				if u != m.GetUser() {
					g.d.signalSessions(ctx, u, m.GetSignal())
				}
			}
		}
	case *actorpb.MemberOf:
		if !g.load() {
			ctx.Respond(&actorpb.MemberOfResult{})
			return
		}
		ctx.Respond(&actorpb.MemberOfResult{
			Exists: g.st != nil, Member: g.member(m.GetUser()) != nil, Dissolved: g.st.GetInfo().GetDissolved(),
		})
	case flushReads:
		g.flushing = false
		g.saveReads()
	case *actor.ReceiveTimeout:
		g.saveReads()
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		g.saveReads()
	}
}

// load reads the group's record on first use.
func (g *groupGrain) load() bool {
	if g.loaded {
		return true
	}
	st := &storepb.GroupState{}
	found, err := g.d.loadState(groupKey(g.id), st)
	if err != nil {
		g.d.log.Error("group: load", "group", g.id, "err", err)
		return false
	}
	if !found {
		st = nil
	}
	reads := &storepb.GroupReads{}
	if _, err := g.d.loadState(groupReadsKey(g.id), reads); err != nil {
		g.d.log.Error("group: load reads", "group", g.id, "err", err)
		return false
	}
	if reads.ReadMsgId == nil {
		reads.ReadMsgId = map[string]uint64{}
	}
	g.st, g.reads, g.loaded = st, reads, true
	return true
}

// save writes the group's record through to the store.
func (g *groupGrain) save() *actorpb.OpResult {
	if err := g.d.saveState(groupKey(g.id), g.st); err != nil {
		g.d.log.Error("group: save", "group", g.id, "err", err)
		g.loaded = false // reload the stored truth next time
		return failed(errStoreUnavailable)
	}
	return nil
}

func (g *groupGrain) saveReads() {
	if !g.readsDirty || g.reads == nil {
		return
	}
	if err := g.d.saveState(groupReadsKey(g.id), g.reads); err != nil {
		g.d.log.Warn("group: save read marks", "group", g.id, "err", err)
		return
	}
	g.readsDirty = false
}

func (g *groupGrain) member(user string) *storepb.MemberRecord {
	if g.st == nil {
		return nil
	}
	return g.st.GetMembers()[user]
}

func (g *groupGrain) role(user string) clientpb.GroupRole { return g.member(user).GetRole() }

func (g *groupGrain) isManager(user string) bool {
	r := g.role(user)
	return r == clientpb.GroupRole_GROUP_ROLE_OWNER || r == clientpb.GroupRole_GROUP_ROLE_ADMIN
}

// memberIDs returns the members, sorted.
func (g *groupGrain) memberIDs() []string {
	out := make([]string, 0, len(g.st.GetMembers()))
	for u := range g.st.GetMembers() {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

func (g *groupGrain) info() *clientpb.GroupInfo {
	i := proto.Clone(g.st.GetInfo()).(*clientpb.GroupInfo)
	i.MemberCount = uint32(len(g.st.GetMembers()))
	return i
}

func (g *groupGrain) onOp(ctx actor.Context, m *actorpb.GroupOp) *actorpb.OpResult {
	user, req := m.GetUser(), m.GetRequest()
	if m.GetAsOwner() {
		if g.st == nil {
			return failed(errNoGroup)
		}
		user = g.st.GetInfo().GetOwner()
	}
	if c, ok := req.GetOp().(*clientpb.GroupRequest_Create_); ok {
		return g.create(ctx, user, c.Create)
	}
	if req.GetOp() == nil {
		return failed(errNoOperation)
	}
	if g.st == nil {
		return failed(errNoGroup)
	}
	// Reads stay possible in a dissolved group; changes do not.
	switch op := req.GetOp().(type) {
	case *clientpb.GroupRequest_Info:
		return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Group{Group: g.info()}}}
	case *clientpb.GroupRequest_Members:
		return g.members(user)
	case *clientpb.GroupRequest_ReadStatus:
		return g.readStatus(user, op.ReadStatus.GetMsgIds(), false)
	case *clientpb.GroupRequest_Readers:
		return g.readStatus(user, []uint64{op.Readers.GetMsgId()}, true)
	}
	if g.st.GetInfo().GetDissolved() {
		return failed(errDissolved)
	}
	switch op := req.GetOp().(type) {
	case *clientpb.GroupRequest_Update_:
		return g.update(ctx, user, op.Update)
	case *clientpb.GroupRequest_Invite:
		return g.invite(ctx, user, op.Invite.GetUsers())
	case *clientpb.GroupRequest_Join:
		return g.join(ctx, user, op.Join.GetNote())
	case *clientpb.GroupRequest_AnswerJoin:
		return g.answerJoin(ctx, user, op.AnswerJoin)
	case *clientpb.GroupRequest_Leave:
		return g.leave(ctx, user)
	case *clientpb.GroupRequest_Kick:
		return g.kick(ctx, user, op.Kick.GetUsers())
	case *clientpb.GroupRequest_SetRole_:
		return g.setRole(ctx, user, op.SetRole)
	case *clientpb.GroupRequest_Transfer:
		return g.transfer(ctx, user, op.Transfer.GetUser())
	case *clientpb.GroupRequest_MuteMember_:
		return g.muteMember(ctx, user, op.MuteMember)
	case *clientpb.GroupRequest_MuteAll:
		return g.muteAll(ctx, user, op.MuteAll.GetOn())
	case *clientpb.GroupRequest_Dissolve:
		return g.dissolve(ctx, user)
	case *clientpb.GroupRequest_Ban:
		return g.ban(ctx, user, op.Ban)
	}
	return opError(clientpb.ErrorCode_ERR_UNSUPPORTED, "group: unknown operation")
}

// event stores ev in the timelines of the given users (plus the group's own
// timeline) and tells their grains.
func (g *groupGrain) event(ctx actor.Context, actorID string, ev *clientpb.Event, users []string) {
	ev.GroupId = g.id
	timelines := make([]string, 0, len(users)+1)
	timelines = append(timelines, groupTimeline(g.id))
	timelines = append(timelines, users...)
	entries, err := g.d.appendEvent(ids.Group(g.id), clientpb.ConversationType_CONVERSATION_TYPE_GROUP, actorID, g.id, ev, timelines)
	if err != nil {
		return // logged; the state change stands, its notice is lost
	}
	g.d.deliverEntries(ctx, "", timelines, entries, "")
}

// checkCount refuses a request that names more users than the cap.
func (g *groupGrain) checkCount(users []string) *actorpb.OpResult {
	if max := g.d.cfg.MaxUsersPerRequest; len(users) > max {
		return opError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED, "group: at most "+strconv.Itoa(max)+" users per request")
	}
	return nil
}

// dedup returns users without repeats, in first-seen order, leaving out
// those skip reports (nil: none).
func dedup(users []string, skip func(string) bool) []string {
	seen := make(map[string]struct{}, len(users))
	out := make([]string, 0, len(users))
	for _, u := range users {
		if _, ok := seen[u]; ok || (skip != nil && skip(u)) {
			continue
		}
		seen[u] = struct{}{}
		out = append(out, u)
	}
	return out
}

// consent decides whether by may put users into the group, by the rules of
// private messages: nobody who blocked by, or whom by blocked (ERR_BLOCKED),
// and nobody who accepts messages from friends only unless by is a friend
// (ERR_NOT_FRIEND). The request is refused whole. It costs a point read of
// each user's policy record (usually absent), and of by's social state only
// when a user is friends-only.
func (g *groupGrain) consent(by string, users []string) *actorpb.OpResult {
	own, err := g.d.policy(by)
	if err != nil {
		return failed(errStoreUnavailable)
	}
	var byState *storepb.SocialState
	for _, u := range users {
		if u == by {
			continue
		}
		if own.GetBlocked()[u] {
			return opError(clientpb.ErrorCode_ERR_BLOCKED, "you blocked "+u+"; unblock them first")
		}
		pol, err := g.d.policy(u)
		switch {
		case err != nil:
			return failed(errStoreUnavailable)
		case pol.GetBlocked()[by]:
			return opError(clientpb.ErrorCode_ERR_BLOCKED, u+" does not accept you")
		case !pol.GetFriendsOnly():
			continue
		}
		if byState == nil {
			byState = &storepb.SocialState{}
			if _, err := g.d.loadState(socialKey(by), byState); err != nil {
				g.d.log.Error("group: load social state", "user", by, "err", err)
				return failed(errStoreUnavailable)
			}
		}
		if byState.GetFriends()[u] == nil {
			return opError(clientpb.ErrorCode_ERR_NOT_FRIEND, u+" accepts friends only")
		}
	}
	return nil
}

// checkUsers validates user ids and that each has an account.
func (g *groupGrain) checkUsers(users []string) *actorpb.OpResult {
	sctx, cancel := g.d.storeCtx()
	defer cancel()
	for _, u := range users {
		if !ids.ValidUser(u) {
			return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: invalid user id "+strconv.Quote(u))
		}
		if _, err := g.d.accounts.GetAccount(sctx, u); err != nil {
			if errors.Is(err, persistence.ErrNotFound) {
				return opError(clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT, "no such user: "+u)
			}
			return failed(errStoreUnavailable)
		}
	}
	return nil
}

func (g *groupGrain) create(ctx actor.Context, user string, c *clientpb.GroupRequest_Create) *actorpb.OpResult {
	if g.st != nil {
		return failed(errGroupTaken)
	}
	if len(c.GetName()) > 128 || len(c.GetAvatarUrl()) > 1024 || len(c.GetNotice()) > 4096 {
		return failed(errGroupFieldsTooLong)
	}
	if r := g.checkCount(c.GetMembers()); r != nil {
		return r
	}
	members := dedup(append([]string{user}, c.GetMembers()...), nil)
	if len(members) > g.d.cfg.MaxGroupMembers {
		return opError(clientpb.ErrorCode_ERR_GROUP_FULL, "group: more members than the limit of "+strconv.Itoa(g.d.cfg.MaxGroupMembers))
	}
	if r := g.checkUsers(members[1:]); r != nil {
		return r
	}
	if r := g.consent(user, members[1:]); r != nil {
		return r
	}
	// The group's timeline account is its existence record: creating it is
	// atomic, so two creators of one id cannot both succeed.
	sctx, cancel := g.d.storeCtx()
	err := g.d.accounts.CreateAccount(sctx, persistence.Account{UserID: groupTimeline(g.id), CreatedAtMs: uint64(time.Now().UnixMilli())})
	cancel()
	switch {
	case errors.Is(err, persistence.ErrExists):
		return failed(errGroupTaken)
	case err != nil:
		return failed(errStoreUnavailable)
	}
	now := uint64(time.Now().UnixMilli())
	policy := c.GetJoinPolicy()
	if policy == clientpb.JoinPolicy_JOIN_POLICY_UNSPECIFIED {
		policy = clientpb.JoinPolicy_JOIN_POLICY_APPROVAL
	}
	g.st = &storepb.GroupState{
		Info: &clientpb.GroupInfo{GroupId: g.id, Name: c.GetName(), AvatarUrl: c.GetAvatarUrl(), Notice: c.GetNotice(),
			Owner: user, JoinPolicy: policy, CreatedAtMs: now},
		Members:  map[string]*storepb.MemberRecord{},
		Requests: map[string]*storepb.PendingRecord{},
		Banned:   map[string]bool{},
	}
	for _, u := range members {
		role := clientpb.GroupRole_GROUP_ROLE_MEMBER
		if u == user {
			role = clientpb.GroupRole_GROUP_ROLE_OWNER
		}
		g.st.Members[u] = &storepb.MemberRecord{Role: role, JoinedAtMs: now}
	}
	if r := g.save(); r != nil {
		return r
	}
	g.groupHooks(now, hooks.GroupData{Change: hooks.GroupCreated, Actor: user, Name: c.GetName(), Members: members})
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_GROUP_CREATED, Actor: user, Users: members, Group: g.info()}, members)
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Group{Group: g.info()}}}
}

func (g *groupGrain) members(user string) *actorpb.OpResult {
	if g.member(user) == nil {
		return failed(errNotMember)
	}
	out := &clientpb.GroupMembers{}
	for _, u := range g.memberIDs() {
		r := g.st.Members[u]
		out.Members = append(out.Members, &clientpb.GroupMember{User: u, Role: r.GetRole(), MutedUntilMs: r.GetMutedUntilMs(), JoinedAtMs: r.GetJoinedAtMs()})
	}
	if g.isManager(user) {
		for u, p := range g.st.GetRequests() {
			out.Requests = append(out.Requests, &clientpb.PendingRequest{User: u, Note: p.GetNote(), AtMs: p.GetAtMs()})
		}
		slices.SortFunc(out.Requests, func(a, b *clientpb.PendingRequest) int { return compareStrings(a.User, b.User) })
		for u := range g.st.GetBanned() {
			out.Banned = append(out.Banned, u)
		}
		slices.Sort(out.Banned)
	}
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Members{Members: out}}}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (g *groupGrain) update(ctx actor.Context, user string, u *clientpb.GroupRequest_Update) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	if len(u.GetName()) > 128 || len(u.GetAvatarUrl()) > 1024 || len(u.GetNotice()) > 4096 {
		return failed(errGroupFieldsTooLong)
	}
	i := g.st.Info
	if u.Name != nil {
		i.Name = u.GetName()
	}
	if u.AvatarUrl != nil {
		i.AvatarUrl = u.GetAvatarUrl()
	}
	if u.Notice != nil {
		i.Notice = u.GetNotice()
	}
	if u.GetJoinPolicy() != clientpb.JoinPolicy_JOIN_POLICY_UNSPECIFIED {
		i.JoinPolicy = u.GetJoinPolicy()
	}
	if r := g.save(); r != nil {
		return r
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_GROUP_UPDATED, Actor: user, Group: g.info()}, g.memberIDs())
	g.groupHooks(0, hooks.GroupData{Change: hooks.GroupUpdated, Actor: user, Name: i.GetName(), AvatarURL: i.GetAvatarUrl(),
		Notice: i.GetNotice(), JoinPolicy: joinPolicyName(i.GetJoinPolicy())})
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Group{Group: g.info()}}}
}

// refuse answers a non-member with ERR_NOT_MEMBER rather than the
// operation's own refusal.
func (g *groupGrain) refuse(user string, e *clientpb.Error) *actorpb.OpResult {
	if g.member(user) == nil {
		return failed(errNotMember)
	}
	return failed(e)
}

// addMembers adds users (not yet members) and announces them. Users invited
// by someone else must consent (see consent); a user who joins by their own
// request has.
func (g *groupGrain) addMembers(ctx actor.Context, by string, users []string, invited bool) *actorpb.OpResult {
	fresh := dedup(users, func(u string) bool { return g.member(u) != nil })
	if len(fresh) == 0 {
		return nil
	}
	for _, u := range fresh {
		if g.st.GetBanned()[u] {
			return opError(clientpb.ErrorCode_ERR_BANNED, "banned from this group: "+u)
		}
	}
	if len(g.st.Members)+len(fresh) > g.d.cfg.MaxGroupMembers {
		return opError(clientpb.ErrorCode_ERR_GROUP_FULL, "group: the member limit is "+strconv.Itoa(g.d.cfg.MaxGroupMembers))
	}
	if r := g.checkUsers(fresh); r != nil {
		return r
	}
	if invited {
		if r := g.consent(by, fresh); r != nil {
			return r
		}
	}
	now := uint64(time.Now().UnixMilli())
	for _, u := range fresh {
		g.st.Members[u] = &storepb.MemberRecord{Role: clientpb.GroupRole_GROUP_ROLE_MEMBER, JoinedAtMs: now}
		delete(g.st.Requests, u)
	}
	if r := g.save(); r != nil {
		return r
	}
	g.groupHooks(now, hooks.GroupData{Change: hooks.GroupMemberAdded, Actor: by, Members: fresh})
	g.event(ctx, by, &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_JOINED, Actor: by, Users: fresh, Group: g.info()}, g.memberIDs())
	return nil
}

func (g *groupGrain) invite(ctx actor.Context, user string, users []string) *actorpb.OpResult {
	if g.member(user) == nil {
		return failed(errNotMember)
	}
	// Members invite freely into an open group; into one that approves
	// joins, only the owner and admins do.
	if !g.isManager(user) && g.st.GetInfo().GetJoinPolicy() != clientpb.JoinPolicy_JOIN_POLICY_OPEN {
		return failed(errNotManager)
	}
	if len(users) == 0 {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: invite names no users")
	}
	if r := g.checkCount(users); r != nil {
		return r
	}
	return g.addMembers(ctx, user, users, true)
}

func (g *groupGrain) join(ctx actor.Context, user, note string) *actorpb.OpResult {
	if g.member(user) != nil {
		return nil
	}
	if g.st.GetBanned()[user] {
		return opError(clientpb.ErrorCode_ERR_BANNED, "banned from this group")
	}
	if g.st.GetInfo().GetJoinPolicy() == clientpb.JoinPolicy_JOIN_POLICY_OPEN {
		return g.addMembers(ctx, user, []string{user}, false)
	}
	if len(note) > 256 {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: note longer than 256 bytes")
	}
	// Each request is an event in every manager's timeline: asking again
	// while pending tells nobody anything new, and the pending requests are
	// bounded.
	if _, pending := g.st.GetRequests()[user]; pending {
		return nil
	}
	if len(g.st.GetRequests()) >= maxJoinRequests {
		return opError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED, "group: too many join requests wait for an answer")
	}
	if g.st.Requests == nil {
		g.st.Requests = map[string]*storepb.PendingRecord{}
	}
	g.st.Requests[user] = &storepb.PendingRecord{Note: note, AtMs: uint64(time.Now().UnixMilli())}
	if r := g.save(); r != nil {
		return r
	}
	var managers []string
	for _, u := range g.memberIDs() {
		if g.isManager(u) {
			managers = append(managers, u)
		}
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_JOIN_REQUESTED, Actor: user, Note: note}, managers)
	// The request's time is stored: queued again, the event keeps its id.
	g.groupHooks(g.st.Requests[user].GetAtMs(), hooks.GroupData{Change: hooks.GroupJoinRequested, Actor: user, Note: note})
	return nil
}

func (g *groupGrain) answerJoin(ctx actor.Context, user string, a *clientpb.GroupRequest_Answer) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	if _, ok := g.st.GetRequests()[a.GetUser()]; !ok {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "no pending join request from "+a.GetUser())
	}
	if a.GetAccept() {
		return g.addMembers(ctx, user, []string{a.GetUser()}, false)
	}
	delete(g.st.Requests, a.GetUser())
	if r := g.save(); r != nil {
		return r
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_JOIN_REJECTED, Actor: user, Users: []string{a.GetUser()}}, []string{a.GetUser()})
	g.groupHooks(0, hooks.GroupData{Change: hooks.GroupJoinRejected, Actor: user, Members: []string{a.GetUser()}})
	return nil
}

// removeMembers takes users out and announces it to the remaining members
// and to them.
func (g *groupGrain) removeMembers(ctx actor.Context, ev *clientpb.Event, users []string) *actorpb.OpResult {
	audience := g.memberIDs()
	for _, u := range users {
		delete(g.st.Members, u)
		delete(g.reads.GetReadMsgId(), u)
	}
	if r := g.save(); r != nil {
		return r
	}
	g.removedHook(ev.GetActor(), users)
	ev.Group = g.info()
	g.event(ctx, ev.GetActor(), ev, audience)
	return nil
}

func (g *groupGrain) leave(ctx actor.Context, user string) *actorpb.OpResult {
	if g.member(user) == nil {
		return failed(errNotMember)
	}
	if g.role(user) == clientpb.GroupRole_GROUP_ROLE_OWNER {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "the owner must transfer ownership or dissolve the group")
	}
	return g.removeMembers(ctx, &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_LEFT, Actor: user, Users: []string{user}}, []string{user})
}

// outranks reports whether by may act on target: the owner on anyone else,
// an admin on plain members only.
func (g *groupGrain) outranks(by, target string) bool {
	rb, rt := g.role(by), g.role(target)
	if by == target {
		return false
	}
	return rb == clientpb.GroupRole_GROUP_ROLE_OWNER ||
		(rb == clientpb.GroupRole_GROUP_ROLE_ADMIN && rt == clientpb.GroupRole_GROUP_ROLE_MEMBER)
}

func (g *groupGrain) kick(ctx actor.Context, user string, users []string) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	if r := g.checkCount(users); r != nil {
		return r
	}
	var out []string
	for _, u := range dedup(users, nil) {
		if g.member(u) == nil {
			continue
		}
		if !g.outranks(user, u) {
			return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "may not remove "+u)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil
	}
	return g.removeMembers(ctx, &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_KICKED, Actor: user, Users: out}, out)
}

func (g *groupGrain) setRole(ctx actor.Context, user string, s *clientpb.GroupRequest_SetRole) *actorpb.OpResult {
	if g.role(user) != clientpb.GroupRole_GROUP_ROLE_OWNER {
		return g.refuse(user, errNotOwner)
	}
	m := g.member(s.GetUser())
	if m == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_MEMBER, s.GetUser()+" is not a member")
	}
	if s.GetRole() != clientpb.GroupRole_GROUP_ROLE_ADMIN && s.GetRole() != clientpb.GroupRole_GROUP_ROLE_MEMBER {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "set_role: role must be admin or member (use transfer for owner)")
	}
	if s.GetUser() == user {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "the owner's role changes only by transfer")
	}
	m.Role = s.GetRole()
	if r := g.save(); r != nil {
		return r
	}
	g.groupHooks(0, hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: user, Members: []string{s.GetUser()}, Role: roleName(s.GetRole())})
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_ROLE_CHANGED, Actor: user, Users: []string{s.GetUser()}, Role: s.GetRole()}, g.memberIDs())
	return nil
}

func (g *groupGrain) transfer(ctx actor.Context, user, to string) *actorpb.OpResult {
	if g.role(user) != clientpb.GroupRole_GROUP_ROLE_OWNER {
		return g.refuse(user, errNotOwner)
	}
	m := g.member(to)
	if m == nil || to == user {
		return opError(clientpb.ErrorCode_ERR_NOT_MEMBER, "transfer: "+to+" is not another member")
	}
	m.Role = clientpb.GroupRole_GROUP_ROLE_OWNER
	g.st.Members[user].Role = clientpb.GroupRole_GROUP_ROLE_ADMIN
	g.st.Info.Owner = to
	if r := g.save(); r != nil {
		return r
	}
	g.transferHook(user, to)
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_OWNER_CHANGED, Actor: user, Users: []string{to}, Group: g.info()}, g.memberIDs())
	return nil
}

func (g *groupGrain) muteMember(ctx actor.Context, user string, mm *clientpb.GroupRequest_MuteMember) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	m := g.member(mm.GetUser())
	if m == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_MEMBER, mm.GetUser()+" is not a member")
	}
	if !g.outranks(user, mm.GetUser()) {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "may not mute "+mm.GetUser())
	}
	m.MutedUntilMs = 0
	if d := mm.GetDurationMs(); d > 0 {
		m.MutedUntilMs = uint64(time.Now().UnixMilli()) + d
	}
	if r := g.save(); r != nil {
		return r
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_MUTED, Actor: user, Users: []string{mm.GetUser()}, UntilMs: m.MutedUntilMs}, g.memberIDs())
	change := hooks.GroupMemberMuted
	if m.MutedUntilMs == 0 {
		change = hooks.GroupMemberUnmuted
	}
	g.groupHooks(0, hooks.GroupData{Change: change, Actor: user, Members: []string{mm.GetUser()}, UntilMs: m.MutedUntilMs})
	return nil
}

func (g *groupGrain) muteAll(ctx actor.Context, user string, on bool) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	g.st.Info.MutedAll = on
	if r := g.save(); r != nil {
		return r
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_GROUP_MUTED, Actor: user, Flag: on}, g.memberIDs())
	change := hooks.GroupMutedAll
	if !on {
		change = hooks.GroupUnmutedAll
	}
	g.groupHooks(0, hooks.GroupData{Change: change, Actor: user})
	return nil
}

func (g *groupGrain) dissolve(ctx actor.Context, user string) *actorpb.OpResult {
	if g.role(user) != clientpb.GroupRole_GROUP_ROLE_OWNER {
		return g.refuse(user, errNotOwner)
	}
	// The members stay on record, so they keep reading the group's history.
	g.st.Info.Dissolved = true
	g.st.Requests = nil
	if r := g.save(); r != nil {
		return r
	}
	g.groupHooks(0, hooks.GroupData{Change: hooks.GroupDissolved, Actor: user})
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_GROUP_DISSOLVED, Actor: user, Group: g.info()}, g.memberIDs())
	return nil
}

func (g *groupGrain) ban(ctx actor.Context, user string, b *clientpb.GroupRequest_BanUsers) *actorpb.OpResult {
	if !g.isManager(user) {
		return g.refuse(user, errNotManager)
	}
	if r := g.checkCount(b.GetUsers()); r != nil {
		return r
	}
	if g.st.Banned == nil {
		g.st.Banned = map[string]bool{}
	}
	users := dedup(b.GetUsers(), nil)
	var added []string // banned now, not before
	for _, u := range users {
		if !ids.ValidUser(u) || u == user {
			return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "ban: invalid user "+strconv.Quote(u))
		}
		if g.member(u) != nil && !g.outranks(user, u) {
			return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "may not ban "+u)
		}
		if b.GetBanned() && !g.st.Banned[u] {
			added = append(added, u)
		}
	}
	if max := g.d.cfg.MaxGroupBans; len(g.st.Banned)+len(added) > max {
		return opError(clientpb.ErrorCode_ERR_LIMIT_EXCEEDED, "ban: the ban list holds at most "+strconv.Itoa(max)+" users")
	}
	// Only users who exist are banned: the list is not a store of names.
	if r := g.checkUsers(added); r != nil {
		return r
	}
	var removed []string
	audience := g.memberIDs()
	for _, u := range users {
		if !b.GetBanned() {
			delete(g.st.Banned, u)
			continue
		}
		g.st.Banned[u] = true
		delete(g.st.Requests, u)
		if g.member(u) != nil {
			delete(g.st.Members, u)
			removed = append(removed, u)
		}
	}
	if r := g.save(); r != nil {
		return r
	}
	g.removedHook(user, removed)
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_BANNED, Actor: user, Users: users, Flag: b.GetBanned()}, audience)
	return nil
}

func (g *groupGrain) onRead(ctx actor.Context, m *actorpb.GroupRead) *actorpb.OpResult {
	if g.st == nil {
		return failed(errNoGroup)
	}
	if g.member(m.GetUser()) == nil {
		return failed(errNotMember)
	}
	// Only a message of this group is a mark: a made-up or future id would
	// count the reader for messages not yet sent.
	msg, r := g.message(m.GetMsgId())
	if r != nil {
		return r
	}
	if msg == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "read: no such message in this group")
	}
	if m.GetMsgId() > g.reads.ReadMsgId[m.GetUser()] {
		g.reads.ReadMsgId[m.GetUser()] = m.GetMsgId()
		g.readsDirty = true
		if !g.flushing {
			g.flushing = true
			self, root := ctx.Self(), ctx.ActorSystem().Root
			time.AfterFunc(readFlush, func() { root.Send(self, flushReads{}) })
		}
	}
	return nil
}

// message returns the group's message (not an event) with id msgID, nil
// when there is none: a binary search of the group's own timeline, a few
// point reads whatever its length.
func (g *groupGrain) message(msgID uint64) (*clientpb.Message, *actorpb.OpResult) {
	e, err := g.d.findEntry(context.Background(), groupTimeline(g.id), msgID)
	if err != nil {
		g.d.log.Error("group: find message", "group", g.id, "err", err)
		return nil, failed(errStoreUnavailable)
	}
	if m := e.GetMessage(); m != nil && m.GetContent().GetEvent() == nil {
		return m, nil
	}
	return nil, nil
}

func (g *groupGrain) readStatus(user string, msgIDs []uint64, list bool) *actorpb.OpResult {
	if g.member(user) == nil {
		return failed(errNotMember)
	}
	if len(msgIDs) == 0 || len(msgIDs) > 100 {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "read_status: 1 to 100 msg_ids")
	}
	members := g.memberIDs()
	out := &clientpb.ReadStatus{}
	for _, id := range msgIDs {
		mr := &clientpb.MessageReads{MsgId: id}
		out.Messages = append(out.Messages, mr)
		msg, r := g.message(id)
		if r != nil {
			return r
		}
		if msg == nil {
			continue // no such message: nobody read it
		}
		from := msg.GetFrom()
		for _, u := range members {
			if u != from && g.reads.ReadMsgId[u] >= id {
				mr.ReadCount++
				if list {
					mr.Readers = append(mr.Readers, u)
				}
			}
		}
	}
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_ReadStatus{ReadStatus: out}}}
}

func (g *groupGrain) onRecall(ctx actor.Context, m *actorpb.GroupRecall) *actorpb.OpResult {
	user, mod := m.GetUser(), m.GetModeration()
	switch {
	case g.st == nil:
		return failed(errNoGroup)
	case g.member(user) == nil && !mod:
		return failed(errNotMember)
	case g.st.GetInfo().GetDissolved():
		return failed(errDissolved)
	}
	msg, r := g.message(m.GetMsgId())
	if r != nil {
		return r
	}
	if msg == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "recall: no such message in this group")
	}
	if !mod && msg.GetFrom() != user && !(g.isManager(user) && (g.member(msg.GetFrom()) == nil || g.outranks(user, msg.GetFrom()))) {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "recall: only the sender, the owner or an admin may recall this message")
	}
	if done, r := g.d.recalled(ids.Group(g.id), msg.GetId()); r != nil || done {
		return r // recalled already: nothing more to store or tell
	}
	if r := g.d.checkRecallWindow(msg); r != nil && !mod {
		return r
	}
	if r := g.d.markRecalled(ids.Group(g.id), msg.GetId()); r != nil {
		return r
	}
	g.event(ctx, user, &clientpb.Event{Type: clientpb.EventType_EVENT_RECALLED, Actor: user, Users: []string{msg.GetFrom()}, MsgId: msg.GetId()}, g.memberIDs())
	return nil
}
