package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"actorim/persistence"
)

// State keys, beside those in keys.go:
//
//	x/<key>              -> an opaque state value
//	y/<set>\x00<member>  -> empty (set membership)
//
// State writes are rare (friend and group operations) and go straight to
// Pebble with a synced write instead of through the append committer.

const maxStateKey = 512

func stateKey(key string) []byte { return append([]byte("x/"), key...) }

func setPrefix(set string) []byte {
	k := append([]byte("y/"), set...)
	return append(k, 0)
}

func checkStateKey(key string) error {
	if key == "" || len(key) > maxStateKey || bytes.IndexByte([]byte(key), 0) >= 0 {
		return fmt.Errorf("embedded: invalid state key %q", key)
	}
	return nil
}

// GetState implements persistence.Records.
func (s *Store) GetState(ctx context.Context, key string) ([]byte, error) {
	if err := checkStateKey(key); err != nil {
		return nil, err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: get state %q: %w", key, err)
	}
	defer s.gate.Leave()
	v, closer, err := s.db.Get(stateKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("embedded: get state %q: %w", key, persistence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: get state %q: %w", key, err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("embedded: get state %q: %w", key, err)
	}
	return out, nil
}

// PutState implements persistence.Records.
func (s *Store) PutState(ctx context.Context, key string, value []byte) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	return s.write(ctx, "put state", key, func() error { return s.db.Set(stateKey(key), value, pebble.Sync) })
}

// DeleteState implements persistence.Records.
func (s *Store) DeleteState(ctx context.Context, key string) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	return s.write(ctx, "delete state", key, func() error { return s.db.Delete(stateKey(key), pebble.Sync) })
}

// AddToSet implements persistence.Records. Each member is its own key, so
// concurrent adds never overwrite one another.
func (s *Store) AddToSet(ctx context.Context, set, member string) error {
	if err := checkStateKey(set); err != nil {
		return err
	}
	if bytes.IndexByte([]byte(member), 0) >= 0 {
		return fmt.Errorf("embedded: invalid set member %q", member)
	}
	k := append(setPrefix(set), member...)
	return s.write(ctx, "add to set", set, func() error { return s.db.Set(k, nil, pebble.Sync) })
}

// write runs one synced write of a record inside the gate.
func (s *Store) write(ctx context.Context, what, key string, f func() error) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: %s %q: %w", what, key, err)
	}
	defer s.gate.Leave()
	if err := f(); err != nil {
		return fmt.Errorf("embedded: %s %q: %w", what, key, err)
	}
	return nil
}

// SetMembers implements persistence.Records.
func (s *Store) SetMembers(ctx context.Context, set string) ([]string, error) {
	if err := checkStateKey(set); err != nil {
		return nil, err
	}
	prefix := setPrefix(set)
	end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
	out, err := s.keysIn(ctx, prefix, end, -1, func(k []byte) (string, bool) { return string(k[len(prefix):]), true })
	if err != nil {
		return nil, fmt.Errorf("embedded: set members %q: %w", set, err)
	}
	return out, nil
}

// Users implements persistence.Accounts.
func (s *Store) Users(ctx context.Context, after string, limit int) ([]string, error) {
	lower := accountKey(nil, after)
	if after != "" {
		lower = append(lower, 0)
	}
	out, err := s.keysIn(ctx, lower, []byte("a0"), max(limit, 0), func(k []byte) (string, bool) {
		id := string(k[2:])
		return id, id != "" && id[0] != '#'
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: users: %w", err)
	}
	return out, nil
}

// InternalAccounts implements persistence.Accounts: the account keys of
// '#' ids sort together, from "a/#" to before "a/$".
func (s *Store) InternalAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	lower := accountKey(nil, "#")
	if after > "#" {
		lower = append(accountKey(nil, after), 0)
	}
	out, err := s.keysIn(ctx, lower, accountKey(nil, "$"), max(limit, 0), func(k []byte) (string, bool) {
		return string(k[2:]), true
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: internal accounts: %w", err)
	}
	return out, nil
}

// keysIn lists what name makes of the keys in [lower, upper), skipping
// those it refuses, at most limit of them (no bound when negative).
func (s *Store) keysIn(ctx context.Context, lower, upper []byte, limit int, name func(key []byte) (string, bool)) ([]string, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.Leave()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var out []string
	for it.First(); it.Valid() && (limit < 0 || len(out) < limit); it.Next() {
		if v, ok := name(it.Key()); ok {
			out = append(out, v)
		}
	}
	return out, errors.Join(it.Error(), it.Close())
}
