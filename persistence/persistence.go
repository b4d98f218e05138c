// Package persistence defines the contracts of actorim's stores and the
// types that cross them. Backends live in sub-packages (embedded, redis; and
// clickhouse, the archive, whose History extends a hot store's reads);
// persistence/storetest holds one conformance suite per contract, which
// every implementation of that contract passes.
//
// The contracts are small on purpose: Accounts, Timelines (with its read
// side, TimelineReader), Sessions, Records, Outbox, Trimmer, Media (the
// records of uploaded files), Directory (users found by a prefix of their
// name), Eraser (everything of one user, deleted) and Objects (their
// bytes, in a store of its own). A consumer declares the subset it uses
// where it uses it; Store, their composition, is for whoever opens a store
// and hands it on (the node).
//
// The store, not actor memory, decides sequence numbers, message ids and
// deduplication. During a cluster membership change two activations of one
// user grain can exist for a moment; because every decision is taken atomically
// in the store, they can never produce a gap, a reused sequence number or a
// duplicate message.
//
// Every method takes a context first. A method of Accounts, Timelines,
// Sessions or Records called with a done context returns an error wrapping
// the context's error; one called after Close returns an error wrapping
// ErrClosed.
package persistence

import (
	"context"
	"errors"
	"time"

	"actorim/protos/clientpb"
)

// Errors returned by every backend. Callers test them with errors.Is.
var (
	// ErrNotFound reports a missing account or state record.
	ErrNotFound = errors.New("persistence: not found")
	// ErrExists reports an account id that is already taken.
	ErrExists = errors.New("persistence: already exists")
	// ErrUnknownUser reports an Append to a timeline whose user has no account.
	ErrUnknownUser = errors.New("persistence: unknown user")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("persistence: store closed")
)

// Store is the hot store behind user grains and connections: every contract
// a node's grains use, and Close. A node opens one and hands it on;
// everything else takes the contracts it uses.
type Store interface {
	Accounts
	Timelines
	Sessions
	Records
	Media
	Directory
	Eraser

	// Close flushes and releases the store. Calls in progress finish or
	// fail with ErrClosed; later calls fail with ErrClosed; a second Close
	// returns nil.
	Close() error
}

// Account is a registered user.
type Account struct {
	// UserID is the account's id, a valid id (see ValidID).
	UserID string
	// PasswordHash is a PHC-format hash, empty for users provisioned by an
	// application server (they log in with minted tokens only).
	PasswordHash string
	// CreatedAtMs is when the account was registered, in Unix milliseconds.
	CreatedAtMs uint64
}

// Accounts keeps registered users. An account is deleted only by
// Eraser.EraseUser, which frees its id. Ids are valid ids (see ValidID).
type Accounts interface {
	// CreateAccount stores a new account; ErrExists if the id is taken.
	// Concurrent creations of one id: exactly one succeeds.
	CreateAccount(ctx context.Context, a Account) error
	// GetAccount returns the account or ErrNotFound.
	GetAccount(ctx context.Context, userID string) (Account, error)
	// Users lists registered user ids greater than after, in byte order, at
	// most limit of them. Internal accounts (ids starting with '#') are left out.
	Users(ctx context.Context, after string, limit int) ([]string, error)
	// InternalAccounts lists the internal accounts (ids starting with '#',
	// e.g. a group's own timeline "#g:<group>") greater than after, in byte
	// order, at most limit of them.
	InternalAccounts(ctx context.Context, after string, limit int) ([]string, error)
}

// AppendRequest asks the store to add one message to several timelines at once.
type AppendRequest struct {
	// Sender owns the deduplication scope; ClientMsgID is the key in it.
	// An empty ClientMsgID disables deduplication.
	Sender      string
	ClientMsgID string
	// Message is stored with its Id and SentAtMs assigned by the store; the
	// caller leaves them zero.
	Message *clientpb.Message
	// Timelines lists the users whose timelines receive the message, in order.
	// Every one must have an account. The sender's own timeline, when it is to
	// receive the message, is listed like any other.
	Timelines []string
}

// AppendResult reports where a message landed.
type AppendResult struct {
	// Entries holds one entry per requested timeline, in request order. For a
	// duplicate it holds the single original entry of the first timeline.
	// The entries share one Message; treat them as read-only.
	Entries []*clientpb.Entry
	// Duplicate is true when (Sender, ClientMsgID) was appended before; nothing
	// new was written.
	Duplicate bool
}

// TimelineReader is the read side of Timelines: what a device syncs from and
// a conversation's history is paged from. clickhouse.History implements it
// over a hot store and the archive together, with the same guarantees.
//
// Reads see only durable entries, and an entry with seq N being readable
// implies every entry below N of the same timeline is readable. The one
// exception is a hot store whose timeline was trimmed (see Trimmer): the
// entries below its trim floor are gone from it, and History reads them
// from the archive.
type TimelineReader interface {
	// ReadTimeline returns up to limit entries of user's timeline with seq
	// greater than afterSeq, oldest first, without a gap.
	ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error)
	// LastSeq returns the newest seq of user's timeline, 0 when it is empty.
	LastSeq(ctx context.Context, userID string) (uint64, error)
	// ReadConversation returns up to limit entries of user's timeline that
	// belong to conversationID, with seq below beforeSeq (0: no bound), newest first.
	ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error)
}

// Timelines keeps every user's timeline: the ordered, gapless sequence of
// messages and events that all of the user's devices sync.
//
// Append is atomic and durable: when it returns without error, the message,
// its sequence numbers in every timeline and its deduplication record are all
// stored, or (on error) none of them is. Sequence numbers start at 1 and are
// gapless and increasing per timeline; message ids are unique and increase
// with every append. A rejected append (see CheckAppend, ErrUnknownUser)
// consumes no seq, no message id and no deduplication key.
type Timelines interface {
	TimelineReader

	// Append adds a message to timelines; see Timelines. ErrUnknownUser when
	// a timeline's user has no account (nothing is written). A retry of
	// (Sender, ClientMsgID) returns the original entry as a duplicate.
	//
	// If ctx ends while the append is in flight, Append returns an error but
	// the message may still be stored: the caller retries with the same
	// ClientMsgID and is told the truth.
	Append(ctx context.Context, req *AppendRequest) (*AppendResult, error)
	// AppendAll appends several messages in order, as if by consecutive
	// Appends, sharing the store's durable writes (one fsync for many). Each
	// request has its own result or error, as Append would give it.
	AppendAll(ctx context.Context, reqs []*AppendRequest) ([]*AppendResult, []error)
}

// Eraser deletes everything a store keeps under one user id: the right to
// erasure's path (the actors erase the user's records, groups and friends
// first, then call it).
type Eraser interface {
	// EraseUser deletes userID's account, its timeline with the seq
	// counter and the conversation index into it, the deduplication keys
	// of the messages userID sent, and its sessions. Nothing of any other
	// id is touched, whichever ids share a prefix with userID.
	//
	// Afterwards the id is free: GetAccount answers ErrNotFound, the
	// timeline is empty, and a CreateAccount of the id makes a fresh user
	// whose timeline starts at seq 1. Messages userID sent stay in the
	// other timelines they were appended to. Erasing an unknown id is not
	// an error, so a call cut short is finished by calling again.
	EraseUser(ctx context.Context, userID string) error
}

// Session records a device's live connection: which node holds the socket
// and the PID of its connection actor. Sessions expire unless refreshed, so
// those of a node that died vanish by themselves.
type Session struct {
	// UserID and DeviceID name the device; SessionID tells one connection
	// of it from the next (see DeleteSession).
	UserID    string
	DeviceID  string
	SessionID string
	// Platform is what the device logged in as.
	Platform clientpb.Platform
	// Node is the cluster address of the node holding the socket; ConnID is
	// the connection actor's id on it.
	Node   string
	ConnID string
	// ExpiresAtMs is set by the store from the ttl given to PutSession.
	ExpiresAtMs uint64
}

// Sessions keeps the live sessions of users' devices, at most one per
// (user, device). A session is gone once its ttl has passed.
type Sessions interface {
	// PutSession stores s (replacing the session of the same user and
	// device) until ttl from now.
	PutSession(ctx context.Context, s Session, ttl time.Duration) error
	// DeleteSession removes the session of (userID, deviceID) if its
	// SessionID is sessionID: a newer session of the same device stays.
	DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error
	// Sessions returns userID's unexpired sessions, ordered by device id.
	Sessions(ctx context.Context, userID string) ([]Session, error)
}
