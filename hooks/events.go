package hooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Event names, as in the Actorim-Event header and the payload's "event".
const (
	// EventBeforeSend is the synchronous call before a message is stored
	// (see Caller.BeforeSend).
	EventBeforeSend = "message.before_send"
	// EventMessageStored: a message was stored.
	EventMessageStored = "message.stored"
	// EventUserOnline and EventUserOffline: a device logged in or its last
	// connection ended.
	EventUserOnline  = "user.online"
	EventUserOffline = "user.offline"
	// EventGroupChanged: a group was created, dissolved, or its members or
	// roles changed.
	EventGroupChanged = "group.changed"
	// EventFriendChanged: a friend request, acceptance, rejection, removal,
	// block or unblock.
	EventFriendChanged = "friend.changed"
	// EventPushOffline asks the app server to push a message to devices
	// that are offline.
	EventPushOffline = "push.offline"
	// EventTest is what Caller.Test sends.
	EventTest = "webhook.test"
)

// Version is the payloads' "v": it changes only when a field changes
// meaning or goes away; new fields keep it.
const Version = 1

// Envelope is every payload's outer object; Data depends on the event.
type Envelope struct {
	V     int    `json:"v"`
	ID    string `json:"id"` // as the Actorim-Webhook-Id header
	Event string `json:"event"`
	App   string `json:"app"`
	AtMs  int64  `json:"at_ms"` // when the event happened, Unix ms
	Data  any    `json:"data"`
}

// item builds the queue item of an event.
func item(id, app, event string, atMs int64, data any) persistence.HookItem {
	body, err := json.Marshal(Envelope{V: Version, ID: id, Event: event, App: app, AtMs: atMs, Data: data})
	if err != nil { // only a malformed json.RawMessage can get here
		body, _ = json.Marshal(Envelope{V: Version, ID: id, Event: event, App: app, AtMs: atMs,
			Data: map[string]string{"error": err.Error()}})
	}
	return persistence.HookItem{ID: id, App: app, Event: event, Payload: body, CreatedAtMs: atMs}
}

// digestID names an event that has no id of its own by its content and
// time: built twice for one event (an actor retrying after a crash), it
// gets one id, which receivers deduplicate on.
func digestID(kind, app string, atMs int64, data any) string {
	b, _ := json.Marshal(data)
	h := sha256.New()
	h.Write(strconv.AppendInt(nil, atMs, 10))
	h.Write(b)
	if app != "" {
		kind += "-" + app
	}
	return kind + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// MessageData is the data of message.stored and message.before_send.
type MessageData struct {
	// ID is the message id ("0" before it is stored), a decimal string so
	// that JavaScript receivers keep every digit.
	ID               string          `json:"id"`
	ConversationID   string          `json:"conversation_id"`
	ConversationType string          `json:"conversation_type"` // "private" or "group"
	From             string          `json:"from"`
	FromDevice       string          `json:"from_device,omitempty"`
	To               string          `json:"to"`
	ClientMsgID      string          `json:"client_msg_id,omitempty"`
	SentAtMs         int64           `json:"sent_at_ms,omitempty"`
	Mentions         []string        `json:"mentions,omitempty"`
	Silent           bool            `json:"silent,omitempty"`
	Content          json.RawMessage `json:"content"` // clientpb.Content in proto3 JSON
}

// MessageOf converts a message to its payload form.
func MessageOf(m *clientpb.Message) MessageData {
	content, err := protojson.Marshal(m.GetContent())
	if err != nil || len(content) == 0 {
		content = []byte("{}")
	}
	ct := "private"
	if m.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		ct = "group"
	}
	return MessageData{
		ID: strconv.FormatUint(m.GetId(), 10), ConversationID: m.GetConversationId(), ConversationType: ct,
		From: m.GetFrom(), FromDevice: m.GetFromDevice(), To: m.GetTo(), ClientMsgID: m.GetClientMsgId(),
		SentAtMs: int64(m.GetSentAtMs()), Mentions: m.GetMentions(), Silent: m.GetSilent(), Content: content,
	}
}

// MessageStoredID is the delivery id of message.stored for a message.
func MessageStoredID(app string, msgID uint64) string {
	return "msg-" + app + "-" + strconv.FormatUint(msgID, 10)
}

// MessageStored is the message.stored event of a stored message (with its
// id and time set); its id is MessageStoredID.
func MessageStored(app string, m *clientpb.Message) persistence.HookItem {
	return item(MessageStoredID(app, m.GetId()), app, EventMessageStored, int64(m.GetSentAtMs()), MessageOf(m))
}

// BeforeSendPayload is the body of a before-send call for m (not stored
// yet: no id, no time), with id naming the call.
func BeforeSendPayload(app, id string, atMs int64, m *clientpb.Message) []byte {
	return item(id, app, EventBeforeSend, atMs, MessageOf(m)).Payload
}

// PresenceData is the data of user.online and user.offline.
type PresenceData struct {
	User     string `json:"user"`
	Device   string `json:"device,omitempty"`
	Platform string `json:"platform,omitempty"`
}

// UserOnline is user.online: a device of user connected at atMs.
func UserOnline(app string, d PresenceData, atMs int64) persistence.HookItem {
	return item(digestID("on", app, atMs, d), app, EventUserOnline, atMs, d)
}

// UserOffline is user.offline: user's last connection ended at atMs.
func UserOffline(app string, d PresenceData, atMs int64) persistence.HookItem {
	return item(digestID("off", app, atMs, d), app, EventUserOffline, atMs, d)
}

// Group changes, GroupData.Change.
const (
	GroupCreated       = "created"
	GroupMemberAdded   = "member_added"
	GroupMemberRemoved = "member_removed"
	GroupRoleChanged   = "role_changed"
	GroupDissolved     = "dissolved"
	// GroupUpdated: the group's name, avatar, notice or join policy
	// changed (the data carries them all, as they are now).
	GroupUpdated = "updated"
	// GroupMemberMuted and GroupMemberUnmuted: Members may (not) send until
	// UntilMs.
	GroupMemberMuted   = "member_muted"
	GroupMemberUnmuted = "member_unmuted"
	// GroupMutedAll and GroupUnmutedAll: only managers may send, or all
	// members again.
	GroupMutedAll   = "muted_all"
	GroupUnmutedAll = "unmuted_all"
	// GroupJoinRequested: Actor asked to join (Note); GroupJoinRejected:
	// Actor rejected the request of Members[0].
	GroupJoinRequested = "join_requested"
	GroupJoinRejected  = "join_rejected"
)

// GroupData is the data of group.changed.
type GroupData struct {
	Group  string `json:"group"`
	Change string `json:"change"` // one of the Group* constants
	// Actor is who made the change ("" for the app server).
	Actor string `json:"actor,omitempty"`
	// Members are the users added or removed, whose role changed, or (for
	// created) the group's first members, its owner first.
	Members []string `json:"members,omitempty"`
	// Role is the new role of Members for role_changed: "owner", "admin"
	// or "member".
	Role string `json:"role,omitempty"`
	// Name is the group's name, for created and updated; AvatarURL,
	// Notice and JoinPolicy ("open" or "approval") its other
	// info, for updated.
	Name       string `json:"name,omitempty"`
	AvatarURL  string `json:"avatar_url,omitempty"`
	Notice     string `json:"notice,omitempty"`
	JoinPolicy string `json:"join_policy,omitempty"`
	// UntilMs is when a member_muted mute ends (Unix ms).
	UntilMs uint64 `json:"until_ms,omitempty"`
	// Note is a join request's note, for join_requested.
	Note string `json:"note,omitempty"`
}

// GroupChanged is group.changed.
func GroupChanged(app string, d GroupData, atMs int64) persistence.HookItem {
	return item(digestID("grp", app, atMs, d), app, EventGroupChanged, atMs, d)
}

// Friend changes, FriendData.Change.
const (
	FriendRequest   = "request"
	FriendAccepted  = "accepted"
	FriendRejected  = "rejected"
	FriendRemoved   = "removed"
	FriendBlocked   = "blocked"
	FriendUnblocked = "unblocked"
)

// FriendData is the data of friend.changed: User did Change to Peer (sent
// a request to, accepted or rejected the request of, removed, blocked,
// unblocked).
type FriendData struct {
	User    string `json:"user"`
	Peer    string `json:"peer"`
	Change  string `json:"change"` // one of the Friend* constants
	Message string `json:"message,omitempty"`
}

// FriendChanged is friend.changed.
func FriendChanged(app string, d FriendData, atMs int64) persistence.HookItem {
	return item(digestID("fr", app, atMs, d), app, EventFriendChanged, atMs, d)
}
