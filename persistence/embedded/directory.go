package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"actorim/persistence"
)

// Directory keys, beside those in keys.go and state.go:
//
//	n/<scope>\x00<name>\x00<user>  -> empty (the index, in name order)
//	N/<scope>\x00<user>            -> <name> (the user's entry, to replace it)
//
// Neither scopes, names nor users hold NUL (persistence.CheckDirectory), so
// every key reads one way and a name prefix is a key prefix.

func dirNamePrefix(scope, prefix string) []byte {
	k := append([]byte("n/"), scope...)
	k = append(k, 0)
	return append(k, prefix...)
}

func dirNameKey(scope, name, user string) []byte {
	k := append(dirNamePrefix(scope, name), 0)
	return append(k, user...)
}

func dirUserKey(scope, user string) []byte {
	k := append([]byte("N/"), scope...)
	k = append(k, 0)
	return append(k, user...)
}

// IndexName implements persistence.Directory. dirMu orders the writes of
// one store, so that two renames of a user cannot both keep their entry.
func (s *Store) IndexName(ctx context.Context, scope, user, name string) error {
	if err := persistence.CheckIndexName(scope, user, name); err != nil {
		return fmt.Errorf("embedded: index name: %w", err)
	}
	return s.dirWrite(ctx, "index name", scope, user, name)
}

// RemoveName implements persistence.Directory.
func (s *Store) RemoveName(ctx context.Context, scope, user string) error {
	if err := persistence.CheckRemoveName(scope, user); err != nil {
		return fmt.Errorf("embedded: remove name: %w", err)
	}
	return s.dirWrite(ctx, "remove name", scope, user, "")
}

// dirWrite replaces user's entry in scope by name (none when empty) in one
// synced batch.
func (s *Store) dirWrite(ctx context.Context, what, scope, user, name string) error {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	return s.write(ctx, what, user, func() error {
		uk := dirUserKey(scope, user)
		b := s.db.NewBatch()
		defer b.Close()
		old, closer, err := s.db.Get(uk)
		switch {
		case err == nil:
			err = b.Delete(dirNameKey(scope, string(old), user), nil)
			err = errors.Join(err, closer.Close())
		case errors.Is(err, pebble.ErrNotFound):
			err = nil
		}
		if err != nil {
			return err
		}
		if name == "" {
			err = b.Delete(uk, nil)
		} else {
			err = errors.Join(b.Set(dirNameKey(scope, name, user), nil, nil), b.Set(uk, []byte(name), nil))
		}
		if err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	})
}

// SearchNames implements persistence.Directory.
func (s *Store) SearchNames(ctx context.Context, scope, prefix string, after persistence.Name, limit int) ([]persistence.Name, error) {
	if err := persistence.CheckDirectory(scope, "", prefix); err != nil {
		return nil, fmt.Errorf("embedded: search names: %w", err)
	}
	if limit <= 0 {
		return nil, nil
	}
	lower := dirNamePrefix(scope, prefix)
	upper := append(bytes.Clone(lower), 0xff) // no UTF-8 byte is 0xff
	if after.User != "" {
		if k := append(dirNameKey(scope, after.Name, after.User), 0); bytes.Compare(k, lower) > 0 {
			lower = k
		}
	}
	head := len(dirNamePrefix(scope, ""))
	var out []persistence.Name
	_, err := s.keysIn(ctx, lower, upper, limit, func(k []byte) (string, bool) {
		rest := k[head:]
		i := bytes.LastIndexByte(rest, 0)
		if i < 0 {
			return "", false
		}
		out = append(out, persistence.Name{Name: string(rest[:i]), User: string(rest[i+1:])})
		return "", true
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: search names: %w", err)
	}
	return out, nil
}
