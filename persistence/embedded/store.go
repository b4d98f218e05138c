// Package embedded is actorim's default single-node store, kept in a Pebble
// database in a local directory.
//
// One committer goroutine owns every write. Concurrent Appends queue up while
// it commits; it then takes them as one group, decides all their sequence
// numbers, message ids and deduplication in order, writes them in one Pebble
// batch and pays a single fsync for the lot. Because only the committer
// decides, its in-memory counters are authoritative, and because a batch is
// atomic, readers never see a gap. Reads go to Pebble directly.
//
// The committer is the bottleneck, so work that needs no decision happens in
// the calling goroutine: marshalling the message, and looking up its
// deduplication key. A lookup that misses is only a hint, since the same key
// may be committed right after; the caller notes how many batches had
// committed when it looked, and the committer, which remembers the keys of
// its last few batches, checks just those (see Store.recent).
package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/persistence/internal/gate"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives Pebble's errors at error level and its routine chatter
	// at debug level. Nil discards everything.
	Logger *slog.Logger
	// CacheBytes sizes Pebble's block cache, which serves reads of data that
	// left the memtable. Zero means 64 MiB. The memtables (2 x 32 MiB) come
	// on top of it.
	CacheBytes int64
	// MaxBatch is how many queued operations the committer adds to the one it
	// is woken for before committing them together. Zero means 256.
	MaxBatch int
	// Outbox records every append in an outbox for an archiver too (see
	// persistence.Outbox). Off, nothing is recorded.
	Outbox bool
}

const (
	defaultCacheBytes = 64 << 20
	defaultMaxBatch   = 256
	// memTableBytes is larger than Pebble's 4 MiB default so that a burst of
	// appends is not throttled by memtable flushes.
	memTableBytes = 32 << 20
	// maxCachedUsers bounds each per-user map of the committer; past it the
	// map is cleared and refilled from disk on demand.
	maxCachedUsers = 1 << 20
	// ctxCheckEvery is how many entries a read decodes between context checks.
	ctxCheckEvery = 64
	// defaultRecentBatches is how many committed batches the committer
	// remembers dedup keys of. An op that waited longer than that after its
	// caller's lookup is checked on disk again.
	defaultRecentBatches = 64
)

var _ persistence.Store = (*Store)(nil)

// Store is a persistence.Store on a local Pebble database. Create it with Open.
type Store struct {
	db  *pebble.DB
	log *slog.Logger
	// commit writes a batch durably; tests replace it to inject failures.
	commit        func(*pebble.Batch) error
	maxBatch      int
	recentBatches uint64

	// gen counts committed batches. It is incremented after a batch's writes
	// are visible, so a read that follows a load of gen sees every batch up
	// to that number.
	gen atomic.Uint64

	ops     chan *op
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has exited

	// gate keeps Close from closing the database under a running read.
	// Appends and account creations go through the committer instead,
	// which Close stops.
	gate gate.Gate

	// floors maps each user written by the batch being committed to its
	// first seq in that batch. Pebble makes a batch readable before its fsync
	// completes; readers hide entries at or past a floor, so that nobody ever
	// sees (and pushes to a device) an entry that a crash could still undo and
	// a restart would reuse the seq of.
	floorMu sync.RWMutex
	floors  map[string]uint64

	sessions sessions
	ob       outbox
	media    mediaLocks // see media.go
	hq       hookQueue  // see hooks.go
	// dirMu orders the Directory's writes (directory.go).
	dirMu sync.Mutex

	// The rest belongs to the committer goroutine.

	nextMsgID  uint64 // last msg id handed out
	lastSentAt uint64
	// seqs holds the last seq of timelines the committer has touched,
	// including writes of the batch being built.
	seqs map[string]uint64
	// accounts caches users known to have an account; only an erasure,
	// which the committer stages itself, deletes one.
	accounts map[string]struct{}
	// erased holds the users the batch being built erases: their account
	// is still on disk until it commits.
	erased map[string]struct{}
	// Per batch: accounts created and deduplication keys written by the batch
	// being built, which are not on disk yet.
	newAccounts map[string]struct{}
	pending     map[dedupID]*op
	batchErr    error
	key, val    []byte // scratch
	// recent holds the dedup keys written by the last recentBatches batches;
	// recentByGen[gen%recentBatches] lists those of batch gen, to forget them.
	recent      map[dedupID]recentMsg
	recentByGen [][]dedupID
}

type dedupID struct{ sender, clientMsgID string }

// recentMsg records where a recently committed message landed in its first
// timeline. It holds no message, to keep the committer's memory small.
type recentMsg struct {
	gen  uint64
	user string
	seq  uint64
}

// hooks let tests reach into the committer.
type hooks struct {
	commit        func(*pebble.Batch) error
	recentBatches int
}

type opKind uint8

const (
	opAppend opKind = iota
	opCreateAccount
	opErase
)

// op is one queued write. The caller prepares it, the committer fills in the
// outcome and signals done.
type op struct {
	kind    opKind
	req     *persistence.AppendRequest
	account persistence.Account
	// erase is the user an opErase erases.
	erase string
	// msg is the stored copy of req.Message; the committer sets its Id and
	// SentAtMs. body is msg marshalled without those two fields.
	msg  *clientpb.Message
	body []byte
	// checkedGen is s.gen when the caller found no dedup record on disk;
	// checked tells whether it looked.
	checkedGen uint64
	checked    bool
	key        []byte // the caller's scratch

	res *persistence.AppendResult
	err error
	// staged is set when the op's outcome depends on the batch committing.
	staged bool
	done   chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

func getOp() *op { return opPool.Get().(*op) }

// putOp recycles o. Only ops whose done signal has been received may be
// recycled: an abandoned op may still be written to by the committer.
func putOp(o *op) {
	*o = op{done: o.done, body: o.body[:0], key: o.key[:0]}
	opPool.Put(o)
}

// Open opens (creating if needed) the store in dir. Pebble locks the
// directory, so one dir serves one Store at a time.
func Open(dir string, opts Options) (*Store, error) {
	return open(dir, opts, hooks{})
}

func open(dir string, opts Options, h hooks) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = defaultCacheBytes
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}

	// Pebble reserves the memtables' memory (the one being written and the
	// one being flushed) out of the block cache; without adding it, 32 MiB
	// memtables would leave a 64 MiB cache holding no blocks at all, and every
	// dedup lookup would read filter and index blocks from the files.
	cache := pebble.NewCache(cacheBytes + 2*memTableBytes)
	defer cache.Unref() // the DB holds its own reference
	popts := &pebble.Options{
		Cache:              cache,
		Logger:             pebbleLogger{log: logger.With("component", "pebble")},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableBytes,
	}
	// Nearly every Append looks up a dedup key that does not exist; bloom
	// filters answer most of those misses without reading data blocks.
	// Deeper levels inherit L0's policy.
	popts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if h.recentBatches <= 0 {
		h.recentBatches = defaultRecentBatches
	}
	s := &Store{
		db:            db,
		log:           logger,
		commit:        h.commit,
		maxBatch:      maxBatch,
		recentBatches: uint64(h.recentBatches),
		recent:        make(map[dedupID]recentMsg),
		recentByGen:   make([][]dedupID, h.recentBatches),
		ops:           make(chan *op, maxBatch),
		quit:          make(chan struct{}),
		stopped:       make(chan struct{}),
		seqs:          make(map[string]uint64),
		accounts:      make(map[string]struct{}),
		newAccounts:   make(map[string]struct{}),
		erased:        make(map[string]struct{}),
		pending:       make(map[dedupID]*op),
		floors:        make(map[string]uint64),
	}
	if s.commit == nil {
		s.commit = func(b *pebble.Batch) error { return b.Commit(pebble.Sync) }
	}
	if s.nextMsgID, err = s.loadMsgID(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.openOutbox(opts.Outbox); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// CreateAccount implements persistence.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a persistence.Account) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: create account: %w", err)
	}
	if !persistence.ValidID(a.UserID) {
		return fmt.Errorf("embedded: create account: invalid user id %q", a.UserID)
	}
	o := getOp()
	o.kind = opCreateAccount
	o.account = a
	if err := s.do(ctx, o); err != nil {
		return fmt.Errorf("embedded: create account %q: %w", a.UserID, err)
	}
	err := o.err
	putOp(o)
	return err
}

// GetAccount implements persistence.Accounts.
func (s *Store) GetAccount(ctx context.Context, userID string) (persistence.Account, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return persistence.Account{}, fmt.Errorf("embedded: get account: %w", err)
	}
	defer s.gate.Leave()
	v, closer, err := s.db.Get(accountKey(nil, userID))
	if errors.Is(err, pebble.ErrNotFound) {
		return persistence.Account{}, fmt.Errorf("embedded: account %q: %w", userID, persistence.ErrNotFound)
	}
	if err != nil {
		return persistence.Account{}, fmt.Errorf("embedded: get account %q: %w", userID, err)
	}
	var rec storepb.AccountRecord
	err = proto.Unmarshal(v, &rec)
	_ = closer.Close()
	if err != nil {
		return persistence.Account{}, fmt.Errorf("embedded: decode account %q: %w", userID, err)
	}
	return persistence.Account{UserID: userID, PasswordHash: rec.PasswordHash, CreatedAtMs: rec.CreatedAtMs}, nil
}

// Append implements persistence.Timelines.
//
// If ctx ends while the message is queued or being committed, Append returns
// the context's error but the message may still be stored. That is safe: the
// client retries with the same ClientMsgID and gets the stored message back
// as a duplicate. An empty ClientMsgID disables deduplication.
//
// The returned entries share one Message; treat them as read-only.
func (s *Store) Append(ctx context.Context, req *persistence.AppendRequest) (*persistence.AppendResult, error) {
	o, err := s.prepareAppend(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := s.do(ctx, o); err != nil {
		return nil, fmt.Errorf("embedded: append: %w", err)
	}
	res, err := o.res, o.err
	putOp(o)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendAll implements persistence.Timelines. The ops enter the committer's
// queue in order from this one goroutine, so they are staged in order, in as
// few batches (fsyncs) as the committer makes of them.
func (s *Store) AppendAll(ctx context.Context, reqs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error) {
	res, errs := make([]*persistence.AppendResult, len(reqs)), make([]error, len(reqs))
	ops := make([]*op, len(reqs))
	for i, req := range reqs {
		o, err := s.prepareAppend(ctx, req)
		if err == nil {
			err = s.enqueue(ctx, o)
			if err != nil {
				putOp(o)
				err = fmt.Errorf("embedded: append: %w", err)
			}
		}
		if err != nil {
			errs[i] = err
			continue
		}
		ops[i] = o
	}
	for i, o := range ops {
		if o == nil {
			continue
		}
		if err := s.wait(ctx, o); err != nil {
			errs[i] = fmt.Errorf("embedded: append: %w", err)
			continue // the committer may still hold o: not reused
		}
		res[i], errs[i] = o.res, o.err
		putOp(o)
	}
	return res, errs
}

// prepareAppend checks req and builds its op, deduplication pre-checked.
func (s *Store) prepareAppend(ctx context.Context, req *persistence.AppendRequest) (*op, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: append: %w", err)
	}
	if err := persistence.CheckAppend(req); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	o, err := newAppendOp(req)
	if err != nil {
		return nil, err
	}
	if req.ClientMsgID != "" {
		gen := s.gen.Load()
		absent, err := s.precheck(ctx, o)
		if err != nil {
			putOp(o)
			return nil, err
		}
		// A record that is found may be in a batch whose fsync is still
		// running (Pebble shows writes before they are synced); the
		// committer, which sees only synced batches, decides on it.
		o.checked, o.checkedGen = absent, gen
	}
	return o, nil
}

// newAppendOp prepares everything about req that needs no decision.
func newAppendOp(req *persistence.AppendRequest) (*op, error) {
	o := getOp()
	o.kind = opAppend
	o.req = req
	o.msg = persistence.CopyMessage(req.Message)
	// Marshalling here, before the id and time are known, keeps the work off
	// the committer; it puts those two fields in front.
	body, err := proto.MarshalOptions{}.MarshalAppend(o.body[:0], o.msg)
	if err != nil {
		putOp(o)
		return nil, fmt.Errorf("embedded: append: encode message: %w", err)
	}
	o.body = body
	o.res = persistence.NewResult(o.msg, len(req.Timelines))
	return o, nil
}

// precheck reports, from the calling goroutine, whether o's dedup record is
// absent from disk.
func (s *Store) precheck(ctx context.Context, o *op) (absent bool, err error) {
	if err := s.gate.Enter(ctx); err != nil {
		return false, fmt.Errorf("embedded: append: %w", err)
	}
	defer s.gate.Leave()
	o.key = dedupKey(o.key[:0], o.req.Sender, o.req.ClientMsgID)
	_, closer, err := s.db.Get(o.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("embedded: append: read dedup record: %w", err)
	}
	_ = closer.Close()
	return false, nil
}

// do hands o to the committer and waits for its outcome in o.res and o.err.
// It returns an error only when the outcome is unknown to the caller.
func (s *Store) do(ctx context.Context, o *op) error {
	if err := s.enqueue(ctx, o); err != nil {
		return err
	}
	return s.wait(ctx, o)
}

// enqueue hands o to the committer.
func (s *Store) enqueue(ctx context.Context, o *op) error {
	select {
	case <-s.quit:
		return persistence.ErrClosed
	default:
	}
	select {
	case s.ops <- o:
		return nil
	case <-s.quit:
		return persistence.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for the committer's answer to an enqueued o.
func (s *Store) wait(ctx context.Context, o *op) error {
	select {
	case <-o.done:
		return nil
	case <-ctx.Done():
		// The op may still commit; see Append.
		return ctx.Err()
	case <-s.stopped:
		// The committer may have answered just before it stopped; after
		// that it answers nothing, and o may sit unseen in the queue.
		select {
		case <-o.done:
			return nil
		default:
			return persistence.ErrClosed
		}
	}
}

// ReadTimeline implements persistence.TimelineReader.
func (s *Store) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: read timeline: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || afterSeq == math.MaxUint64 || !persistence.ValidID(userID) {
		return nil, nil
	}
	prefix := timelinePrefix(nil, userID)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: timelineKey(nil, userID, afterSeq+1),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: read timeline %q: %w", userID, err)
	}
	bound := s.durableBelow(userID)
	out := make([]*clientpb.Entry, 0, min(limit, 128))
	for ok := it.First(); ok && len(out) < limit && seqOf(it.Key()) < bound; ok = it.Next() {
		if len(out)%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, fmt.Errorf("embedded: read timeline: %w", err)
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("embedded: read timeline %q: %w", userID, err)
		}
		e := new(clientpb.Entry)
		if err := proto.Unmarshal(v, e); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("embedded: decode entry %d of %q: %w", seqOf(it.Key()), userID, err)
		}
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("embedded: read timeline %q: %w", userID, err)
	}
	return out, nil
}

// LastSeq implements persistence.TimelineReader.
func (s *Store) LastSeq(ctx context.Context, userID string) (uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("embedded: last seq: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(userID) {
		return 0, nil
	}
	return s.lastSeq(userID)
}

// lastSeq reads the newest seq of user's timeline from disk.
func (s *Store) lastSeq(userID string) (uint64, error) {
	prefix := timelinePrefix(nil, userID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("embedded: last seq of %q: %w", userID, err)
	}
	var seq uint64
	if it.Last() {
		seq = min(seqOf(it.Key()), s.durableBelow(userID)-1)
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("embedded: last seq of %q: %w", userID, err)
	}
	return seq, nil
}

// ReadConversation implements persistence.TimelineReader.
func (s *Store) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: read conversation: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || !persistence.ValidID(userID) || !persistence.ValidID(conversationID) {
		return nil, nil
	}
	prefix := convPrefix(nil, userID, conversationID)
	upper := prefixEnd(prefix)
	if beforeSeq != 0 {
		upper = convKey(nil, userID, conversationID, beforeSeq)
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("embedded: read conversation %q of %q: %w", conversationID, userID, err)
	}
	bound := s.durableBelow(userID)
	out := make([]*clientpb.Entry, 0, min(limit, 64))
	var key []byte
	for ok := it.Last(); ok && len(out) < limit; ok = it.Prev() {
		if seqOf(it.Key()) >= bound {
			continue
		}
		if len(out)%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, fmt.Errorf("embedded: read conversation: %w", err)
			}
		}
		seq := seqOf(it.Key())
		key = timelineKey(key[:0], userID, seq)
		e, err := s.getEntry(key)
		if err == nil && e == nil {
			err = fmt.Errorf("entry %d indexed but missing", seq)
		}
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("embedded: read conversation %q of %q: %w", conversationID, userID, err)
		}
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("embedded: read conversation %q of %q: %w", conversationID, userID, err)
	}
	return out, nil
}

// getEntry reads the timeline entry at key; nil when there is none.
func (s *Store) getEntry(key []byte) (*clientpb.Entry, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := new(clientpb.Entry)
	err = proto.Unmarshal(v, e)
	_ = closer.Close()
	if err != nil {
		return nil, fmt.Errorf("decode entry: %w", err)
	}
	return e, nil
}

// Close implements persistence.Store. Queued appends fail with ErrClosed;
// calling Close again returns nil.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		close(s.quit)
		<-s.stopped
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("embedded: close: %w", err)
		}
		return nil
	})
}

// run is the committer goroutine.
func (s *Store) run() {
	defer close(s.stopped)
	ops := make([]*op, 0, s.maxBatch+1)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var last time.Time // end of the previous commit
	for {
		var first *op
		select {
		case <-s.quit:
			s.failQueued()
			return
		case first = <-s.ops:
		}
		ops = append(ops, first)
		s.gather(&ops, linger, time.Since(last) < busyWindow)
		s.commitOps(ops)
		last = time.Now()
		clear(ops) // let answered ops be collected or recycled
		ops = ops[:0]
	}
}

// Group commit tuning. While the committer is busy (it committed within
// busyWindow), a batch that is not full waits up to lingerFor for more ops:
// every fsync costs CPU in the kernel, and under load a few hundred
// microseconds buy batches several times larger. An idle store commits at once.
const (
	busyWindow = 2 * time.Millisecond
	lingerFor  = 500 * time.Microsecond
)

// gather adds queued ops to *ops without blocking, then, if the committer is
// busy and the batch is small, waits briefly for more.
func (s *Store) gather(ops *[]*op, linger *time.Timer, busy bool) {
	drain := func() {
		for len(*ops) <= s.maxBatch {
			select {
			case o := <-s.ops:
				*ops = append(*ops, o)
			default:
				return
			}
		}
	}
	drain()
	if !busy || len(*ops) > s.maxBatch/2 {
		return
	}
	linger.Reset(lingerFor)
	defer linger.Stop()
	for len(*ops) <= s.maxBatch {
		select {
		case o := <-s.ops:
			*ops = append(*ops, o)
			drain()
		case <-linger.C:
			return
		case <-s.quit:
			return
		}
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case o := <-s.ops:
			o.res, o.err = nil, persistence.ErrClosed
			o.done <- struct{}{}
		default:
			return
		}
	}
}

// commitOps stages ops in order into one batch, commits it durably and
// answers every op.
func (s *Store) commitOps(ops []*op) {
	if len(s.seqs) > maxCachedUsers {
		clear(s.seqs)
	}
	if len(s.accounts) > maxCachedUsers {
		clear(s.accounts)
	}
	clear(s.newAccounts)
	clear(s.erased)
	clear(s.pending)
	s.batchErr = nil

	now := uint64(time.Now().UnixMilli())
	// Keep SentAtMs in msg id order even if the clock steps back.
	now = max(now, s.lastSentAt)
	s.lastSentAt = now
	firstID := s.nextMsgID
	firstOutbox := s.ob.next

	b := s.db.NewBatch()
	for _, o := range ops {
		switch o.kind {
		case opCreateAccount:
			s.stageAccount(b, o)
		case opAppend:
			s.stageAppend(b, o, now)
		case opErase:
			s.stageErase(b, o)
		}
	}
	if s.nextMsgID != firstID {
		s.set(b, msgIDKey, binary.BigEndian.AppendUint64(s.val[:0], s.nextMsgID))
	}
	s.persistOutboxID(b, firstOutbox)

	wrote := !b.Empty()
	err := s.batchErr
	if err == nil && wrote {
		s.setFloors(ops)
		s.ob.floor.Store(firstOutbox + 1)
		err = s.commit(b)
		s.ob.floor.Store(math.MaxUint64)
		s.floorMu.Lock()
		clear(s.floors)
		s.floorMu.Unlock()
	}
	_ = b.Close()
	if err != nil {
		err = fmt.Errorf("embedded: commit: %w", err)
		s.log.Error("commit failed", "ops", len(ops), "err", err)
		// The staged seqs were not stored: reload them from disk so that
		// none is skipped or reused. Msg ids only need to be unique, so the
		// counter keeps going.
		clear(s.seqs)
		for _, o := range ops {
			if o.staged {
				o.res, o.err = nil, err
			}
		}
	} else {
		for u := range s.newAccounts {
			s.accounts[u] = struct{}{}
		}
		if wrote {
			s.remember(s.gen.Add(1))
		}
	}
	for _, o := range ops {
		o.done <- struct{}{}
	}
}

// setFloors publishes, for every timeline the batch writes, the first seq
// it writes there; see Store.floors.
func (s *Store) setFloors(ops []*op) {
	s.floorMu.Lock()
	defer s.floorMu.Unlock()
	for _, o := range ops {
		if o.kind != opAppend || !o.staged || o.err != nil || o.res == nil || o.res.Duplicate {
			continue
		}
		for i, u := range o.req.Timelines {
			seq := o.res.Entries[i].Seq
			if cur, ok := s.floors[u]; !ok || seq < cur {
				s.floors[u] = seq
			}
		}
	}
}

// durableBelow returns the first seq of userID's timeline that may not be
// durable yet (math.MaxUint64 when all readable entries are). Call it after
// creating the iterator whose results it bounds.
func (s *Store) durableBelow(userID string) uint64 {
	s.floorMu.RLock()
	defer s.floorMu.RUnlock()
	if f, ok := s.floors[userID]; ok {
		return f
	}
	return math.MaxUint64
}

// set adds a write to b; the first failure fails the whole batch, because
// the op it belongs to may be half staged.
func (s *Store) set(b *pebble.Batch, key, value []byte) {
	if err := b.Set(key, value, nil); err != nil && s.batchErr == nil {
		s.batchErr = err
	}
}

func (s *Store) stageAccount(b *pebble.Batch, o *op) {
	id := o.account.UserID
	exists, err := s.hasAccount(id)
	if err != nil {
		o.err = err
		return
	}
	if exists {
		o.err = fmt.Errorf("embedded: account %q: %w", id, persistence.ErrExists)
		return
	}
	rec := storepb.AccountRecord{PasswordHash: o.account.PasswordHash, CreatedAtMs: o.account.CreatedAtMs}
	v, err := proto.MarshalOptions{}.MarshalAppend(s.val[:0], &rec)
	if err != nil {
		o.err = fmt.Errorf("embedded: encode account %q: %w", id, err)
		return
	}
	s.val = v
	s.key = accountKey(s.key[:0], id)
	s.set(b, s.key, v)
	s.newAccounts[id] = struct{}{}
	o.staged = true
}

// hasAccount reports whether user has an account, including one created by
// the batch being built.
func (s *Store) hasAccount(user string) (bool, error) {
	if _, ok := s.accounts[user]; ok {
		return true, nil
	}
	if _, ok := s.newAccounts[user]; ok {
		return true, nil
	}
	if _, ok := s.erased[user]; ok {
		return false, nil
	}
	s.key = accountKey(s.key[:0], user)
	_, closer, err := s.db.Get(s.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("embedded: read account %q: %w", user, err)
	}
	_ = closer.Close()
	s.accounts[user] = struct{}{}
	return true, nil
}

func (s *Store) stageAppend(b *pebble.Batch, o *op, now uint64) {
	req := o.req
	if req.ClientMsgID != "" && s.settleDuplicate(o) {
		return
	}

	// Validate everything before assigning anything, so that a rejected op
	// consumes no seq and no msg id.
	for _, u := range req.Timelines {
		ok, err := s.hasAccount(u)
		if err == nil && !ok {
			err = fmt.Errorf("embedded: append to %q: %w", u, persistence.ErrUnknownUser)
		}
		if err == nil {
			err = s.loadSeq(u)
		}
		if err != nil {
			o.err = err
			return
		}
	}

	s.nextMsgID++
	o.msg.Id = s.nextMsgID
	o.msg.SentAtMs = now
	// The stored message is the two assigned fields followed by the body the
	// caller marshalled; protobuf accepts fields in any order.
	var headBuf [2 * (1 + binary.MaxVarintLen64)]byte
	head := protowire.AppendTag(headBuf[:0], 1, protowire.VarintType)
	head = protowire.AppendVarint(head, o.msg.Id)
	head = protowire.AppendTag(head, 8, protowire.VarintType)
	head = protowire.AppendVarint(head, now)
	msgLen := uint64(len(head) + len(o.body))

	conv := req.Message.ConversationId
	for i, u := range req.Timelines {
		seq := s.seqs[u] + 1
		s.seqs[u] = seq
		o.res.Entries[i].Seq = seq

		v := protowire.AppendTag(s.val[:0], 1, protowire.VarintType)
		v = protowire.AppendVarint(v, seq)
		v = protowire.AppendTag(v, 2, protowire.BytesType)
		v = protowire.AppendVarint(v, msgLen)
		v = append(v, head...)
		v = append(v, o.body...)
		s.val = v
		s.key = timelineKey(s.key[:0], u, seq)
		s.set(b, s.key, v)
		s.key = convKey(s.key[:0], u, conv, seq)
		s.set(b, s.key, nil)
	}
	if req.ClientMsgID != "" {
		v := protowire.AppendTag(s.val[:0], 1, protowire.VarintType)
		v = protowire.AppendVarint(v, o.res.Entries[0].Seq)
		v = protowire.AppendTag(v, 2, protowire.VarintType)
		v = protowire.AppendVarint(v, o.msg.Id)
		s.val = v
		s.key = dedupKey(s.key[:0], req.Sender, req.ClientMsgID)
		s.set(b, s.key, v)
		s.pending[dedupID{req.Sender, req.ClientMsgID}] = o
	}
	s.stageOutbox(b, o, now, head)
	o.staged = true
}

// settleDuplicate answers o when its (Sender, ClientMsgID) was appended
// before, by this batch or an earlier one, and reports whether it did.
func (s *Store) settleDuplicate(o *op) bool {
	did := dedupID{o.req.Sender, o.req.ClientMsgID}
	if orig, ok := s.pending[did]; ok {
		// A retry racing its original into the same batch.
		o.res = &persistence.AppendResult{
			Duplicate: true,
			Entries: []*clientpb.Entry{{
				Seq:  orig.res.Entries[0].Seq,
				Item: &clientpb.Entry_Message{Message: orig.msg},
			}},
		}
		o.staged = true
		return true
	}
	if r, ok := s.recent[did]; ok {
		s.key = timelineKey(s.key[:0], r.user, r.seq)
		e, err := s.getEntry(s.key)
		if err == nil && e == nil {
			err = fmt.Errorf("entry %d of %q missing", r.seq, r.user)
		}
		if err != nil {
			o.err = fmt.Errorf("embedded: read original of duplicate: %w", err)
		} else {
			o.res = &persistence.AppendResult{Entries: []*clientpb.Entry{e}, Duplicate: true}
		}
		return true
	}
	// The caller's lookup saw every batch up to checkedGen, and recent
	// covers the batches since, unless too many committed meanwhile.
	if o.checked && s.gen.Load()-o.checkedGen <= s.recentBatches {
		return false
	}
	dup, err := s.findDuplicate(o.req)
	if err != nil || dup != nil {
		o.res, o.err = dup, err
		return true
	}
	return false
}

// remember records the dedup keys of the batch just committed as batch gen,
// forgetting those of the batch that leaves the window.
func (s *Store) remember(gen uint64) {
	slot := &s.recentByGen[gen%s.recentBatches]
	for _, did := range *slot {
		if r, ok := s.recent[did]; ok && r.gen == gen-s.recentBatches {
			delete(s.recent, did)
		}
	}
	*slot = (*slot)[:0]
	for did, o := range s.pending {
		s.recent[did] = recentMsg{gen: gen, user: o.req.Timelines[0], seq: o.res.Entries[0].Seq}
		*slot = append(*slot, did)
	}
}

// findDuplicate returns the earlier append's result when (Sender,
// ClientMsgID) is already on disk, nil otherwise.
//
// The dedup record names the seq in the first timeline of the original
// request but not that timeline's user; a retry repeats the request, so the
// entry is looked for in the retry's timelines, first one first.
func (s *Store) findDuplicate(req *persistence.AppendRequest) (*persistence.AppendResult, error) {
	s.key = dedupKey(s.key[:0], req.Sender, req.ClientMsgID)
	v, closer, err := s.db.Get(s.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: read dedup record: %w", err)
	}
	var rec storepb.DedupRecord
	err = proto.Unmarshal(v, &rec)
	_ = closer.Close()
	if err != nil {
		return nil, fmt.Errorf("embedded: decode dedup record: %w", err)
	}
	for _, u := range req.Timelines {
		s.key = timelineKey(s.key[:0], u, rec.Seq)
		e, err := s.getEntry(s.key)
		if err != nil {
			return nil, fmt.Errorf("embedded: read original of duplicate: %w", err)
		}
		if e.GetMessage().GetId() == rec.MsgId {
			return &persistence.AppendResult{Entries: []*clientpb.Entry{e}, Duplicate: true}, nil
		}
	}
	return nil, fmt.Errorf("embedded: duplicate of message %d (client msg id %q of %q) is in none of the requested timelines",
		rec.MsgId, req.ClientMsgID, req.Sender)
}

// loadSeq makes sure s.seqs knows user's last seq.
func (s *Store) loadSeq(user string) error {
	if _, ok := s.seqs[user]; ok {
		return nil
	}
	seq, err := s.lastSeq(user)
	if err != nil {
		return err
	}
	s.seqs[user] = seq
	return nil
}

func (s *Store) loadMsgID() (uint64, error) {
	v, closer, err := s.db.Get(msgIDKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("embedded: read msg id: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("embedded: corrupt msg id record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// pebbleLogger sends Pebble's log lines to slog, demoting its routine
// informational messages to debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf must not return: Pebble calls it when carrying on could corrupt
// data.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic("pebble: " + msg)
}
