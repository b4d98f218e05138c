package actors

import (
	"context"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// The stores the actors consume, declared here as the subsets they use.
// persistence's backends implement every one of them under these method
// names; a node hands its one store (or the archive's History decorator of
// it) for each. Each comment says who consumes the contract.

// Accounts holds the registered users. Consumed by the user grain
// (registration, provisioning at first login, a recipient's existence), the
// group grain (members' existence, the group's existence record),
// Service.Account and Service.Broadcast (Users).
type Accounts interface {
	CreateAccount(ctx context.Context, a persistence.Account) error
	GetAccount(ctx context.Context, userID string) (persistence.Account, error)
	Users(ctx context.Context, after string, limit int) ([]string, error)
}

// Timelines holds every user's timeline, where each message lands once per
// recipient. Appended to by sends (send.go, group_send.go), events
// (deliver.go) and broadcasts; read by the connection's push (stream.go),
// sync and history (sync.go), and the conversation index (convs.go).
type Timelines interface {
	Append(ctx context.Context, req *persistence.AppendRequest) (*persistence.AppendResult, error)
	AppendAll(ctx context.Context, reqs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error)
	ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error)
	LastSeq(ctx context.Context, userID string) (uint64, error)
	ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error)
}

// Sessions holds the online devices and the connection actor of each.
// Written by the user grain; read by it on activation, by presence
// (presence.go), group signals (deliver.go) and broadcasts, which reach
// devices without activating their users' grains.
type Sessions interface {
	PutSession(ctx context.Context, s persistence.Session, ttl time.Duration) error
	DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error
	Sessions(ctx context.Context, userID string) ([]persistence.Session, error)
}

// Records holds the grains' state records (keys.go lists them), each
// written by its owner only (state.go).
type Records interface {
	GetState(ctx context.Context, key string) ([]byte, error)
	PutState(ctx context.Context, key string, value []byte) error
	DeleteState(ctx context.Context, key string) error
}

// Sets holds sets that several writers add to: the recalled messages of a
// conversation (convs.go), read by sync and history to flag them.
type Sets interface {
	AddToSet(ctx context.Context, set, member string) error
	SetMembers(ctx context.Context, set string) ([]string, error)
}

// MediaFiles holds the records of uploaded files (persistence.Media).
// Consumed where a media Send enters the actors (media.go): the record
// fills the message's media, and a file is marked sent before any message
// carrying it is appended.
type MediaFiles interface {
	GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error)
	MarkMediaSent(ctx context.Context, id string, atMs uint64) error
}

// Directory finds users by a prefix of their nickname
// (persistence.Directory). Written by the user grain when its nickname
// changes, read by SearchUsers (profile.go).
type Directory interface {
	IndexName(ctx context.Context, scope, user, name string) error
	RemoveName(ctx context.Context, scope, user string) error
	SearchNames(ctx context.Context, scope, prefix string, after persistence.Name, limit int) ([]persistence.Name, error)
}

// Stores are the stores a Service uses. Every field is required but Media,
// Directory and Eraser: without Media, media is disabled, and a Send of an
// image, audio, video or file is refused with ERR_UNSUPPORTED; without
// Directory, SearchUsers finds users by their exact id only; without
// Eraser, DeleteUser is refused with ERR_UNSUPPORTED.
type Stores struct {
	Accounts  Accounts
	Timelines Timelines
	Sessions  Sessions
	Records   Records
	Sets      Sets
	Media     MediaFiles
	Directory Directory
	Eraser    Eraser
	// Archive erases a user's archived rows when the user's app says so
	// (apps.Settings.ArchiveOnUserDelete "delete"); nil: no archive.
	Archive Eraser
}
