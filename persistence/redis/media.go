package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"actorim/persistence"
)

// Media keys (persistence.Media), beside those in keys.go:
//
//	P mb/<sha>             hash: r = references, g = generation (absent: 0)
//	P mq/<owner>           string: usage in bytes (absent: 0)
//	P mf/{<ss>}/<file id>  hash: the file's record (see mediaFields)
//	P mu/{<ss>}            sorted set, unsent index shard <ss>: score
//	                       CreatedAtMs, member the file id
//
// Unlike the rest of the store, every media script is Redis Cluster safe:
// each declares the keys it touches and they share a hash slot. The blob and
// usage scripts touch one key each. A file's record and its entry in the
// unsent index are written by one script, so they must share a slot: the
// index is split into 256 shards, <ss> being two hex digits of FNV-1a(id)
// (see mediaShard), and a file's record carries its shard's hash tag. The
// records of all files spread over 256 slots, which is enough to balance
// them over any realistic number of primaries, and UnsentMedia reads the
// 256 shards in one pipeline. The shard count and function are part of the
// stored layout: changing them orphans every record.
//
// (The store as a whole still needs a single primary, see keys; this keeps
// the media keys out of the way of a later move to Cluster, and
// TestMediaRedisCluster runs them on a one-node Cluster, which refuses a
// cross-slot script.)
//
// A content's mb/ hash stays when its count falls to zero, keeping the next
// generation: the object of the old one may still be being deleted.
//
// Lua numbers are doubles, exact below 2^53 (about 9 PB, or 285,000 years
// in ms): ChargeMedia clamps its arguments to that range and PutMediaFile
// refuses a CreatedAtMs beyond it.

var _ persistence.Media = (*Store)(nil)

const (
	mediaShards = 256
	// maxExact bounds the usage, limits and times a script computes with.
	maxExact = 1 << 53
)

func (k keys) blobRefs(sha string) string     { return k.prefix + "mb/" + sha }
func (k keys) mediaUsage(owner string) string { return k.prefix + "mq/" + owner }

func (k keys) mediaFile(id string) string {
	return k.prefix + "mf/{" + mediaShard(id) + "}/" + id
}

func (k keys) unsentMedia(shard string) string { return k.prefix + "mu/{" + shard + "}" }

// mediaShard is the unsent index shard of file id, two hex digits.
func mediaShard(id string) string {
	h := uint32(2166136261) // FNV-1a
	for _, c := range []byte(id) {
		h = (h ^ uint32(c)) * 16777619
	}
	return shardName(int(h % mediaShards))
}

func shardName(i int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[i>>4], digits[i&15]})
}

// The scripts of persistence.Media; each runs atomically and is Cluster
// safe (no no-cluster flag: Redis checks that the keys share a slot).

// acquireBlobScript adds a reference to KEYS[1] (P mb/<sha>) and returns
// its generation.
var acquireBlobScript = redis.NewScript(`#!lua
redis.call('HINCRBY', KEYS[1], 'r', 1)
return redis.call('HGET', KEYS[1], 'g') or '0'
`)

// releaseBlobScript drops a reference to KEYS[1] (P mb/<sha>). It returns
// {0, generation} when references are left, {1, generation} when that was
// the last one (the generation's object is to be deleted, and the next
// acquire gets the next generation), {2, empty string} when there was
// none.
var releaseBlobScript = redis.NewScript(`#!lua
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if r < 1 then
  return {2, ''}
end
local g = redis.call('HGET', KEYS[1], 'g') or '0'
if r == 1 then
  redis.call('HSET', KEYS[1], 'r', '0')
  redis.call('HINCRBY', KEYS[1], 'g', 1)
  return {1, g}
end
redis.call('HINCRBY', KEYS[1], 'r', -1)
return {0, g}
`)

// chargeMediaScript adds ARGV[1] to the usage KEYS[1] (P mq/<owner>) unless
// that is positive and would take it above ARGV[2]; it never goes below 0.
// It returns {0, new usage}, or {1, usage} when the limit refused it.
var chargeMediaScript = redis.NewScript(`#!lua
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local delta = tonumber(ARGV[1])
if delta > 0 and delta > tonumber(ARGV[2]) - used then
  return {1, used}
end
used = used + delta
if used <= 0 then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
redis.call('SET', KEYS[1], string.format('%d', used))
return {0, used}
`)

// putMediaScript creates the record KEYS[1] (P mf/{<ss>}/<id>) from the
// field, value pairs ARGV[3..] unless it exists, and adds id ARGV[1] to the
// unsent index shard KEYS[2] (P mu/{<ss>}) with score ARGV[2] unless that
// is empty (a record put as sent). It returns 1 when it created the record.
var putMediaScript = redis.NewScript(`#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
`)

// markMediaSentScript sets the sent time of record KEYS[1] to ARGV[2]
// unless it has one, and removes id ARGV[1] from the index shard KEYS[2].
// It returns 0 when the record is gone.
var markMediaSentScript = redis.NewScript(`#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('HSETNX', KEYS[1], 'st', ARGV[2]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
`)

// deleteUnsentMediaScript deletes record KEYS[1] and its entry ARGV[1] in
// the index shard KEYS[2] unless the record has a sent time. It returns
// {0} when the record is gone, {1} when it was sent, {2, its fields and
// values} when it deleted it.
var deleteUnsentMediaScript = redis.NewScript(`#!lua
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then
  return {0}
end
if redis.call('HEXISTS', KEYS[1], 'st') == 1 then
  return {1}
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {2, rec}
`)

func blobObjectKey(sha, gen string) string { return "b/" + sha + "." + gen }

// AcquireBlob implements persistence.Media with one script run. Object keys
// are "b/<sha>.<generation>".
func (s *Store) AcquireBlob(ctx context.Context, sha string) (string, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return "", fmt.Errorf("redisstore: acquire blob: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidSHA256(sha) {
		return "", fmt.Errorf("redisstore: acquire blob: invalid sha %q", sha)
	}
	gen, err := acquireBlobScript.Run(ctx, s.rdb, []string{s.k.blobRefs(sha)}).Text()
	if err != nil {
		return "", fmt.Errorf("redisstore: acquire blob %s: %w", sha, err)
	}
	return blobObjectKey(sha, gen), nil
}

// ReleaseBlob implements persistence.Media with one script run. Releasing a
// content without references fails with an error wrapping
// persistence.ErrNotFound.
func (s *Store) ReleaseBlob(ctx context.Context, sha string) (string, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return "", fmt.Errorf("redisstore: release blob: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidSHA256(sha) {
		return "", fmt.Errorf("redisstore: release blob: invalid sha %q", sha)
	}
	reply, err := releaseBlobScript.Run(ctx, s.rdb, []string{s.k.blobRefs(sha)}).Slice()
	if err != nil {
		return "", fmt.Errorf("redisstore: release blob %s: %w", sha, err)
	}
	code, gen, ok := codeAndString(reply)
	switch {
	case ok && code == 0:
		return "", nil
	case ok && code == 1:
		return blobObjectKey(sha, gen), nil
	case ok && code == 2:
		return "", fmt.Errorf("redisstore: release blob %s: no references: %w", sha, persistence.ErrNotFound)
	}
	return "", fmt.Errorf("redisstore: release blob %s: unexpected reply %v", sha, reply)
}

// codeAndString reads a script's {code, string} reply.
func codeAndString(reply []any) (int64, string, bool) {
	if len(reply) != 2 {
		return 0, "", false
	}
	code, ok1 := reply[0].(int64)
	s, ok2 := reply[1].(string)
	return code, s, ok1 && ok2
}

// ChargeMedia implements persistence.Media with one script run. With
// ErrQuotaExceeded it returns the unchanged usage. Usage stays below 2^53:
// a larger limit counts as 2^53.
func (s *Store) ChargeMedia(ctx context.Context, owner string, delta, limit int64) (int64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("redisstore: charge media: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(owner) {
		return 0, fmt.Errorf("redisstore: charge media: invalid owner %q", owner)
	}
	// Usage never passes 2^53, so a larger delta is refused and a smaller
	// one empties it; 2^54 says both exactly (between 2^53 and 2^54 a
	// double would round, and 2^53+1 could pass a limit of 2^53). The
	// script compares delta with limit-used, both exact, never a sum.
	if delta > maxExact {
		delta = 2 * maxExact
	}
	delta = max(delta, -2*maxExact)
	limit = min(max(limit, -2*maxExact), maxExact)
	reply, err := chargeMediaScript.Run(ctx, s.rdb, []string{s.k.mediaUsage(owner)}, delta, limit).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("redisstore: charge media of %q: %w", owner, err)
	}
	if len(reply) != 2 {
		return 0, fmt.Errorf("redisstore: charge media of %q: unexpected reply %v", owner, reply)
	}
	if reply[0] == 1 {
		return reply[1], fmt.Errorf("redisstore: charge media of %q: %w", owner, persistence.ErrQuotaExceeded)
	}
	return reply[1], nil
}

// MediaUsage implements persistence.Media.
func (s *Store) MediaUsage(ctx context.Context, owner string) (int64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("redisstore: media usage: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(owner) {
		return 0, nil
	}
	used, err := s.rdb.Get(ctx, s.k.mediaUsage(owner)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: media usage of %q: %w", owner, err)
	}
	return used, nil
}

// PutMediaFile implements persistence.Media with one script run.
func (s *Store) PutMediaFile(ctx context.Context, f persistence.MediaFile) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: put media file: %w", err)
	}
	defer s.gate.Leave()
	switch {
	case !persistence.ValidFileID(f.ID):
		return fmt.Errorf("redisstore: put media file: invalid id %q", f.ID)
	case !persistence.ValidID(f.Owner):
		return fmt.Errorf("redisstore: put media file %s: invalid owner %q", f.ID, f.Owner)
	case f.CreatedAtMs >= maxExact:
		return fmt.Errorf("redisstore: put media file %s: CreatedAtMs %d out of range", f.ID, f.CreatedAtMs)
	}
	score := ""
	if f.SentAtMs == 0 {
		score = strconv.FormatUint(f.CreatedAtMs, 10)
	}
	args := append([]any{f.ID, score}, mediaFields(f)...)
	created, err := putMediaScript.Run(ctx, s.rdb, s.mediaKeys(f.ID), args...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: put media file %s: %w", f.ID, err)
	}
	if created == 0 {
		return fmt.Errorf("redisstore: put media file %s: %w", f.ID, persistence.ErrExists)
	}
	return nil
}

// mediaKeys returns the keys of file id's scripts: its record and its
// unsent index shard, in one hash slot.
func (s *Store) mediaKeys(id string) []string {
	return []string{s.k.mediaFile(id), s.k.unsentMedia(mediaShard(id))}
}

// GetMediaFile implements persistence.Media.
func (s *Store) GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return persistence.MediaFile{}, fmt.Errorf("redisstore: get media file: %w", err)
	}
	defer s.gate.Leave()
	notFound := fmt.Errorf("redisstore: media file %s: %w", id, persistence.ErrNotFound)
	if !persistence.ValidFileID(id) {
		return persistence.MediaFile{}, notFound
	}
	m, err := s.rdb.HGetAll(ctx, s.k.mediaFile(id)).Result()
	if err != nil {
		return persistence.MediaFile{}, fmt.Errorf("redisstore: get media file %s: %w", id, err)
	}
	if len(m) == 0 {
		return persistence.MediaFile{}, notFound
	}
	f, err := decodeMediaFile(id, m)
	if err != nil {
		return persistence.MediaFile{}, fmt.Errorf("redisstore: get media file %s: %w", id, err)
	}
	return f, nil
}

// MarkMediaSent implements persistence.Media with one script run. atMs must
// not be 0, which means "never sent".
func (s *Store) MarkMediaSent(ctx context.Context, id string, atMs uint64) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: mark media sent: %w", err)
	}
	defer s.gate.Leave()
	if atMs == 0 {
		return fmt.Errorf("redisstore: mark media %s sent: at time 0", id)
	}
	if !persistence.ValidFileID(id) {
		return fmt.Errorf("redisstore: media file %s: %w", id, persistence.ErrNotFound)
	}
	found, err := markMediaSentScript.Run(ctx, s.rdb, s.mediaKeys(id), id, strconv.FormatUint(atMs, 10)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: mark media %s sent: %w", id, err)
	}
	if found == 0 {
		return fmt.Errorf("redisstore: media file %s: %w", id, persistence.ErrNotFound)
	}
	return nil
}

// DeleteUnsentMedia implements persistence.Media with one script run.
func (s *Store) DeleteUnsentMedia(ctx context.Context, id string) (persistence.MediaFile, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return persistence.MediaFile{}, fmt.Errorf("redisstore: delete unsent media: %w", err)
	}
	defer s.gate.Leave()
	notFound := fmt.Errorf("redisstore: media file %s: %w", id, persistence.ErrNotFound)
	if !persistence.ValidFileID(id) {
		return persistence.MediaFile{}, notFound
	}
	reply, err := deleteUnsentMediaScript.Run(ctx, s.rdb, s.mediaKeys(id), id).Slice()
	if err != nil {
		return persistence.MediaFile{}, fmt.Errorf("redisstore: delete unsent media %s: %w", id, err)
	}
	bad := fmt.Errorf("redisstore: delete unsent media %s: unexpected reply %v", id, reply)
	if len(reply) == 0 {
		return persistence.MediaFile{}, bad
	}
	switch code, _ := reply[0].(int64); code {
	case 0:
		return persistence.MediaFile{}, notFound
	case 1:
		return persistence.MediaFile{}, fmt.Errorf("redisstore: delete unsent media %s: %w", id, persistence.ErrMediaSent)
	case 2:
		if len(reply) != 2 {
			return persistence.MediaFile{}, bad
		}
		pairs, _ := reply[1].([]any)
		m := make(map[string]string, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			k, _ := pairs[i].(string)
			v, _ := pairs[i+1].(string)
			m[k] = v
		}
		f, err := decodeMediaFile(id, m)
		if err != nil {
			return persistence.MediaFile{}, fmt.Errorf("redisstore: delete unsent media %s: %w", id, err)
		}
		return f, nil
	}
	return persistence.MediaFile{}, bad
}

// UnsentMedia implements persistence.Media, oldest first, in two round
// trips: the head of every index shard in one pipeline, then the records
// of the oldest limit files in another. It reads at most limit ids from
// each of the 256 shards. Nothing needs it atomic: a file sent or deleted
// between the two is left out.
func (s *Store) UnsentMedia(ctx context.Context, beforeMs uint64, limit int) ([]persistence.MediaFile, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: unsent media: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || beforeMs == 0 {
		return nil, nil
	}
	heads := make([]*redis.ZSliceCmd, mediaShards)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range heads {
			heads[i] = p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
				Key:     s.k.unsentMedia(shardName(i)),
				Start:   "-inf",
				Stop:    "(" + strconv.FormatUint(beforeMs, 10),
				ByScore: true,
				Count:   int64(limit),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: unsent media: %w", err)
	}
	var found []redis.Z
	for _, h := range heads {
		found = append(found, h.Val()...)
	}
	slices.SortFunc(found, func(a, b redis.Z) int {
		return cmp.Or(cmp.Compare(a.Score, b.Score), cmp.Compare(a.Member.(string), b.Member.(string)))
	})
	found = found[:min(len(found), limit)]
	if len(found) == 0 {
		return nil, nil
	}
	recs := make([]*redis.MapStringStringCmd, len(found))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range found {
			recs[i] = p.HGetAll(ctx, s.k.mediaFile(z.Member.(string)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: unsent media: %w", err)
	}
	out := make([]persistence.MediaFile, 0, len(found))
	for i, z := range found {
		m := recs[i].Val()
		if len(m) == 0 || m["st"] != "" {
			continue // deleted or sent since the index was read
		}
		f, err := decodeMediaFile(z.Member.(string), m)
		if err != nil {
			return nil, fmt.Errorf("redisstore: unsent media: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// mediaFields returns the fields and values of f's record hash, leaving out
// the id (it is in the key) and empty fields. The owner and CreatedAtMs are
// always there, so a record is never an empty hash; st, the sent time, is
// there only once the file was sent.
func mediaFields(f persistence.MediaFile) []any {
	out := make([]any, 0, 34)
	str := func(name, v string) {
		if v != "" {
			out = append(out, name, v)
		}
	}
	num := func(name string, v int64) {
		if v != 0 {
			out = append(out, name, strconv.FormatInt(v, 10))
		}
	}
	out = append(out, "own", f.Owner, "ct", strconv.FormatUint(f.CreatedAtMs, 10))
	if f.SentAtMs != 0 {
		out = append(out, "st", strconv.FormatUint(f.SentAtMs, 10))
	}
	str("sha", f.SHA256)
	str("blob", f.Blob)
	num("size", f.Size)
	str("mime", f.MIME)
	str("name", f.Name)
	num("w", int64(f.Width))
	num("h", int64(f.Height))
	str("tsha", f.ThumbSHA256)
	str("tblob", f.ThumbBlob)
	num("tsize", f.ThumbSize)
	str("tmime", f.ThumbMIME)
	num("tw", int64(f.ThumbWidth))
	num("th", int64(f.ThumbHeight))
	str("bh", f.Blurhash)
	return out
}

// decodeMediaFile turns a record hash of file id back into a MediaFile.
func decodeMediaFile(id string, m map[string]string) (persistence.MediaFile, error) {
	var errs []error
	num := func(name string, bits int) int64 {
		v, ok := m[name]
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", name, err))
		}
		return n
	}
	unum := func(name string) uint64 {
		v, ok := m[name]
		if !ok {
			return 0
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", name, err))
		}
		return n
	}
	f := persistence.MediaFile{
		ID:          id,
		Owner:       m["own"],
		SHA256:      m["sha"],
		Blob:        m["blob"],
		Size:        num("size", 64),
		MIME:        m["mime"],
		Name:        m["name"],
		Width:       int32(num("w", 32)),
		Height:      int32(num("h", 32)),
		ThumbSHA256: m["tsha"],
		ThumbBlob:   m["tblob"],
		ThumbSize:   num("tsize", 64),
		ThumbMIME:   m["tmime"],
		ThumbWidth:  int32(num("tw", 32)),
		ThumbHeight: int32(num("th", 32)),
		Blurhash:    m["bh"],
		CreatedAtMs: unum("ct"),
		SentAtMs:    unum("st"),
	}
	if f.Owner == "" {
		errs = append(errs, errors.New("no owner"))
	}
	if err := errors.Join(errs...); err != nil {
		return persistence.MediaFile{}, fmt.Errorf("corrupt record of media file %s: %w", id, err)
	}
	return f, nil
}
