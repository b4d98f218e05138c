package embedded

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"actorim/persistence"
)

// EraseUser implements persistence.Eraser. The committer stages it like an
// append, so it is ordered with the writes around it: one batch deletes the
// account (a/), the timeline (t/<user>/), its conversation index
// (c/<user>/) and the dedup keys (d/<user>/) as range deletions, and the
// committer forgets the user's seq, account and recent dedup keys. The
// sessions, which live in memory only, go after it commits.
func (s *Store) EraseUser(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: erase user: %w", err)
	}
	if !persistence.ValidID(userID) {
		return fmt.Errorf("embedded: erase user: invalid user id %q", userID)
	}
	o := getOp()
	o.kind = opErase
	o.erase = userID
	if err := s.do(ctx, o); err != nil {
		return fmt.Errorf("embedded: erase user %q: %w", userID, err)
	}
	err := o.err
	putOp(o)
	if err != nil {
		return err
	}
	s.sessions.drop(userID)
	return nil
}

// stageErase adds the deletions of o.erase to b; see EraseUser.
func (s *Store) stageErase(b *pebble.Batch, o *op) {
	user := o.erase
	err := b.Delete(accountKey(nil, user), nil)
	for _, prefix := range [][]byte{timelinePrefix(nil, user), userPrefix("c/", user), userPrefix("d/", user)} {
		if err == nil {
			err = b.DeleteRange(prefix, prefixEnd(prefix), nil)
		}
	}
	if err != nil {
		if s.batchErr == nil {
			s.batchErr = err
		}
		return
	}
	delete(s.accounts, user)
	delete(s.newAccounts, user)
	s.erased[user] = struct{}{}
	// The timeline restarts at seq 1; until the batch commits, an append
	// to the user fails (hasAccount consults erased).
	s.seqs[user] = 0
	for did := range s.pending {
		if did.sender == user {
			delete(s.pending, did)
		}
	}
	for did := range s.recent {
		if did.sender == user {
			delete(s.recent, did)
		}
	}
	o.staged = true
}

// userPrefix is "<kind><user>/": every key of user's of that kind.
func userPrefix(kind, user string) []byte {
	k := append([]byte(kind), user...)
	return append(k, '/')
}

// ForEachKey calls visit with every key and value the store holds, in key
// order, until visit returns false. It is a debugging aid (the erasure
// tests search the whole store with it), not part of any contract; key and
// value are valid during the call only.
func (s *Store) ForEachKey(ctx context.Context, visit func(key, value []byte) bool) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: keys: %w", err)
	}
	defer s.gate.Leave()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{})
	if err != nil {
		return fmt.Errorf("embedded: keys: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("embedded: keys: %w", err)
		}
		if !visit(it.Key(), v) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("embedded: keys: %w", err)
	}
	return nil
}
