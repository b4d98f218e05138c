package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// HookItem is one webhook delivery waiting in a HookQueue: an event of an
// application, to be POSTed to the application's webhook target.
type HookItem struct {
	// ID names the delivery and is its deduplication key: receivers see it
	// as Actorim-Webhook-Id, and EnqueueHooks ignores an ID it holds or
	// finished lately. 1 to 512 bytes.
	ID string
	// App is the application whose target receives the item; a valid id
	// (see ValidID). Event is the event's name, e.g. "message.stored".
	App   string
	Event string
	// Payload is the request body, opaque to the store.
	Payload []byte
	// Attempts counts the claims of the item so far (ClaimHooks raises it).
	Attempts int
	// NextAtMs is when the item is next due, in Unix milliseconds; zero on
	// enqueue means CreatedAtMs.
	NextAtMs int64
	// CreatedAtMs is when the event happened; zero on enqueue means now.
	CreatedAtMs int64
	// LastError says why the last attempt failed; empty before any failure.
	LastError string
}

// HookClaim says which items ClaimHooks takes.
type HookClaim struct {
	// NowMs is the caller's clock: items with NextAtMs <= NowMs are due.
	NowMs int64
	// LeaseMs is how long a claimed item stays hidden from other claims:
	// its NextAtMs becomes NowMs+LeaseMs, so if the claimer dies it is due
	// again then. At least 1.
	LeaseMs int64
	// Limit bounds the items returned.
	Limit int
	// PerApp bounds the items of one application in this claim; 0 means
	// Limit. Skip lists applications to take nothing of (those whose share
	// of the caller's workers is used up). Together they let one
	// application's backlog never hide another's due items.
	PerApp int
	Skip   []string
}

// HookStats counts a HookQueue's items.
type HookStats struct {
	Queued int64 // items waiting or leased
	Due    int64 // of those, due at the time asked (leased ones are not)
	Dead   int64 // items in the dead-letter list
}

// HookQueue is a durable queue of webhook deliveries shared by every node of
// a store: at-least-once delivery, with leases instead of locks. A worker
// claims due items, which hides them for a lease; it then acks each one,
// schedules a retry, or dead-letters it. A worker that dies holding items
// only delays them until their lease ends.
//
// Operations on an item that is no longer queued (acked, dead-lettered, or
// never enqueued) do nothing and return nil: a worker whose lease ran out
// may finish after another worker acked the item.
type HookQueue interface {
	// EnqueueHooks queues items, each due at its NextAtMs. It is idempotent
	// by ID: an item whose ID is queued, or was acked or dead-lettered within
	// HookDedupWindowMs, is skipped. It returns how many were queued. When it
	// returns without error the items are durable.
	EnqueueHooks(ctx context.Context, items ...HookItem) (int, error)
	// ClaimHooks returns due items, earliest due first within an
	// application, and leases them (see HookClaim); each one's Attempts is
	// raised by one. Applications take turns by their earliest due item.
	ClaimHooks(ctx context.Context, c HookClaim) ([]HookItem, error)
	// AckHook removes a delivered item.
	AckHook(ctx context.Context, id string) error
	// RetryHook makes an item due again at nextAtMs and records lastErr.
	RetryHook(ctx context.Context, id string, nextAtMs int64, lastErr string) error
	// DeadLetterHook moves an item to the dead-letter list with lastErr.
	// The list keeps the newest HookDeadCap items.
	DeadLetterHook(ctx context.Context, id string, lastErr string) error
	// HookStats counts the queue's items; Due counts those due at nowMs.
	HookStats(ctx context.Context, nowMs int64) (HookStats, error)
	// DeadHooks returns up to limit dead-lettered items, newest first.
	DeadHooks(ctx context.Context, limit int) ([]HookItem, error)
}

const (
	// HookDedupWindowMs is how long an acked or dead-lettered ID keeps
	// EnqueueHooks from queueing it again: 24 hours.
	HookDedupWindowMs = 24 * 60 * 60 * 1000
	// HookDeadCap is how many dead-lettered items a HookQueue keeps; the
	// oldest go first.
	HookDeadCap = 10_000
	// maxHookIDLen bounds an item's ID.
	maxHookIDLen = 512
)

// ErrBadHook reports an item EnqueueHooks refuses: an empty or too long ID,
// or an invalid App.
var ErrBadHook = errors.New("persistence: bad hook item")

// CheckHook returns an error wrapping ErrBadHook when no store can queue it.
func CheckHook(it HookItem) error {
	switch {
	case it.ID == "" || len(it.ID) > maxHookIDLen:
		return fmt.Errorf("%w: id of %d bytes", ErrBadHook, len(it.ID))
	case !ValidID(it.App) || strings.ContainsRune(it.App, 0):
		return fmt.Errorf("%w: app %q", ErrBadHook, it.App)
	}
	return nil
}

// HookDefaults returns it as EnqueueHooks stores it: a zero CreatedAtMs
// set to nowMs, a zero NextAtMs to CreatedAtMs, and Attempts to 0.
func HookDefaults(it HookItem, nowMs int64) HookItem {
	if it.CreatedAtMs == 0 {
		it.CreatedAtMs = nowMs
	}
	if it.NextAtMs == 0 {
		it.NextAtMs = it.CreatedAtMs
	}
	it.Attempts = 0
	return it
}
