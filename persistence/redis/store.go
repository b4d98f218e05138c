// Package redisstore is the actorim store for cluster mode: all imnode
// processes share one Redis primary, so whichever node holds a user grain
// (two may, for a moment, during a membership change) reads and writes the
// same timelines.
//
// Sequence numbers, message ids and deduplication are decided by Lua scripts
// inside Redis, never in Go memory: Redis runs one script at a time, so two
// concurrent Appends from different processes, for the same timeline or the
// same (sender, client msg id), cannot produce a gap, a reused seq or a
// duplicate message.
//
// The store targets a single Redis primary (optionally replicated): its
// scripts touch keys of many users at once, which Redis Cluster does not
// allow. Redis 7.0 or newer is required.
//
// # Durability
//
// Redis must run with appendonly yes and appendfsync always; Open logs a
// warning when it does not. With that setting Redis writes and fsyncs the
// append-only file before it sends any reply, so an acknowledged Append
// survives a crash of any imnode node and of Redis itself, host included.
// It also means a reader never sees an unsynced write: the reply carrying
// it is held back until the write is on disk (the embedded store has to hide
// such writes itself). A script's writes reach the file as one MULTI/EXEC
// block, which Redis drops whole if a crash cuts it short.
//
// Replication is asynchronous: after a failover to a replica, the last
// acknowledged appends can be missing and their seqs handed out again. The
// guarantee above holds for the primary's own disk only.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"actorim/persistence"
	"actorim/persistence/internal/gate"
	"actorim/protos/clientpb"
)

// Options configures a Store. The zero value connects to a local Redis.
type Options struct {
	// Addr is the Redis primary's host:port. Empty means "127.0.0.1:6379".
	Addr string
	// Username and Password authenticate to Redis (AUTH, with ACL users
	// since Redis 6). An empty Username is Redis's default user; an empty
	// Password sends no AUTH.
	Username, Password string
	// TLSConfig, when not nil, connects over TLS with it. Nil: plain TCP.
	TLSConfig *tls.Config
	// DB is the Redis database number.
	DB int
	// Prefix starts every key the store writes, so that several stores (or
	// other applications) can share one Redis. Empty means "actorim:".
	Prefix string
	// Logger receives the warnings of Open. Nil discards them.
	Logger *slog.Logger
	// PoolSize is the maximum number of connections to Redis. Zero means
	// go-redis's default, 10 per GOMAXPROCS.
	PoolSize int
	// Outbox records every append in an outbox stream for an archiver too
	// (see persistence.Outbox and outbox.go). Off, nothing is recorded.
	Outbox bool
	// DedupTTL bounds how long a (sender, client msg id) pair is remembered.
	// Zero, the default, remembers it forever, which is what the product
	// promises: a retry never creates a second message. A positive value
	// bounds the memory dedup records take, and weakens that promise to
	// retries within DedupTTL of the original.
	DedupTTL time.Duration
}

const (
	defaultAddr   = "127.0.0.1:6379"
	defaultPrefix = "actorim:"
)

var _ persistence.Store = (*Store)(nil)

// Store is a persistence.Store on a Redis primary. Create it with Open; it
// is safe for concurrent use.
type Store struct {
	rdb      *redis.Client
	k        keys
	dedupTTL string // in ms, for the append script
	outbox   bool

	// gate, entered first by every method, keeps Close from closing the
	// client under a running call.
	gate gate.Gate

	// Pipelined appends; see batch.go.
	ops          chan *appendOp
	quit         chan struct{}
	batchersDone sync.WaitGroup
}

// Open connects to Redis, checks that it answers and loads the scripts.
func Open(ctx context.Context, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Addr == "" {
		opts.Addr = defaultAddr
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.DedupTTL < 0 {
		return nil, fmt.Errorf("redisstore: negative DedupTTL %v", opts.DedupTTL)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:      opts.Addr,
		Username:  opts.Username,
		Password:  opts.Password,
		TLSConfig: opts.TLSConfig,
		DB:        opts.DB,
		PoolSize:  opts.PoolSize,
		// No automatic retries: an Append whose reply was lost may have been
		// stored, and retried it would come back as a duplicate of itself,
		// so the caller would never push it. The caller retries instead,
		// with the same client msg id, and is told the truth.
		MaxRetries: -1,
		// Let the caller's deadline bound each call.
		ContextTimeoutEnabled: true,
		// Redis 7.0 knows nothing of maintenance notifications.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	s := &Store{
		rdb:      rdb,
		k:        keys{prefix: opts.Prefix},
		dedupTTL: strconv.FormatInt(opts.DedupTTL.Milliseconds(), 10),
		outbox:   opts.Outbox,
	}
	if opts.DedupTTL > 0 && opts.DedupTTL < time.Millisecond {
		s.dedupTTL = "1"
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redisstore: connect to %s: %w", opts.Addr, err)
	}
	for _, sc := range allScripts {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("redisstore: load script (Redis 7.0 or newer is needed): %w", err)
		}
	}
	checkDurability(ctx, rdb, logger, opts.Addr)
	if err := s.indexInternal(ctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redisstore: index internal accounts: %w", err)
	}
	s.startBatchers()
	return s, nil
}

// checkDurability warns when Redis may acknowledge a write it has not
// fsynced yet.
func checkDurability(ctx context.Context, rdb *redis.Client, logger *slog.Logger, addr string) {
	cfg, err := rdb.ConfigGet(ctx, "append*").Result()
	if err != nil {
		logger.Warn("redisstore: cannot read the append-only settings; acknowledged messages survive a Redis crash only with appendonly yes and appendfsync always",
			"addr", addr, "err", err)
		return
	}
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		logger.Warn("redisstore: acknowledged messages can be lost in a Redis crash; run it with appendonly yes and appendfsync always",
			"addr", addr, "appendonly", cfg["appendonly"], "appendfsync", cfg["appendfsync"])
	}
}

// Close implements persistence.Store. It waits for calls in progress;
// calling it again returns nil.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.stopBatchers() // no call is running: the gate waited for them
		if err := s.rdb.Close(); err != nil {
			return fmt.Errorf("redisstore: close: %w", err)
		}
		return nil
	})
}

// CreateAccount implements persistence.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a persistence.Account) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: create account: %w", err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(a.UserID) {
		return fmt.Errorf("redisstore: create account: invalid user id %q", a.UserID)
	}
	created, err := createAccountScript.Run(ctx, s.rdb, []string{s.k.account(a.UserID), s.k.users(), s.k.internal()},
		a.PasswordHash, strconv.FormatUint(a.CreatedAtMs, 10), a.UserID).Int()
	if err != nil {
		return fmt.Errorf("redisstore: create account %q: %w", a.UserID, err)
	}
	if created == 0 {
		return fmt.Errorf("redisstore: account %q: %w", a.UserID, persistence.ErrExists)
	}
	return nil
}

// GetAccount implements persistence.Accounts.
func (s *Store) GetAccount(ctx context.Context, userID string) (persistence.Account, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return persistence.Account{}, fmt.Errorf("redisstore: get account: %w", err)
	}
	defer s.gate.Leave()
	notFound := fmt.Errorf("redisstore: account %q: %w", userID, persistence.ErrNotFound)
	if !persistence.ValidID(userID) {
		return persistence.Account{}, notFound
	}
	v, err := s.rdb.HMGet(ctx, s.k.account(userID), "pw", "ct").Result()
	if err != nil {
		return persistence.Account{}, fmt.Errorf("redisstore: get account %q: %w", userID, err)
	}
	pw, _ := v[0].(string)
	ct, ok := v[1].(string)
	if !ok {
		return persistence.Account{}, notFound
	}
	createdAt, err := strconv.ParseUint(ct, 10, 64)
	if err != nil {
		return persistence.Account{}, fmt.Errorf("redisstore: decode account %q: %w", userID, err)
	}
	return persistence.Account{UserID: userID, PasswordHash: pw, CreatedAtMs: createdAt}, nil
}

// Append implements persistence.Timelines with one script run; see appendScript.
//
// When Append fails for any reason other than a rejection (ErrUnknownUser,
// an invalid request), the message may or may not be stored, for instance
// when the connection broke after Redis ran the script. That is safe: the
// client retries with the same ClientMsgID and gets the stored message back
// as a duplicate. An empty ClientMsgID disables deduplication.
//
// The returned entries share one Message; treat them as read-only.
func (s *Store) Append(ctx context.Context, req *persistence.AppendRequest) (*persistence.AppendResult, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: append: %w", err)
	}
	defer s.gate.Leave()
	msg, keys, args, err := s.appendCall(req)
	if err != nil {
		return nil, err
	}
	reply, err := s.runAppend(ctx, keys, args...)
	if err != nil {
		return nil, fmt.Errorf("redisstore: append: %w", err)
	}
	return appendResult(req, msg, reply)
}

// AppendAll implements persistence.Timelines: the script calls go out in order
// in pipelines from this goroutine, so Redis runs them in order, and their
// writes share its fsyncs.
func (s *Store) AppendAll(ctx context.Context, reqs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error) {
	res, errs := make([]*persistence.AppendResult, len(reqs)), make([]error, len(reqs))
	if err := s.gate.Enter(ctx); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("redisstore: append: %w", err)
		}
		return res, errs
	}
	defer s.gate.Leave()
	msgs := make([]*clientpb.Message, len(reqs))
	var ops []*appendOp
	var idx []int
	for i, req := range reqs {
		msg, keys, args, err := s.appendCall(req)
		if err != nil {
			errs[i] = err
			continue
		}
		msgs[i] = msg
		ops = append(ops, &appendOp{keys: keys, args: args})
		idx = append(idx, i)
	}
	for start := 0; start < len(ops); start += maxPipeline {
		s.exec(ops[start:min(start+maxPipeline, len(ops))])
	}
	for j, op := range ops {
		i := idx[j]
		if op.err != nil {
			errs[i] = fmt.Errorf("redisstore: append: %w", op.err)
			continue
		}
		res[i], errs[i] = appendResult(reqs[i], msgs[i], op.reply)
	}
	return res, errs
}

// appendCall builds the append script call of req.
func (s *Store) appendCall(req *persistence.AppendRequest) (*clientpb.Message, []string, []any, error) {
	if err := persistence.CheckAppend(req); err != nil {
		return nil, nil, nil, fmt.Errorf("redisstore: %w", err)
	}
	msg := persistence.CopyMessage(req.Message)
	body, err := msg.MarshalVT()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("redisstore: append: encode message: %w", err)
	}
	conv := req.Message.ConversationId
	keys := make([]string, 0, 2+3*len(req.Timelines))
	keys = append(keys, s.k.meta())
	for _, u := range req.Timelines {
		keys = append(keys, s.k.account(u), s.k.timeline(u), s.k.conversation(u, conv))
	}
	if req.ClientMsgID != "" {
		keys = append(keys, s.k.dedup(req.Sender, req.ClientMsgID))
	}
	keys, args := s.withOutbox(keys, []any{body, s.dedupTTL}, req.Timelines)
	return msg, keys, args, nil
}

// appendResult interprets the append script's reply.
func appendResult(req *persistence.AppendRequest, msg *clientpb.Message, reply []any) (*persistence.AppendResult, error) {
	bad := fmt.Errorf("redisstore: append: unexpected reply %v", reply)
	if len(reply) < 2 {
		return nil, bad
	}
	code, _ := reply[0].(int64)
	switch code {
	case 0:
		if len(reply) != 3+len(req.Timelines) {
			return nil, bad
		}
		id, _ := reply[1].(int64)
		at, _ := reply[2].(int64)
		msg.Id, msg.SentAtMs = uint64(id), uint64(at)
		res := persistence.NewResult(msg, len(req.Timelines))
		for i, e := range res.Entries {
			seq, _ := reply[3+i].(int64)
			e.Seq = uint64(seq)
		}
		return res, nil
	case 1:
		member, ok := reply[1].(string)
		if !ok {
			return nil, bad
		}
		e, err := decodeEntry(member)
		if err != nil {
			return nil, fmt.Errorf("redisstore: append: original of duplicate: %w", err)
		}
		return &persistence.AppendResult{Entries: []*clientpb.Entry{e}, Duplicate: true}, nil
	case 2:
		i, _ := reply[1].(int64)
		if i < 1 || int(i) > len(req.Timelines) {
			return nil, bad
		}
		return nil, fmt.Errorf("redisstore: append to %q: %w", req.Timelines[i-1], persistence.ErrUnknownUser)
	case 3:
		return nil, fmt.Errorf("redisstore: append: duplicate of message %v (client msg id %q of %q) is in none of the requested timelines",
			reply[1], req.ClientMsgID, req.Sender)
	}
	return nil, bad
}

// ReadTimeline implements persistence.TimelineReader.
func (s *Store) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: read timeline: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || !persistence.ValidID(userID) {
		return nil, nil
	}
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key:     s.k.timeline(userID),
		Start:   "(" + strconv.FormatUint(afterSeq, 10),
		Stop:    "+inf",
		ByScore: true,
		Count:   int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read timeline %q: %w", userID, err)
	}
	out, err := decodeEntries(members)
	if err != nil {
		return nil, fmt.Errorf("redisstore: read timeline %q: %w", userID, err)
	}
	return out, nil
}

// LastSeq implements persistence.TimelineReader.
func (s *Store) LastSeq(ctx context.Context, userID string) (uint64, error) {
	return s.accountCounter(ctx, userID, "seq", "last seq")
}

// accountCounter reads a counter of user's account hash (0 when it is
// missing): the timeline's last seq or its trim floor.
func (s *Store) accountCounter(ctx context.Context, userID, field, what string) (uint64, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return 0, fmt.Errorf("redisstore: %s: %w", what, err)
	}
	defer s.gate.Leave()
	if !persistence.ValidID(userID) {
		return 0, nil
	}
	n, err := s.rdb.HGet(ctx, s.k.account(userID), field).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: %s of %q: %w", what, userID, err)
	}
	return n, nil
}

// ReadConversation implements persistence.TimelineReader in one script run: the
// index gives the seqs, newest first, and each is looked up in the timeline.
func (s *Store) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: read conversation: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || !persistence.ValidID(userID) || !persistence.ValidID(conversationID) {
		return nil, nil
	}
	bound := "+inf"
	if beforeSeq != 0 {
		bound = "(" + strconv.FormatUint(beforeSeq, 10)
	}
	members, err := readConversationScript.Run(ctx, s.rdb,
		[]string{s.k.conversation(userID, conversationID), s.k.timeline(userID)},
		bound, limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read conversation %q of %q: %w", conversationID, userID, err)
	}
	out, err := decodeEntries(members)
	if err != nil {
		return nil, fmt.Errorf("redisstore: read conversation %q of %q: %w", conversationID, userID, err)
	}
	return out, nil
}
