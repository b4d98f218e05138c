package persistence

import "context"

// Records keeps the small records of grains other than timelines: a user's
// friends and conversation list, a group's members, recall marks. Values
// are opaque to the store. Every write is durable when it returns.
//
// Keys and set names are chosen by the callers, never contain '/' in their
// first segment by convention ("us/<user>", "gs/<group>"), and are 1 to 512
// bytes long.
type Records interface {
	// GetState returns the value under key, or ErrNotFound.
	GetState(ctx context.Context, key string) ([]byte, error)
	// PutState stores value under key, replacing any value.
	PutState(ctx context.Context, key string, value []byte) error
	// DeleteState removes key; a missing key is not an error.
	DeleteState(ctx context.Context, key string) error
	// AddToSet adds member to the set named set; adding is atomic, so
	// concurrent writers never lose each other's members, and adding a
	// member twice keeps one.
	AddToSet(ctx context.Context, set, member string) error
	// SetMembers returns the members of set, sorted; none when it is absent.
	SetMembers(ctx context.Context, set string) ([]string, error)
}
