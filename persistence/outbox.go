package persistence

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"actorim/protos/clientpb"
)

// OutboxItem is one write the archive has not confirmed yet: a timeline item
// (a message or an event) and the timelines it was appended to.
type OutboxItem struct {
	// ID orders items within one store; ConfirmOutbox takes it. It is opaque
	// outside the backend.
	ID string
	// AtMs is when the store appended the item.
	AtMs uint64
	// Entry is the item as appended, without a seq (each timeline has its own).
	Entry *clientpb.Entry
	// Timelines lists the users whose timelines hold the item and its seq in each.
	Timelines []TimelineSeq
}

// TimelineSeq is one position: the seq of an item in user's timeline.
type TimelineSeq struct {
	User string // whose timeline
	Seq  uint64 // the item's seq in it
}

// Outbox is implemented by stores opened with their outbox on: every Append
// (and every other timeline write) records an OutboxItem in the same atomic
// write, so an archiver that confirms items only after they are safely
// elsewhere loses nothing, whatever crashes.
type Outbox interface {
	// ReadOutbox returns up to limit unconfirmed items, oldest first. Only
	// durable items are returned. Calls without a ConfirmOutbox in between
	// return the same items again.
	ReadOutbox(ctx context.Context, limit int) ([]OutboxItem, error)
	// ConfirmOutbox deletes every item up to and including the one with id.
	ConfirmOutbox(ctx context.Context, id string) error
	// OutboxBacklog returns how many items are unconfirmed and the append
	// time of the oldest (0 when there is none).
	OutboxBacklog(ctx context.Context) (items int64, oldestAtMs uint64, err error)
	// AcquireOutbox takes or renews, for ttl, the right to archive the outbox
	// as owner, and reports whether owner holds it. A store shared by several
	// nodes lets one node hold it at a time; archiving without it is safe
	// (the archive deduplicates) but wasteful.
	AcquireOutbox(ctx context.Context, owner string, ttlMs int64) (bool, error)
}

// Trimmer is implemented by stores whose timelines can shed old entries once
// they are archived elsewhere.
type Trimmer interface {
	// TrimTimeline deletes user's entries with seq below belowSeq and raises
	// the user's trim floor to belowSeq. The newest entry is never deleted
	// (belowSeq is lowered to it), so LastSeq stays right. It returns the
	// floor in force afterwards.
	TrimTimeline(ctx context.Context, user string, belowSeq uint64) (floor uint64, err error)
	// TrimFloor returns the lowest seq the hot store may still hold for
	// user: every entry below it was trimmed. 0 or 1 when none was.
	TrimFloor(ctx context.Context, user string) (uint64, error)
}

// ErrCorruptOutbox reports an outbox record that cannot be decoded.
var ErrCorruptOutbox = errors.New("persistence: corrupt outbox item")

// Wire format of an outbox record, shared by the backends that store records
// as bytes. It is protobuf-compatible:
//
//	1: at_ms (varint)   2: entry (bytes, a clientpb.Entry without seq)
//	3: user (bytes, repeated)   4: seq (varint, repeated, same order as user)

// AppendOutboxRecord appends the encoding of a record to dst. entry is a
// marshalled clientpb.Entry (without seq).
func AppendOutboxRecord(dst []byte, atMs uint64, entry []byte, users []string, seqs []uint64) []byte {
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, atMs)
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendBytes(dst, entry)
	for i, u := range users {
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendString(dst, u)
		dst = protowire.AppendTag(dst, 4, protowire.VarintType)
		dst = protowire.AppendVarint(dst, seqs[i])
	}
	return dst
}

// DecodeOutboxRecord decodes a record written by AppendOutboxRecord.
func DecodeOutboxRecord(id string, b []byte) (OutboxItem, error) {
	it := OutboxItem{ID: id}
	var seqs []uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return it, ErrCorruptOutbox
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return it, ErrCorruptOutbox
			}
			it.AtMs, b = v, b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return it, ErrCorruptOutbox
			}
			it.Entry = new(clientpb.Entry)
			if err := proto.Unmarshal(v, it.Entry); err != nil {
				return it, fmt.Errorf("%w: %w", ErrCorruptOutbox, err)
			}
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return it, ErrCorruptOutbox
			}
			it.Timelines, b = append(it.Timelines, TimelineSeq{User: v}), b[n:]
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return it, ErrCorruptOutbox
			}
			seqs, b = append(seqs, v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return it, ErrCorruptOutbox
			}
			b = b[n:]
		}
	}
	if it.Entry == nil || len(seqs) != len(it.Timelines) {
		return it, ErrCorruptOutbox
	}
	for i := range seqs {
		it.Timelines[i].Seq = seqs[i]
	}
	return it, nil
}
