// Package persistence defines the contract every actorim store backend honours
// and the types that cross it. Backends live in sub-packages (embedded, redis);
// persistence/storetest holds the conformance suite they all pass.
//
// The store, not actor memory, decides sequence numbers, message ids and
// deduplication. During a cluster membership change two activations of one
// user grain can exist for a moment; because every decision is taken atomically
// in the store, they can never produce a gap, a reused sequence number or a
// duplicate message.
package persistence

import (
	"context"
	"errors"
	"time"

	"actorim/protos/clientpb"
)

// Errors returned by every backend. Callers test them with errors.Is.
var (
	// ErrNotFound reports a missing account.
	ErrNotFound = errors.New("persistence: not found")
	// ErrExists reports an account id that is already taken.
	ErrExists = errors.New("persistence: already exists")
	// ErrUnknownUser reports an Append to a timeline whose user has no account.
	ErrUnknownUser = errors.New("persistence: unknown user")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("persistence: store closed")
)

// Account is a registered user.
type Account struct {
	UserID string
	// PasswordHash is a PHC-format hash, empty for users provisioned by an
	// application server (they log in with minted tokens only).
	PasswordHash string
	CreatedAtMs  uint64
}

// AppendRequest asks the store to add one message to several timelines at once.
type AppendRequest struct {
	// Sender owns the deduplication scope; ClientMsgID is the key in it.
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
	Entries []*clientpb.Entry
	// Duplicate is true when (Sender, ClientMsgID) was appended before; nothing
	// new was written.
	Duplicate bool
}

// Session records a device's live connection: which node holds the socket
// and the PID of its connection actor. Sessions expire unless refreshed, so
// those of a node that died vanish by themselves.
type Session struct {
	UserID    string
	DeviceID  string
	SessionID string
	Platform  clientpb.Platform
	// Node is the cluster address of the node holding the socket; ConnID is
	// the connection actor's id on it.
	Node   string
	ConnID string
	// ExpiresAtMs is set by the store from the ttl given to PutSession.
	ExpiresAtMs uint64
}

// Store is the hot store behind user grains and connections.
//
// Append is atomic and durable: when it returns without error, the message,
// its sequence numbers in every timeline and its deduplication record are all
// stored, or (on error) none of them is. Sequence numbers start at 1 and are
// gapless and increasing per timeline. An entry with seq N being readable
// implies every entry below N of the same timeline is readable.
type Store interface {
	// CreateAccount stores a new account; ErrExists if the id is taken.
	CreateAccount(ctx context.Context, a Account) error
	// GetAccount returns the account or ErrNotFound.
	GetAccount(ctx context.Context, userID string) (Account, error)

	// Append adds a message to timelines; see Store. ErrUnknownUser when a
	// timeline's user has no account (nothing is written).
	Append(ctx context.Context, req *AppendRequest) (*AppendResult, error)
	// AppendAll appends several messages in order, as if by consecutive
	// Appends, sharing the store's durable writes (one fsync for many). Each
	// request has its own result or error, as Append would give it.
	AppendAll(ctx context.Context, reqs []*AppendRequest) ([]*AppendResult, []error)

	// ReadTimeline returns up to limit entries of user's timeline with seq
	// greater than afterSeq, oldest first.
	ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error)
	// LastSeq returns the newest seq of user's timeline, 0 when it is empty.
	LastSeq(ctx context.Context, userID string) (uint64, error)
	// ReadConversation returns up to limit entries of user's timeline that
	// belong to conversationID, with seq below beforeSeq (0: no bound), newest first.
	ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error)

	// PutSession stores s (replacing the session of the same user and
	// device) until ttl from now.
	PutSession(ctx context.Context, s Session, ttl time.Duration) error
	// DeleteSession removes the session of (userID, deviceID) if its
	// SessionID is sessionID: a newer session of the same device stays.
	DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error
	// Sessions returns userID's unexpired sessions, ordered by device id.
	Sessions(ctx context.Context, userID string) ([]Session, error)

	StateStore

	// Close flushes and releases the store.
	Close() error
}
