package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// The outbox (persistence.Outbox) and trimming (persistence.Trimmer).
//
//	P o          stream, the outbox: one entry per append, written by the
//	             append script itself; fields h "<msgid>:<sentAtMs>",
//	             b the Message without id and time, u the timelines' users
//	             joined by spaces, s their seqs likewise
//	P ol         string, the archiving lease: the owner's name, PX ttl
//	P a/<user>   field tf: the trim floor of the user's timeline
//
// Stream ids are Redis's own (time-seq), increasing across every node that
// shares the Redis. Several nodes may read the outbox; the lease lets one
// archive at a time, and the archive deduplicates what two send anyway.

var (
	_ persistence.Outbox  = (*Store)(nil)
	_ persistence.Trimmer = (*Store)(nil)
)

func (k keys) outbox() string      { return k.prefix + "o" }
func (k keys) outboxLease() string { return k.prefix + "ol" }

// withOutbox adds the append script's outbox key and arguments when the
// outbox is on; see appendScript.
func (s *Store) withOutbox(keys []string, args []any, timelines []string) ([]string, []any) {
	if !s.outbox {
		return keys, args
	}
	return append(keys, s.k.outbox()), append(args, "1", strings.Join(timelines, " "))
}

// ReadOutbox implements persistence.Outbox.
func (s *Store) ReadOutbox(ctx context.Context, limit int) ([]persistence.OutboxItem, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: read outbox: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 {
		return nil, nil
	}
	msgs, err := s.rdb.XRangeN(ctx, s.k.outbox(), "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read outbox: %w", err)
	}
	out := make([]persistence.OutboxItem, 0, len(msgs))
	for _, m := range msgs {
		item, err := decodeOutbox(m)
		if err != nil {
			return nil, fmt.Errorf("redisstore: outbox item %s: %w", m.ID, err)
		}
		out = append(out, item)
	}
	return out, nil
}

func decodeOutbox(m redis.XMessage) (persistence.OutboxItem, error) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	it := persistence.OutboxItem{ID: m.ID}
	idStr, atStr, ok := strings.Cut(str("h"), ":")
	if !ok {
		return it, persistence.ErrCorruptOutbox
	}
	id, err1 := strconv.ParseUint(idStr, 10, 64)
	at, err2 := strconv.ParseUint(atStr, 10, 64)
	if err1 != nil || err2 != nil {
		return it, persistence.ErrCorruptOutbox
	}
	msg := new(clientpb.Message)
	if err := msg.UnmarshalVT([]byte(str("b"))); err != nil {
		return it, fmt.Errorf("%w: %w", persistence.ErrCorruptOutbox, err)
	}
	msg.Id, msg.SentAtMs = id, at
	it.AtMs = at
	it.Entry = &clientpb.Entry{Item: &clientpb.Entry_Message{Message: msg}}
	users, seqs := strings.Fields(str("u")), strings.Fields(str("s"))
	if len(users) != len(seqs) || len(users) == 0 {
		return it, persistence.ErrCorruptOutbox
	}
	it.Timelines = make([]persistence.TimelineSeq, len(users))
	for i, u := range users {
		seq, err := strconv.ParseUint(seqs[i], 10, 64)
		if err != nil {
			return it, persistence.ErrCorruptOutbox
		}
		it.Timelines[i] = persistence.TimelineSeq{User: u, Seq: seq}
	}
	return it, nil
}

// ConfirmOutbox implements persistence.Outbox with XTRIM MINID.
func (s *Store) ConfirmOutbox(ctx context.Context, id string) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: confirm outbox: %w", err)
	}
	defer s.gate.Leave()
	ms, seq, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return fmt.Errorf("redisstore: confirm outbox: bad id %q", id)
	}
	next := ms + "-" + strconv.FormatUint(n+1, 10)
	if err := s.rdb.XTrimMinID(ctx, s.k.outbox(), next).Err(); err != nil {
		return fmt.Errorf("redisstore: confirm outbox: %w", err)
	}
	return nil
}

// OutboxBacklog implements persistence.Outbox.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, 0, fmt.Errorf("redisstore: outbox backlog: %w", err)
	}
	defer s.gate.Leave()
	pipe := s.rdb.Pipeline()
	n := pipe.XLen(ctx, s.k.outbox())
	first := pipe.XRangeN(ctx, s.k.outbox(), "-", "+", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("redisstore: outbox backlog: %w", err)
	}
	msgs := first.Val()
	if len(msgs) == 0 {
		return n.Val(), 0, nil
	}
	item, err := decodeOutbox(msgs[0])
	if err != nil {
		return 0, 0, fmt.Errorf("redisstore: outbox backlog: %w", err)
	}
	return n.Val(), item.AtMs, nil
}

var leaseScript = redis.NewScript(`#!lua flags=no-cluster
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// AcquireOutbox implements persistence.Outbox with a lease key.
func (s *Store) AcquireOutbox(ctx context.Context, owner string, ttlMs int64) (bool, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return false, fmt.Errorf("redisstore: acquire outbox: %w", err)
	}
	defer s.gate.Leave()
	got, err := leaseScript.Run(ctx, s.rdb, []string{s.k.outboxLease()}, owner, max(ttlMs, 1)).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: acquire outbox: %w", err)
	}
	return got == 1, nil
}

// TrimTimeline implements persistence.Trimmer. Appends only add seqs above
// the newest, so deleting below it needs no script: the entries are read,
// their conversations' index entries and they are removed in one MULTI.
func (s *Store) TrimTimeline(ctx context.Context, user string, belowSeq uint64) (uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("redisstore: trim: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(user) {
		return 0, nil
	}
	v, err := s.rdb.HMGet(ctx, s.k.account(user), "seq", "tf").Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: trim %q: %w", user, err)
	}
	last, floor := hashUint(v[0]), hashUint(v[1])
	belowSeq = min(belowSeq, last)
	if belowSeq <= floor {
		return floor, nil
	}
	bound := "(" + strconv.FormatUint(belowSeq, 10)
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.k.timeline(user), Start: "-inf", Stop: bound, ByScore: true,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: trim %q: %w", user, err)
	}
	convs := map[string]struct{}{}
	for _, m := range members {
		if e, err := decodeEntry(m); err == nil {
			if c := e.GetMessage().GetConversationId(); c != "" {
				convs[c] = struct{}{}
			}
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, s.k.timeline(user), "-inf", bound)
		for c := range convs {
			p.ZRemRangeByScore(ctx, s.k.conversation(user, c), "-inf", bound)
		}
		p.HSet(ctx, s.k.account(user), "tf", belowSeq)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redisstore: trim %q: %w", user, err)
	}
	return belowSeq, nil
}

// TrimFloor implements persistence.Trimmer.
func (s *Store) TrimFloor(ctx context.Context, user string) (uint64, error) {
	return s.accountCounter(ctx, user, "tf", "trim floor")
}

func hashUint(v any) uint64 {
	s, _ := v.(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
