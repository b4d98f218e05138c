package actors

import (
	"strings"
	"time"

	"actorim/hooks"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// The after-the-fact webhook events of presence, groups and friends
// (docs/webhooks.md). Each is queued by the grain that made the change,
// after the change is written and before the grain answers (presence
// right after: a login does not wait for the queue), in one
// enqueueHooks per change, and only when the app's webhook wants it
// (wantsHook first: an app without a webhook pays a branch).
//
// An event's id digests its content and time. Where the written state
// keeps the change's time (a group's creation, a friend request, a
// friendship, a rejection) the event takes it, so that the same change
// queued again keeps its id and the queue drops the copy. A crash between
// the write and the queueing loses the event, as it loses the change's
// notice in the timelines; a client's retry that finds the change made
// sends it again only where the operation repeats itself (a pending friend
// request, same id; a role change or a block, with a new time and id).

// presenceHook is what the app's webhook was last told of the user's
// presence.
type presenceHook struct {
	online bool
	// gone is the device that went away last, and its platform: the one
	// user.offline names.
	gone     string
	platform clientpb.Platform
}

// presenceHooks queues user.online when the user's first device came
// online (device: the one that attached) or user.offline when its last went
// away. Called after the device set changed, like pushPresence: a device
// that displaces another in one step (a device policy) changes nothing.
// These are signals at best: an activation adopting devices after a crash
// does not repeat user.online, and devices of a node that dies go offline
// when the grain learns of it.
func (g *userGrain) presenceHooks(device string) {
	online := len(g.devices) > 0
	if online == g.hook.online {
		return
	}
	g.hook.online = online
	event, build, platform := hooks.EventUserOffline, hooks.UserOffline, g.hook.platform
	if online {
		event, build, platform = hooks.EventUserOnline, hooks.UserOnline, clientpb.Platform_PLATFORM_UNSPECIFIED
		if d := g.devices[device]; d != nil {
			platform = d.platform
		}
	} else {
		device = g.hook.gone
	}
	if !g.d.wantsHook(event) {
		return
	}
	p := hooks.PresenceData{User: g.id, Device: device, Platform: platformName(platform)}
	g.d.enqueueHooks(build(g.d.app, p, time.Now().UnixMilli()))
}

// platformName is a platform as the payloads name it: "web", "ios",
// "android", "desktop"; "" when not known.
func platformName(p clientpb.Platform) string {
	if p == clientpb.Platform_PLATFORM_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(p.String(), "PLATFORM_"))
}

// friendChanges names the friend events of the timelines as friend.changed
// does.
var friendChanges = map[clientpb.EventType]string{
	clientpb.EventType_EVENT_FRIEND_REQUEST:  hooks.FriendRequest,
	clientpb.EventType_EVENT_FRIEND_ADDED:    hooks.FriendAccepted,
	clientpb.EventType_EVENT_FRIEND_REJECTED: hooks.FriendRejected,
	clientpb.EventType_EVENT_FRIEND_DELETED:  hooks.FriendRemoved,
}

// blockChange is the friend.changed change of a block or unblock.
func blockChange(blocked bool) string {
	if blocked {
		return hooks.FriendBlocked
	}
	return hooks.FriendUnblocked
}

// friendHook queues friend.changed: this user did change to peer, after
// the state recording it is saved (g.soc.st). The time and a request's
// message come from that state when it holds them.
func (g *userGrain) friendHook(change, peer string) {
	if !g.d.wantsHook(hooks.EventFriendChanged) {
		return
	}
	st, at, msg := g.soc.st, nowMs(), ""
	switch change {
	case hooks.FriendRequest:
		if p := st.GetOutgoing()[peer]; p != nil {
			at, msg = p.GetAtMs(), p.GetNote()
		}
	case hooks.FriendAccepted:
		if f := st.GetFriends()[peer]; f != nil {
			at = f.GetSinceMs()
		}
	case hooks.FriendRejected:
		if t, ok := st.GetRejectedAtMs()[peer]; ok {
			at = t
		}
	}
	d := hooks.FriendData{User: g.id, Peer: peer, Change: change, Message: msg}
	g.d.enqueueHooks(hooks.FriendChanged(g.d.app, d, int64(at)))
}

// groupHooks queues the group.changed events of one change of the group,
// made at atMs (Unix ms; 0: now).
func (g *groupGrain) groupHooks(atMs uint64, changes ...hooks.GroupData) {
	if !g.d.wantsHook(hooks.EventGroupChanged) {
		return
	}
	if atMs == 0 {
		atMs = nowMs()
	}
	items := make([]persistence.HookItem, len(changes))
	for i, c := range changes {
		c.Group = g.id
		items[i] = hooks.GroupChanged(g.d.app, c, int64(atMs))
	}
	g.d.enqueueHooks(items...)
}

// roleName is a group role as group.changed names it.
func roleName(r clientpb.GroupRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "GROUP_ROLE_"))
}

// joinPolicyName is a join policy as group.changed names it: "approval"
// (also when unset) or "open".
func joinPolicyName(p clientpb.JoinPolicy) string {
	if p == clientpb.JoinPolicy_JOIN_POLICY_OPEN {
		return "open"
	}
	return "approval"
}

// removedHook queues member_removed for users whom by removed (left,
// kicked or banned).
func (g *groupGrain) removedHook(by string, users []string) {
	if len(users) > 0 {
		g.groupHooks(0, hooks.GroupData{Change: hooks.GroupMemberRemoved, Actor: by, Members: users})
	}
}

// transferHook queues the two role changes of a transfer of the group from
// owner to the new owner to.
func (g *groupGrain) transferHook(owner, to string) {
	g.groupHooks(0,
		hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: owner, Members: []string{to}, Role: roleName(clientpb.GroupRole_GROUP_ROLE_OWNER)},
		hooks.GroupData{Change: hooks.GroupRoleChanged, Actor: owner, Members: []string{owner}, Role: roleName(g.role(owner))})
}
