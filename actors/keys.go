package actors

import "actorim/ids"

// Every key and internal id the actors use in the store, in one place. The
// store treats the records as opaque bytes (persistence.StateStore); each is
// written by one owner only, named below, and read back on activation: grain
// memory is a cache of these records, never the truth.
//
//	us/<user>   social state: friends, requests, blacklist, categories (user grain; social.go)
//	up/<user>   policy record: the blacklist and friends_only part of us/, read by other
//	            users' grains on private sends, absent when unrestricted (user grain; send.go)
//	uc/<user>   conversation index of the user's timeline (user grain; convs.go)
//	ut/<user>   token revocation time and disabled flag (user grain; tokens.go, access.go)
//	ux/<user>   marker of an erasure under way, deleted last (user grain; erase.go)
//	pf/<user>   profile: nickname, avatar URL, extra (user grain; profile.go); read by anyone's
//	            connection for GetProfiles and SearchUsers
//	pt/<user>   push registrations by device (user grain; push.go)
//	gs/<group>  group record: info, members, roles, mutes, requests, bans (group grain; group.go)
//	gr/<group>  group read marks, written at most every readFlush (group grain; group.go)
//	rc/<conv>   set of recalled message ids of a conversation (whoever recalls; convs.go)
//	bc/<id>     progress of a broadcast with an id (Service.Broadcast; broadcast.go)
//
// Internal accounts and timelines start with '#', which no user id may hold:
//
//	#g:<group>  the group's own timeline (its message sequence) and existence record
//	#broadcast  the dedup scope of broadcasts

// socialKey names user's social state.
//
// Friendship is symmetric: both grains record it, each in its own state,
// through PeerOps. So "is the sender a friend of the recipient" is answered
// from the sender's own state, and the policy record never carries the
// friend list, which may be long.
func socialKey(user string) string { return "us/" + user }

// policyKey names user's policy record: the part of the social state other
// users' grains need to decide whether they may message user (user's
// blacklist and friends_only flag, as a SocialState with only those
// fields). User's grain writes it whenever either changes and deletes it when
// the user has no restrictions, so the common case costs a sender a single
// point read that misses.
func policyKey(user string) string { return "up/" + user }

// convKey names user's conversation index.
func convKey(user string) string { return "uc/" + user }

// tokenKey names user's access record: token revocation, disabled flag.
func tokenKey(user string) string { return "ut/" + user }

// eraseKey names the marker of user's erasure under way.
func eraseKey(user string) string { return "ux/" + user }

// profileKey names user's profile record (a clientpb.Profile).
func profileKey(user string) string { return "pf/" + user }

// groupKey names a group's record.
func groupKey(group string) string { return "gs/" + group }

// groupReadsKey names a group's read marks.
func groupReadsKey(group string) string { return "gr/" + group }

// recallSet names the set of recalled message ids of a conversation.
func recallSet(conv string) string { return "rc/" + conv }

// broadcastKey names the progress record of the broadcast with id.
func broadcastKey(id string) string { return "bc/" + id }

// groupTimeline is the timeline of a group's own sequence: an internal
// account whose id no user can take ('#' and ':' are not allowed in ids).
func groupTimeline(groupID string) string { return "#" + ids.Group(groupID) }

// broadcastSender is the dedup scope of broadcasts: an internal id no user
// can take.
const broadcastSender = "#broadcast"
