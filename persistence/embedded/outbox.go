package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"actorim/persistence"
)

// The outbox (persistence.Outbox) and trimming (persistence.Trimmer).
//
//	o/<id>   -> persistence outbox record; <id> 8 bytes big-endian, global and increasing
//	m/outbox -> highest outbox id handed out, 8 bytes big-endian
//	f/<user> -> trim floor of user's timeline, 8 bytes big-endian
//
// The committer writes an append's record in the append's own batch, so the
// record exists exactly when the message does.

var (
	_ persistence.Outbox  = (*Store)(nil)
	_ persistence.Trimmer = (*Store)(nil)

	outboxIDKey = []byte("m/outbox")
	outboxLower = []byte("o/")
	outboxUpper = []byte("o0")
)

type outbox struct {
	on   bool
	next uint64 // last id handed out; the committer's
	// floor is the first id of the batch being committed (MaxUint64 when
	// none is): readers skip records at or past it, which are not durable yet.
	floor atomic.Uint64
	rec   []byte // committer's scratch
}

func outboxKey(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, "o/"...), id)
}

func floorKey(user string) []byte { return append([]byte("f/"), user...) }

func (s *Store) openOutbox(on bool) error {
	s.ob.on = on
	s.ob.floor.Store(math.MaxUint64)
	v, closer, err := s.db.Get(outboxIDKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded: read outbox id: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("embedded: corrupt outbox id record of %d bytes", len(v))
	}
	s.ob.next = binary.BigEndian.Uint64(v)
	return nil
}

// stageOutbox adds o's outbox record to b. head and o.body make up the
// stored message (see stageAppend).
func (s *Store) stageOutbox(b *pebble.Batch, o *op, now uint64, head []byte) {
	if !s.ob.on {
		return
	}
	s.ob.next++
	// The entry is field 2 (message) of a clientpb.Entry without seq.
	entry := protowire.AppendTag(s.val[:0], 2, protowire.BytesType)
	entry = protowire.AppendVarint(entry, uint64(len(head)+len(o.body)))
	entry = append(entry, head...)
	entry = append(entry, o.body...)
	s.val = entry
	seqs := make([]uint64, len(o.res.Entries))
	for i, e := range o.res.Entries {
		seqs[i] = e.Seq
	}
	s.ob.rec = persistence.AppendOutboxRecord(s.ob.rec[:0], now, entry, o.req.Timelines, seqs)
	s.key = outboxKey(s.key[:0], s.ob.next)
	s.set(b, s.key, s.ob.rec)
}

// persistOutboxID records the outbox counter in b when the batch used ids.
func (s *Store) persistOutboxID(b *pebble.Batch, first uint64) {
	if s.ob.next != first {
		s.set(b, outboxIDKey, binary.BigEndian.AppendUint64(nil, s.ob.next))
	}
}

// ReadOutbox implements persistence.Outbox.
func (s *Store) ReadOutbox(ctx context.Context, limit int) ([]persistence.OutboxItem, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: read outbox: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 {
		return nil, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: outboxLower, UpperBound: outboxUpper})
	if err != nil {
		return nil, fmt.Errorf("embedded: read outbox: %w", err)
	}
	defer it.Close()
	// Loaded after the iterator is created: a batch the iterator sees is
	// either durable already or still bounded by the floor.
	floor := s.ob.floor.Load()
	out := make([]persistence.OutboxItem, 0, min(limit, 1024))
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		id := seqOf(it.Key())
		if id >= floor {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("embedded: read outbox: %w", err)
		}
		item, err := persistence.DecodeOutboxRecord(strconv.FormatUint(id, 10), v)
		if err != nil {
			return nil, fmt.Errorf("embedded: outbox item %d: %w", id, err)
		}
		out = append(out, item)
	}
	return out, nil
}

// ConfirmOutbox implements persistence.Outbox with one range deletion. It
// does not wait for an fsync: a confirmation lost in a crash only makes the
// archiver send those items again, which the archive deduplicates.
func (s *Store) ConfirmOutbox(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: confirm outbox: %w", err)
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("embedded: confirm outbox: bad id %q", id)
	}
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: confirm outbox: %w", err)
	}
	defer s.gate.Leave()
	if err := s.db.DeleteRange(outboxLower, outboxKey(nil, n+1), pebble.NoSync); err != nil {
		return fmt.Errorf("embedded: confirm outbox: %w", err)
	}
	return nil
}

// OutboxBacklog implements persistence.Outbox. The count assumes ids without
// gaps; a failed commit leaves a gap, so it may count a few too many.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, uint64, error) {
	items, err := s.ReadOutbox(ctx, 1)
	if err != nil || len(items) == 0 {
		return 0, 0, err
	}
	first, _ := strconv.ParseUint(items[0].ID, 10, 64)
	if err := s.gate.Enter(ctx); err != nil {
		return 0, 0, fmt.Errorf("embedded: outbox backlog: %w", err)
	}
	defer s.gate.Leave()
	var last uint64
	v, closer, err := s.db.Get(outboxIDKey)
	if err != nil {
		return 0, 0, fmt.Errorf("embedded: outbox backlog: %w", err)
	}
	if len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	_ = closer.Close()
	return int64(max(last, first) - first + 1), items[0].AtMs, nil
}

// AcquireOutbox implements persistence.Outbox: an embedded store has one
// node, which always holds it.
func (s *Store) AcquireOutbox(context.Context, string, int64) (bool, error) { return true, nil }

// TrimTimeline implements persistence.Trimmer.
func (s *Store) TrimTimeline(ctx context.Context, user string, belowSeq uint64) (uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("embedded: trim: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(user) {
		return 0, nil
	}
	floor, err := s.trimFloor(user)
	if err != nil {
		return 0, err
	}
	last, err := s.lastSeq(user)
	if err != nil {
		return 0, err
	}
	belowSeq = min(belowSeq, last)
	if belowSeq <= floor {
		return floor, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: timelineKey(nil, user, 0),
		UpperBound: timelineKey(nil, user, belowSeq),
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: trim %q: %w", user, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	var e entryConv
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return 0, fmt.Errorf("embedded: trim %q: %w", user, err)
		}
		seq := seqOf(it.Key())
		conv := e.conversation(v)
		if err := b.Delete(it.Key(), nil); err != nil {
			_ = it.Close()
			return 0, err
		}
		if conv != "" {
			if err := b.Delete(convKey(nil, user, conv, seq), nil); err != nil {
				_ = it.Close()
				return 0, err
			}
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("embedded: trim %q: %w", user, err)
	}
	if err := b.Set(floorKey(user), binary.BigEndian.AppendUint64(nil, belowSeq), nil); err != nil {
		return 0, err
	}
	// Losing a trim in a crash only keeps entries hot a little longer.
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("embedded: trim %q: %w", user, err)
	}
	return belowSeq, nil
}

// TrimFloor implements persistence.Trimmer.
func (s *Store) TrimFloor(ctx context.Context, user string) (uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("embedded: trim floor: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(user) {
		return 0, nil
	}
	return s.trimFloor(user)
}

func (s *Store) trimFloor(user string) (uint64, error) {
	v, closer, err := s.db.Get(floorKey(user))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("embedded: trim floor of %q: %w", user, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("embedded: corrupt trim floor of %q", user)
	}
	return binary.BigEndian.Uint64(v), nil
}

// entryConv finds the conversation id of a stored entry without decoding all
// of it: the conversation index key of a message needs it.
type entryConv struct{}

func (entryConv) conversation(entry []byte) string {
	msg := protoField(entry, 2)
	if msg == nil {
		return ""
	}
	return string(protoField(msg, 2))
}

// protoField returns the first bytes field num of a protobuf message, nil
// when there is none.
func protoField(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil
			}
			return v
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil
		}
		b = b[l:]
	}
	return nil
}
