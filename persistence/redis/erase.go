package redisstore

import (
	"context"
	"fmt"
	"strings"

	"actorim/persistence"
)

// eraseScanCount is the COUNT hint of the SCANs of EraseUser.
const eraseScanCount = 1000

// EraseUser implements persistence.Eraser. One DEL removes the account
// (with the seq counter), the timeline and the sessions together, so that
// from then on every append naming the user fails in its script (the
// account is gone) and nothing new can land under the user's keys; then a
// SCAN per pattern finds the conversation index (c/<user>/*) and the dedup
// keys (d/<user>/*), deleted in batches. A call cut short leaves only keys
// the next call finds again.
func (s *Store) EraseUser(ctx context.Context, userID string) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: erase user: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(userID) {
		return fmt.Errorf("redisstore: erase user: invalid user id %q", userID)
	}
	if err := s.rdb.Del(ctx, s.k.account(userID), s.k.timeline(userID), s.k.sessions(userID)).Err(); err != nil {
		return fmt.Errorf("redisstore: erase user %q: %w", userID, err)
	}
	for _, under := range []string{s.k.conversation(userID, ""), s.k.dedup(userID, "")} {
		if err := s.deleteMatching(ctx, globEscape(under)+"*"); err != nil {
			return fmt.Errorf("redisstore: erase user %q: %w", userID, err)
		}
	}
	return nil
}

// deleteMatching deletes every key matching the glob pattern.
func (s *Store) deleteMatching(ctx context.Context, pattern string) error {
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, pattern, eraseScanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := s.rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape quotes the characters SCAN's MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
