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

// read runs f under the read lock unless the store is closed.
func (s *Store) read(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return persistence.ErrClosed
	}
	return f()
}

// GetState implements persistence.StateStore.
func (s *Store) GetState(ctx context.Context, key string) ([]byte, error) {
	if err := checkStateKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.read(ctx, func() error {
		v, closer, err := s.db.Get(stateKey(key))
		if errors.Is(err, pebble.ErrNotFound) {
			return persistence.ErrNotFound
		}
		if err != nil {
			return err
		}
		out = append([]byte(nil), v...)
		return closer.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: get state %q: %w", key, err)
	}
	return out, nil
}

// PutState implements persistence.StateStore.
func (s *Store) PutState(ctx context.Context, key string, value []byte) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	err := s.read(ctx, func() error { return s.db.Set(stateKey(key), value, pebble.Sync) })
	if err != nil {
		return fmt.Errorf("embedded: put state %q: %w", key, err)
	}
	return nil
}

// DeleteState implements persistence.StateStore.
func (s *Store) DeleteState(ctx context.Context, key string) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	err := s.read(ctx, func() error { return s.db.Delete(stateKey(key), pebble.Sync) })
	if err != nil {
		return fmt.Errorf("embedded: delete state %q: %w", key, err)
	}
	return nil
}

// AddToSet implements persistence.StateStore. Each member is its own key, so
// concurrent adds never overwrite one another.
func (s *Store) AddToSet(ctx context.Context, set, member string) error {
	if err := checkStateKey(set); err != nil {
		return err
	}
	if bytes.IndexByte([]byte(member), 0) >= 0 {
		return fmt.Errorf("embedded: invalid set member %q", member)
	}
	k := append(setPrefix(set), member...)
	err := s.read(ctx, func() error { return s.db.Set(k, nil, pebble.Sync) })
	if err != nil {
		return fmt.Errorf("embedded: add to set %q: %w", set, err)
	}
	return nil
}

// SetMembers implements persistence.StateStore.
func (s *Store) SetMembers(ctx context.Context, set string) ([]string, error) {
	if err := checkStateKey(set); err != nil {
		return nil, err
	}
	prefix := setPrefix(set)
	end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
	var out []string
	err := s.read(ctx, func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: end})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			out = append(out, string(it.Key()[len(prefix):]))
		}
		return errors.Join(it.Error(), it.Close())
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: set members %q: %w", set, err)
	}
	return out, nil
}

// Users implements persistence.StateStore.
func (s *Store) Users(ctx context.Context, after string, limit int) ([]string, error) {
	lower := accountKey(nil, after)
	if after == "" {
		lower = accountKey(nil, "")
	} else {
		lower = append(lower, 0)
	}
	var out []string
	err := s.read(ctx, func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte("a0")})
		if err != nil {
			return err
		}
		for it.First(); it.Valid() && len(out) < limit; it.Next() {
			if id := string(it.Key()[2:]); id != "" && id[0] != '#' {
				out = append(out, id)
			}
		}
		return errors.Join(it.Error(), it.Close())
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: users: %w", err)
	}
	return out, nil
}
