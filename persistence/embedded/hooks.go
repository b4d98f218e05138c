package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"actorim/persistence"
)

// The webhook queue (persistence.HookQueue):
//
//	h/i/<id>                    -> the item (see encodeHook)
//	h/q/<app>/<due><id>         -> empty: the app's due index
//	h/z/<due><id>               -> empty: the global due index (HookStats)
//	h/x/<id>                    -> <doneAt>: a recently acked or dead id
//	h/y/<doneAt><id>            -> empty: the expiry index of h/x/
//	h/k/<seq>                   -> a dead item, with its id; seq increasing
//
// <due>, <doneAt> and <seq> are 8 bytes big-endian. Apps are valid ids, so
// "h/q/<app>/" is one app's range. Every operation runs under hookQueue.mu;
// hook traffic is small next to appends and goes straight to Pebble, not
// through the committer. EnqueueHooks ends with a synced WAL write, which
// Pebble groups across concurrent callers; the other writes do not wait
// for an fsync: one lost in a crash only delivers an item again or earlier,
// which at-least-once delivery allows.

var _ persistence.HookQueue = (*Store)(nil)

// hookQueue is the in-memory side of the queue, loaded from disk on first use.
type hookQueue struct {
	mu      sync.Mutex
	loaded  bool
	apps    map[string]int // queued items per app
	queued  int64
	dead    int64
	deadSeq uint64 // last h/k/ seq used
}

// purgePerOp bounds the expired h/x/ records one ack or dead-letter deletes.
const purgePerOp = 64

var (
	hookItemLower = []byte("h/i/")
	hookDueLower  = []byte("h/z/")
	hookDoneLower = []byte("h/y/")
	hookDeadLower = []byte("h/k/")
)

func hookItemKey(id string) []byte { return append([]byte("h/i/"), id...) }
func hookDoneKey(id string) []byte { return append([]byte("h/x/"), id...) }
func hookAppPrefix(app string) []byte {
	return append(append([]byte("h/q/"), app...), '/')
}
func hookAppKey(app string, due int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(hookAppPrefix(app), uint64(max(due, 0))), id...)
}
func hookDueKey(due int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("h/z/"), uint64(max(due, 0))), id...)
}
func hookExpiryKey(at int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("h/y/"), uint64(max(at, 0))), id...)
}
func hookDeadKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte("h/k/"), seq) }

// encodeHook encodes it, protobuf-compatible:
//
//	1: app  2: event  3: payload  4: attempts  5: next at ms
//	6: created at ms  7: last error  8: id (dead items only)
func encodeHook(it persistence.HookItem, withID bool) []byte {
	b := make([]byte, 0, len(it.Payload)+len(it.App)+len(it.Event)+len(it.LastError)+48)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, it.App)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, it.Event)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, it.Payload)
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(it.Attempts))
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(it.NextAtMs))
	b = protowire.AppendTag(b, 6, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(it.CreatedAtMs))
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendString(b, it.LastError)
	if withID {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendString(b, it.ID)
	}
	return b
}

var errCorruptHook = errors.New("corrupt hook record")

func decodeHook(id string, b []byte) (persistence.HookItem, error) {
	it := persistence.HookItem{ID: id}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return it, errCorruptHook
		}
		b = b[n:]
		var v []byte
		var u uint64
		switch typ {
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = -1
		}
		if n < 0 {
			return it, errCorruptHook
		}
		b = b[n:]
		switch num {
		case 1:
			it.App = string(v)
		case 2:
			it.Event = string(v)
		case 3:
			it.Payload = slices.Clone(v)
		case 4:
			it.Attempts = int(u)
		case 5:
			it.NextAtMs = int64(u)
		case 6:
			it.CreatedAtMs = int64(u)
		case 7:
			it.LastError = string(v)
		case 8:
			it.ID = string(v)
		}
	}
	if it.App == "" {
		return it, errCorruptHook
	}
	return it, nil
}

// iterHook decodes the record it is at (its id is the one inside, if any).
func iterHook(it *pebble.Iterator) (persistence.HookItem, error) {
	v, err := it.ValueAndErr()
	if err != nil {
		return persistence.HookItem{}, err
	}
	return decodeHook("", v)
}

// hookOp runs f inside the gate, holding the queue's lock, with the queue
// loaded. what names the operation in errors.
func (s *Store) hookOp(ctx context.Context, what string, f func() error) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: %s: %w", what, err)
	}
	defer s.gate.Leave()
	s.hq.mu.Lock()
	defer s.hq.mu.Unlock()
	if err := s.loadHooks(); err != nil {
		return fmt.Errorf("embedded: %s: %w", what, err)
	}
	if err := f(); err != nil {
		return fmt.Errorf("embedded: %s: %w", what, err)
	}
	return nil
}

// loadHooks counts the queued and dead items once.
func (s *Store) loadHooks() error {
	q := &s.hq
	if q.loaded {
		return nil
	}
	q.apps = map[string]int{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: hookItemLower, UpperBound: prefixEnd(hookItemLower)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		h, err := iterHook(it)
		if err != nil {
			_ = it.Close()
			return err
		}
		q.apps[h.App]++
		q.queued++
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: hookDeadLower, UpperBound: prefixEnd(hookDeadLower)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		q.dead++
		q.deadSeq = seqOf(it.Key())
	}
	if err := it.Close(); err != nil {
		return err
	}
	q.loaded = true
	return nil
}

// getHook returns the queued item id, or ok false.
func (s *Store) getHook(id string) (persistence.HookItem, bool, error) {
	v, err := s.getCopy(hookItemKey(id))
	if err != nil || v == nil {
		return persistence.HookItem{}, false, err
	}
	it, err := decodeHook(id, v)
	return it, err == nil, err
}

// EnqueueHooks implements persistence.HookQueue.
func (s *Store) EnqueueHooks(ctx context.Context, items ...persistence.HookItem) (int, error) {
	for _, it := range items {
		if err := persistence.CheckHook(it); err != nil {
			return 0, fmt.Errorf("embedded: enqueue hooks: %w", err)
		}
	}
	added := 0
	err := s.hookOp(ctx, "enqueue hooks", func() error {
		now := time.Now().UnixMilli()
		b := s.db.NewBatch()
		defer b.Close()
		seen := map[string]bool{}
		var apps []string
		for _, it := range items {
			if seen[it.ID] {
				continue
			}
			seen[it.ID] = true
			if v, err := s.getCopy(hookItemKey(it.ID)); err != nil || v != nil {
				if err != nil {
					return err
				}
				continue
			}
			if v, err := s.getCopy(hookDoneKey(it.ID)); err != nil || (len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now-persistence.HookDedupWindowMs) {
				if err != nil {
					return err
				}
				continue
			}
			it = persistence.HookDefaults(it, now)
			if err := errors.Join(
				b.Set(hookItemKey(it.ID), encodeHook(it, false), nil),
				b.Set(hookAppKey(it.App, it.NextAtMs, it.ID), nil, nil),
				b.Set(hookDueKey(it.NextAtMs, it.ID), nil, nil),
			); err != nil {
				return err
			}
			apps = append(apps, it.App)
		}
		if b.Empty() {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		for _, app := range apps {
			s.hq.apps[app]++
		}
		added = len(apps)
		s.hq.queued += int64(added)
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Outside the lock, so that concurrent callers share one fsync. It also
	// covers a duplicate whose original's writer has not synced yet.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return 0, fmt.Errorf("embedded: enqueue hooks: %w", err)
	}
	return added, nil
}

// ClaimHooks implements persistence.HookQueue.
func (s *Store) ClaimHooks(ctx context.Context, c persistence.HookClaim) ([]persistence.HookItem, error) {
	if c.Limit <= 0 {
		return nil, s.admitted(ctx, "claim hooks")
	}
	perApp := c.PerApp
	if perApp <= 0 {
		perApp = c.Limit
	}
	lease := max(c.LeaseMs, 1)
	var out []persistence.HookItem
	err := s.hookOp(ctx, "claim hooks", func() error {
		type cand struct {
			app   string
			first []byte
		}
		var cands []cand
		for app := range s.hq.apps {
			if slices.Contains(c.Skip, app) {
				continue
			}
			first, err := s.firstKey(hookAppPrefix(app), hookAppKey(app, c.NowMs+1, ""))
			if err != nil {
				return err
			}
			if first != nil {
				cands = append(cands, cand{app, first})
			}
		}
		// Earliest due first; the due time follows the app's prefix.
		slices.SortFunc(cands, func(a, b cand) int {
			return bytes.Compare(a.first[len(a.app)+5:], b.first[len(b.app)+5:])
		})
		b := s.db.NewBatch()
		defer b.Close()
		for _, cd := range cands {
			if len(out) >= c.Limit {
				break
			}
			ids, err := s.dueIDs(cd.app, c.NowMs, min(perApp, c.Limit-len(out)))
			if err != nil {
				return err
			}
			for _, id := range ids {
				it, ok, err := s.getHook(id)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				it.Attempts++
				if it, err = rescheduleHook(b, it, c.NowMs+lease); err != nil {
					return err
				}
				out = append(out, it)
			}
		}
		if b.Empty() {
			return nil
		}
		return b.Commit(pebble.NoSync)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// firstKey returns a copy of the first key in [lower, upper), nil when none.
func (s *Store) firstKey(lower, upper []byte) ([]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var k []byte
	if it.First() {
		k = slices.Clone(it.Key())
	}
	return k, it.Close()
}

// dueIDs returns up to n ids of app's items due at nowMs, earliest first.
func (s *Store) dueIDs(app string, nowMs int64, n int) ([]string, error) {
	prefix := hookAppPrefix(app)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: hookAppKey(app, nowMs+1, "")})
	if err != nil {
		return nil, err
	}
	var ids []string
	for ok := it.First(); ok && len(ids) < n; ok = it.Next() {
		ids = append(ids, string(it.Key()[len(prefix)+8:]))
	}
	return ids, it.Close()
}

// AckHook implements persistence.HookQueue.
func (s *Store) AckHook(ctx context.Context, id string) error {
	return s.hookOp(ctx, "ack hook", func() error { return s.finishHook(id, "", false) })
}

// DeadLetterHook implements persistence.HookQueue.
func (s *Store) DeadLetterHook(ctx context.Context, id, lastErr string) error {
	return s.hookOp(ctx, "dead-letter hook", func() error { return s.finishHook(id, lastErr, true) })
}

// finishHook removes a queued item, remembers its id for deduplication and,
// when dead, adds it to the dead list.
func (s *Store) finishHook(id, lastErr string, dead bool) error {
	it, ok, err := s.getHook(id)
	if err != nil || !ok {
		return err
	}
	now := time.Now().UnixMilli()
	b := s.db.NewBatch()
	defer b.Close()
	if err := errors.Join(
		b.Delete(hookItemKey(id), nil),
		b.Delete(hookAppKey(it.App, it.NextAtMs, id), nil),
		b.Delete(hookDueKey(it.NextAtMs, id), nil),
		b.Set(hookDoneKey(id), binary.BigEndian.AppendUint64(nil, uint64(now)), nil),
		b.Set(hookExpiryKey(now, id), nil, nil),
	); err != nil {
		return err
	}
	if err := s.purgeDone(b, now); err != nil {
		return err
	}
	q := &s.hq
	dropped := int64(0)
	if dead {
		it.LastError = lastErr
		if err := b.Set(hookDeadKey(q.deadSeq+1), encodeHook(it, true), nil); err != nil {
			return err
		}
		if q.dead+1 > persistence.HookDeadCap {
			first, err := s.firstKey(hookDeadLower, prefixEnd(hookDeadLower))
			if err != nil {
				return err
			}
			if first != nil {
				if err := b.Delete(first, nil); err != nil {
					return err
				}
				dropped = 1
			}
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	q.queued--
	if q.apps[it.App]--; q.apps[it.App] <= 0 {
		delete(q.apps, it.App)
	}
	if dead {
		q.deadSeq++
		q.dead += 1 - dropped
	}
	return nil
}

// purgeDone adds to b the deletion of a few dedup records older than the
// window.
func (s *Store) purgeDone(b *pebble.Batch, now int64) error {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: hookDoneLower,
		UpperBound: hookExpiryKey(now-persistence.HookDedupWindowMs, ""),
	})
	if err != nil {
		return err
	}
	for ok, n := it.First(), 0; ok && n < purgePerOp; ok, n = it.Next(), n+1 {
		k := it.Key()
		at, id := k[4:12], string(k[12:])
		// A newer ack of the same id wrote a later h/x/ value: keep it.
		if v, err := s.getCopy(hookDoneKey(id)); err == nil && bytes.Equal(v, at) {
			_ = b.Delete(hookDoneKey(id), nil)
		}
		_ = b.Delete(slices.Clone(k), nil)
	}
	return it.Close()
}

// rescheduleHook adds to b the write of it due at next, its index entries
// moved, and returns it so.
func rescheduleHook(b *pebble.Batch, it persistence.HookItem, next int64) (persistence.HookItem, error) {
	err := errors.Join(
		b.Delete(hookAppKey(it.App, it.NextAtMs, it.ID), nil),
		b.Delete(hookDueKey(it.NextAtMs, it.ID), nil),
		b.Set(hookAppKey(it.App, next, it.ID), nil, nil),
		b.Set(hookDueKey(next, it.ID), nil, nil),
	)
	it.NextAtMs = next
	return it, errors.Join(err, b.Set(hookItemKey(it.ID), encodeHook(it, false), nil))
}

// RetryHook implements persistence.HookQueue.
func (s *Store) RetryHook(ctx context.Context, id string, nextAtMs int64, lastErr string) error {
	return s.hookOp(ctx, "retry hook", func() error {
		it, ok, err := s.getHook(id)
		if err != nil || !ok {
			return err
		}
		b := s.db.NewBatch()
		defer b.Close()
		it.LastError = lastErr
		if _, err := rescheduleHook(b, it, nextAtMs); err != nil {
			return err
		}
		return b.Commit(pebble.NoSync)
	})
}

// HookStats implements persistence.HookQueue.
func (s *Store) HookStats(ctx context.Context, nowMs int64) (persistence.HookStats, error) {
	var st persistence.HookStats
	err := s.hookOp(ctx, "hook stats", func() error {
		st.Queued, st.Dead = s.hq.queued, s.hq.dead
		it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: hookDueLower, UpperBound: hookDueKey(nowMs+1, "")})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			st.Due++
		}
		return it.Close()
	})
	return st, err
}

// DeadHooks implements persistence.HookQueue.
func (s *Store) DeadHooks(ctx context.Context, limit int) ([]persistence.HookItem, error) {
	var out []persistence.HookItem
	err := s.hookOp(ctx, "dead hooks", func() error {
		it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: hookDeadLower, UpperBound: prefixEnd(hookDeadLower)})
		if err != nil {
			return err
		}
		for ok := it.Last(); ok && len(out) < limit; ok = it.Prev() {
			h, err := iterHook(it)
			if err != nil {
				_ = it.Close()
				return err
			}
			out = append(out, h)
		}
		return it.Close()
	})
	return out, err
}
