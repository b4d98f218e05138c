package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/persistence/storetest"
	"actorim/protos/clientpb"
)

// shared is the redis-server every test uses unless it needs its own; tests
// keep apart by key prefix.
var shared *redisServer

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: redis-server is not installed; these tests need a real one. Run: deploy/local/redis.sh install")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "redisstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	shared, err = startRedisAnyPort(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start redis-server:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	shared.kill()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// redisServer is a redis-server child process, configured as production
// should be: append-only file, fsynced before every reply.
type redisServer struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// startRedisAnyPort starts a server in dir on a free loopback port, with
// extra arguments for redis-server if any.
func startRedisAnyPort(dir string, extra ...string) (*redisServer, error) {
	var err error
	for range 5 { // another process may grab the port between probe and start
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		var r *redisServer
		if r, err = startRedis(dir, port, extra...); err == nil {
			return r, nil
		}
	}
	return nil, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts redis-server on port with its data in dir, and extra
// arguments if any, and waits until it answers PING.
func startRedis(dir string, port int, extra ...string) (*redisServer, error) {
	cmd := exec.Command("redis-server", append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}, extra...)...)
	// Do not outlive a test binary that crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisServer{dir: dir, port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()

	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, lastLines(string(log), 5))
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("redis-server on port %d does not answer: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the server and waits for it to exit.
func (r *redisServer) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// cpuTime returns the CPU time the server has used.
func (r *redisServer) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th of the whole line, in clock ticks of 1/100 s on Linux.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat line %q", b)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var prefixes atomic.Uint64

// newPrefix returns a key prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

// openStore opens a store on addr, closed when the test ends, with accounts
// for users.
func openStore(t testing.TB, addr string, opts Options, users ...string) *Store {
	t.Helper()
	opts.Addr = addr
	if opts.Prefix == "" {
		opts.Prefix = newPrefix()
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.CreateAccounts(t, s, users...)
	return s
}

func TestConformanceRedis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openStore(t, shared.addr(), Options{})
	})
}

func TestEraserRedis(t *testing.T) {
	storetest.Eraser(t, func(t *testing.T) (storetest.EraserStore, storetest.KeyLister) {
		s := openStore(t, shared.addr(), Options{})
		return s, func(t *testing.T) []string {
			t.Helper()
			// Every key of the store's prefix (its own; other tests
			// share the server).
			var keys []string
			it := s.rdb.Scan(context.Background(), 0, globEscape(s.k.prefix)+"*", 1000).Iterator()
			for it.Next(context.Background()) {
				keys = append(keys, it.Val())
			}
			if err := it.Err(); err != nil {
				t.Fatalf("SCAN: %v", err)
			}
			return keys
		}
	})
}

func TestDurabilityRedis(t *testing.T) {
	prefix := newPrefix()
	storetest.Durability(t, func(t *testing.T) storetest.TimelineStore {
		return openStore(t, shared.addr(), Options{Prefix: prefix})
	})
}

// TestConformanceTwoNodes runs the suite against two Stores on one prefix,
// as two imnode processes share one Redis, every call going to one or the
// other in turn. In ConcurrentAppends and ConcurrentDuplicates both nodes
// append to the same timelines and race the same (sender, client msg id); in
// Dedup the retry reaches the node that did not store the original. Any
// decision taken in Go memory shows up as a gap, a repeated seq or a second
// original.
func TestConformanceTwoNodes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store {
		prefix := newPrefix()
		return &twoNodes{nodes: [2]*Store{
			openStore(t, shared.addr(), Options{Prefix: prefix}),
			openStore(t, shared.addr(), Options{Prefix: prefix}),
		}}
	})
}

// twoNodes is a persistence.Store that spreads calls over two Stores.
type twoNodes struct {
	nodes [2]*Store
	next  atomic.Uint64
}

func (n *twoNodes) pick() *Store { return n.nodes[n.next.Add(1)%2] }

func (n *twoNodes) CreateAccount(ctx context.Context, a persistence.Account) error {
	return n.pick().CreateAccount(ctx, a)
}

func (n *twoNodes) GetAccount(ctx context.Context, userID string) (persistence.Account, error) {
	return n.pick().GetAccount(ctx, userID)
}

func (n *twoNodes) Append(ctx context.Context, req *persistence.AppendRequest) (*persistence.AppendResult, error) {
	return n.pick().Append(ctx, req)
}

func (n *twoNodes) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	return n.pick().ReadTimeline(ctx, userID, afterSeq, limit)
}

func (n *twoNodes) LastSeq(ctx context.Context, userID string) (uint64, error) {
	return n.pick().LastSeq(ctx, userID)
}

func (n *twoNodes) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	return n.pick().ReadConversation(ctx, userID, conversationID, beforeSeq, limit)
}

func (n *twoNodes) PutSession(ctx context.Context, s persistence.Session, ttl time.Duration) error {
	return n.pick().PutSession(ctx, s, ttl)
}

func (n *twoNodes) DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error {
	return n.pick().DeleteSession(ctx, userID, deviceID, sessionID)
}

func (n *twoNodes) Sessions(ctx context.Context, userID string) ([]persistence.Session, error) {
	return n.pick().Sessions(ctx, userID)
}

func (n *twoNodes) EraseUser(ctx context.Context, userID string) error {
	return n.pick().EraseUser(ctx, userID)
}

func (n *twoNodes) Close() error {
	return errors.Join(n.nodes[0].Close(), n.nodes[1].Close())
}

// TestTwoNodesRace has two Stores append concurrently to the same timelines
// while, round after round, racers on both race one (sender, client msg id).
func TestTwoNodesRace(t *testing.T) {
	prefix := newPrefix()
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	nodes := [2]*Store{
		openStore(t, shared.addr(), Options{Prefix: prefix}, users...),
		openStore(t, shared.addr(), Options{Prefix: prefix}),
	}
	ctx := context.Background()
	const (
		writersPerNode = 8
		each           = 150
		rounds         = 30
		racersPerNode  = 6
	)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed = map[string]map[uint64]uint64{} // user -> seq -> msg id, as acknowledged
	)
	record := func(timelines []string, res *persistence.AppendResult) error {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range res.Entries {
			u := timelines[i]
			if placed[u] == nil {
				placed[u] = map[uint64]uint64{}
			}
			if id, ok := placed[u][e.Seq]; ok {
				return fmt.Errorf("%s seq %d acknowledged twice, for msgs %d and %d", u, e.Seq, id, e.GetMessage().GetId())
			}
			placed[u][e.Seq] = e.GetMessage().GetId()
		}
		return nil
	}
	// Writers may still report after a failure below; the test must not
	// end before they do.
	defer wg.Wait()
	for n, s := range nodes {
		for w := range writersPerNode {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(w)))
				for i := range each {
					a, b := users[rng.IntN(len(users))], users[rng.IntN(len(users))]
					timelines := []string{a}
					if b != a {
						timelines = append(timelines, b)
					}
					req := storetest.PrivateRequest(a, b, fmt.Sprintf("n%d-w%d-%d", n, w, i))
					req.Timelines = timelines
					res, err := s.Append(ctx, req)
					if err == nil && res.Duplicate {
						err = errors.New("fresh client msg id reported as duplicate")
					}
					if err == nil {
						err = record(timelines, res)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	for round := range rounds {
		start := make(chan struct{})
		results := make(chan *persistence.AppendResult, 2*racersPerNode)
		var racers sync.WaitGroup
		for _, s := range nodes {
			for range racersPerNode {
				racers.Go(func() {
					<-start
					res, err := s.Append(ctx, storetest.PrivateRequest("u0", "u1", fmt.Sprintf("race%d", round)))
					if err != nil {
						t.Error(err)
						return
					}
					results <- res
				})
			}
		}
		close(start)
		racers.Wait()
		close(results)
		if t.Failed() {
			return
		}
		originals := 0
		var want *clientpb.Entry
		for res := range results {
			if !res.Duplicate {
				originals++
				if err := record([]string{"u0", "u1"}, res); err != nil {
					t.Error(err)
				}
			}
			if want == nil {
				want = res.Entries[0]
			} else if !proto.Equal(res.Entries[0], want) {
				t.Fatalf("round %d: racers got %v and %v", round, res.Entries[0], want)
			}
		}
		if originals != 1 {
			t.Fatalf("round %d: %d racers stored the message, want exactly 1", round, originals)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	owners := map[uint64]int{} // msg id -> timelines holding it
	for _, u := range users {
		entries, err := nodes[0].ReadTimeline(ctx, u, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(placed[u]) {
			t.Fatalf("%s holds %d entries, %d were acknowledged", u, len(entries), len(placed[u]))
		}
		var prevID uint64
		for i, e := range entries {
			id := e.GetMessage().GetId()
			if e.Seq != uint64(i+1) || placed[u][e.Seq] != id {
				t.Fatalf("%s: entry %d is seq %d msg %d; acknowledged seq %d msg %d", u, i, e.Seq, id, i+1, placed[u][uint64(i+1)])
			}
			if id <= prevID {
				t.Fatalf("%s: seq %d has msg id %d, not above the previous %d", u, e.Seq, id, prevID)
			}
			prevID = id
			owners[id]++
		}
		if last, err := nodes[1].LastSeq(ctx, u); err != nil || last != uint64(len(entries)) {
			t.Fatalf("LastSeq(%s) = %d, %v; want %d", u, last, err, len(entries))
		}
	}
	if want := 2*writersPerNode*each + rounds; len(owners) != want {
		t.Fatalf("%d distinct msg ids, want %d", len(owners), want)
	}
}

// TestRedisKillRecovery appends from many goroutines, SIGKILLs redis-server
// mid-stream, restarts it on the same directory and port, and checks that
// every acknowledged append survived, with no gap, and that seqs, msg ids
// and deduplication carry on.
func TestRedisKillRecovery(t *testing.T) {
	dir := t.TempDir()
	srv, err := startRedisAnyPort(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.kill() })
	prefix := newPrefix()
	s := openStore(t, srv.addr(), Options{Prefix: prefix}, "alice", "bob")

	type ack struct {
		clientMsgID string
		seq, msgID  uint64
	}
	var (
		mu    sync.Mutex
		acked = map[string][]ack{}
		n     atomic.Int64
		next  atomic.Uint64
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for range 16 {
		wg.Go(func() {
			for {
				id := strconv.FormatUint(next.Add(1), 10)
				res, err := s.Append(context.Background(), storetest.PrivateRequest("alice", "bob", id))
				if err != nil {
					return // the server is gone; this append's fate is unknown
				}
				mu.Lock()
				for i, u := range []string{"alice", "bob"} {
					acked[u] = append(acked[u], ack{id, res.Entries[i].Seq, res.Entries[i].GetMessage().GetId()})
				}
				mu.Unlock()
				if n.Add(1) == 500 {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	timeout := time.After(30 * time.Second)
	select {
	case <-enough:
	case <-timeout:
	}
	srv.kill()
	wg.Wait()
	if got := n.Load(); got < 500 {
		t.Fatalf("only %d appends acknowledged in 30s", got)
	}
	_ = s.Close()

	srv, err = startRedis(dir, srv.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.kill() })
	s = openStore(t, srv.addr(), Options{Prefix: prefix})
	ctx := context.Background()
	var maxID uint64
	for _, user := range []string{"alice", "bob"} {
		entries, err := s.ReadTimeline(ctx, user, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries {
			if e.Seq != uint64(i+1) {
				t.Fatalf("%s: entry %d has seq %d after recovery", user, i, e.Seq)
			}
			maxID = max(maxID, e.GetMessage().GetId())
		}
		for _, a := range acked[user] {
			if a.seq > uint64(len(entries)) || entries[a.seq-1].GetMessage().GetId() != a.msgID {
				t.Fatalf("%s: acknowledged seq %d (msg %d) lost; timeline has %d entries", user, a.seq, a.msgID, len(entries))
			}
		}
		if last, err := s.LastSeq(ctx, user); err != nil || last != uint64(len(entries)) {
			t.Fatalf("%s: LastSeq = %d, %v after recovery; timeline has %d entries", user, last, err, len(entries))
		}
		t.Logf("%s: %d entries after the kill, %d acknowledged", user, len(entries), len(acked[user]))
	}
	lastAlice := uint64(len(acked["alice"]))
	last, err := s.LastSeq(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if last < lastAlice {
		t.Fatalf("LastSeq(alice) = %d, below the %d acknowledged", last, lastAlice)
	}
	a := acked["alice"][len(acked["alice"])/2]
	dup, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", a.clientMsgID))
	if err != nil || !dup.Duplicate || dup.Entries[0].Seq != a.seq {
		t.Fatalf("retry of acknowledged %s after recovery = %v, %v; want a duplicate of seq %d", a.clientMsgID, dup, err, a.seq)
	}
	res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "after-kill"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries[0].Seq != last+1 {
		t.Fatalf("first append after recovery got seq %d, want %d", res.Entries[0].Seq, last+1)
	}
	if id := res.Entries[0].GetMessage().GetId(); id <= maxID {
		t.Fatalf("first append after recovery got msg id %d, want above %d", id, maxID)
	}
}

func TestOpenWarnsWithoutFsyncAlways(t *testing.T) {
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: shared.addr()})
	defer admin.Close()
	open := func() string {
		t.Helper()
		var buf bytes.Buffer
		s := openStore(t, shared.addr(), Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		_ = s.Close()
		return buf.String()
	}
	if log := open(); log != "" {
		t.Fatalf("Open logged with appendfsync always: %s", log)
	}
	if err := admin.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.ConfigSet(ctx, "appendfsync", "always")
	if log := open(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "appendfsync=everysec") {
		t.Fatalf("Open with appendfsync everysec logged %q, want a warning", log)
	}
}

func TestOpenUnreachable(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := Open(ctx, Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}); err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded with no server listening")
	}
}

// TestSentAtNeverGoesBack moves the stored high-water mark of SentAtMs into
// the future, as a Redis clock stepping back would leave it.
func TestSentAtNeverGoesBack(t *testing.T) {
	prefix := newPrefix()
	s := openStore(t, shared.addr(), Options{Prefix: prefix}, "alice", "bob")
	ctx := context.Background()
	if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m1")); err != nil {
		t.Fatal(err)
	}
	future := uint64(time.Now().Add(time.Hour).UnixMilli())
	if err := s.rdb.HSet(ctx, prefix+"m", "ts", future).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Entries[0].GetMessage().GetSentAtMs(); got != future {
		t.Fatalf("SentAtMs after the clock stepped back = %d, want the high-water mark %d", got, future)
	}
}

func TestDedupTTL(t *testing.T) {
	s := openStore(t, shared.addr(), Options{DedupTTL: 100 * time.Millisecond}, "alice", "bob")
	ctx := context.Background()
	if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m1")); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m1")); err != nil || !res.Duplicate {
		t.Fatalf("retry within DedupTTL = %v, %v; want a duplicate", res, err)
	}
	time.Sleep(300 * time.Millisecond)
	res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m1"))
	if err != nil || res.Duplicate || res.Entries[0].Seq != 2 {
		t.Fatalf("retry after DedupTTL = %v, %v; want a new message at seq 2", res, err)
	}
}

// TestSessionKeyExpires checks that a user's session hash lives as long as
// its longest session and then disappears by itself.
func TestSessionKeyExpires(t *testing.T) {
	prefix := newPrefix()
	s := openStore(t, shared.addr(), Options{Prefix: prefix})
	ctx := context.Background()
	key := prefix + "s/alice"
	put := func(device string, ttl time.Duration) {
		t.Helper()
		sess := persistence.Session{UserID: "alice", DeviceID: device, SessionID: "s-" + device, Node: "n", ConnID: "c"}
		if err := s.PutSession(ctx, sess, ttl); err != nil {
			t.Fatal(err)
		}
	}
	put("web", time.Minute)
	put("ios", 100*time.Millisecond)
	if ttl := s.rdb.PTTL(ctx, key).Val(); ttl < 50*time.Second {
		t.Fatalf("a shorter session cut the key's ttl to %v", ttl)
	}
	if err := s.DeleteSession(ctx, "alice", "web", "s-web"); err != nil {
		t.Fatal(err)
	}
	put("ios", 100*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	if n := s.rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatalf("session key still exists after every session expired")
	}
	if got, err := s.Sessions(ctx, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("Sessions = %v, %v; want none", got, err)
	}
}

func TestDecodeEntryRejectsCorruption(t *testing.T) {
	for _, member := range []string{"", "1", "1:2:3", "x:2:3:", "1:2:3:\xff"} {
		if e, err := decodeEntry(member); err == nil {
			t.Errorf("decodeEntry(%q) = %v, want an error", member, e)
		}
	}
}

// BenchmarkAppendRedis appends private messages between random pairs of
// 1000 users from a growing number of concurrent writers, like the embedded
// store's BenchmarkAppend. Redis fsyncs once per event-loop turn for every
// script that ran in it, so concurrency turns into throughput here too.
//
// Every run gets a fresh redis-server, as the embedded benchmark gets a
// fresh directory: a server grown by earlier runs would rewrite its
// append-only file in the middle of a later one.
func BenchmarkAppendRedis(b *testing.B) {
	for _, perProc := range []int{1, 16, 128} {
		writers := perProc * runtime.GOMAXPROCS(0)
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchmarkAppend(b, perProc)
		})
	}
}

func benchmarkAppend(b *testing.B, perProc int) {
	const nUsers = 1000
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%04d", i)
	}
	srv, err := startRedisAnyPort(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.kill)
	s := openStore(b, srv.addr(), Options{}, users...)
	redisStart, err := srv.cpuTime()
	if err != nil {
		b.Fatal(err)
	}
	storetest.BenchmarkAppends(b, s, users, perProc)
	redisEnd, err := srv.cpuTime()
	if err != nil {
		b.Fatal(err)
	}
	// Besides this process's CPU, redis-server's own per append.
	b.ReportMetric(float64((redisEnd-redisStart).Microseconds())/float64(b.N), "redis-cpu-µs/append")
}

// TestAppendAfterScriptFlush: Redis forgets its scripts when it restarts
// (or on SCRIPT FLUSH); pipelined appends load the script again and go
// through, exactly once.
func TestAppendAfterScriptFlush(t *testing.T) {
	s := openStore(t, shared.addr(), Options{}, "alice", "bob")
	ctx := context.Background()
	if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "before")); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "after"))
	if err != nil || res.Duplicate || res.Entries[0].GetSeq() != 2 {
		t.Fatalf("append after SCRIPT FLUSH: %+v, %v", res, err)
	}
	if last, _ := s.LastSeq(ctx, "bob"); last != 2 {
		t.Fatalf("bob's last seq %d, want 2 (the retried script ran once)", last)
	}
}

func (n *twoNodes) GetState(ctx context.Context, key string) ([]byte, error) {
	return n.pick().GetState(ctx, key)
}

func (n *twoNodes) PutState(ctx context.Context, key string, value []byte) error {
	return n.pick().PutState(ctx, key, value)
}

func (n *twoNodes) DeleteState(ctx context.Context, key string) error {
	return n.pick().DeleteState(ctx, key)
}

func (n *twoNodes) AddToSet(ctx context.Context, set, member string) error {
	return n.pick().AddToSet(ctx, set, member)
}

func (n *twoNodes) SetMembers(ctx context.Context, set string) ([]string, error) {
	return n.pick().SetMembers(ctx, set)
}

func (n *twoNodes) Users(ctx context.Context, after string, limit int) ([]string, error) {
	return n.pick().Users(ctx, after, limit)
}

func (n *twoNodes) InternalAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	return n.pick().InternalAccounts(ctx, after, limit)
}

func (n *twoNodes) AppendAll(ctx context.Context, reqs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error) {
	return n.pick().AppendAll(ctx, reqs)
}

func TestMediaDurabilityRedis(t *testing.T) {
	prefix := newPrefix()
	storetest.MediaDurability(t, func(t *testing.T) storetest.MediaStore {
		return openStore(t, shared.addr(), Options{Prefix: prefix})
	})
}

// TestMediaTwoNodes runs the Media suite against two Stores on one prefix,
// calls alternating between them, as two imnode processes share one Redis:
// the concurrent charges, deletes, acquires and releases, and the sends
// racing the collector, come from both.
func TestMediaTwoNodes(t *testing.T) {
	storetest.Media(t, func(t *testing.T) storetest.MediaStore {
		prefix := newPrefix()
		return &twoNodes{nodes: [2]*Store{
			openStore(t, shared.addr(), Options{Prefix: prefix}),
			openStore(t, shared.addr(), Options{Prefix: prefix}),
		}}
	})
}

// TestMediaRedisCluster runs the Media suite against a one-node Redis
// Cluster (every slot on one server). A Cluster refuses a script whose keys
// do not share a hash slot even when one node serves them all, so the suite
// passing shows that every media script is Cluster safe.
func TestMediaRedisCluster(t *testing.T) {
	dir := t.TempDir()
	srv, err := startRedisAnyPort(dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	// A fresh primary waits a moment (about 2 s) before it calls its
	// cluster ok.
	for deadline := time.Now().Add(15 * time.Second); ; {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after 15 s: %q, %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The test is worth something only if a cross-slot script is refused.
	s := openStore(t, srv.addr(), Options{})
	a, b := s.k.mediaFile("a"), s.k.unsentMedia(mediaShard("b"))
	if mediaShard("a") == mediaShard("b") {
		t.Fatal("pick two ids of different shards")
	}
	err = putMediaScript.Run(ctx, s.rdb, []string{a, b}, "a", "1", "own", "alice").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script over two shards' keys = %v, want a CROSSSLOT refusal", err)
	}

	storetest.Media(t, func(t *testing.T) storetest.MediaStore {
		return openStore(t, srv.addr(), Options{})
	})
}

// TestChargeMediaBeyondDoubles: the charge script computes in Lua doubles,
// exact below 2^53; usage stops there, whatever the limit, and no delta
// is rounded into passing it.
func TestChargeMediaBeyondDoubles(t *testing.T) {
	s := openStore(t, shared.addr(), Options{})
	ctx := context.Background()
	if used, err := s.ChargeMedia(ctx, "alice", 1<<53, math.MaxInt64); err != nil || used != 1<<53 {
		t.Fatalf("ChargeMedia(2^53) = %d, %v", used, err)
	}
	if _, err := s.ChargeMedia(ctx, "alice", 1, math.MaxInt64); !errors.Is(err, persistence.ErrQuotaExceeded) {
		t.Fatalf("ChargeMedia past 2^53 = %v, want ErrQuotaExceeded", err)
	}
	if used, err := s.ChargeMedia(ctx, "alice", math.MinInt64, 0); err != nil || used != 0 {
		t.Fatalf("ChargeMedia(MinInt64) = %d, %v; want 0", used, err)
	}
	if _, err := s.ChargeMedia(ctx, "alice", 1<<53+1, math.MaxInt64); !errors.Is(err, persistence.ErrQuotaExceeded) {
		t.Fatalf("ChargeMedia(2^53+1) = %v, want ErrQuotaExceeded", err)
	}
	if used, err := s.MediaUsage(ctx, "alice"); err != nil || used != 0 {
		t.Fatalf("usage after refused charges = %d, %v; want 0", used, err)
	}
}

func (n *twoNodes) AcquireBlob(ctx context.Context, sha string) (string, error) {
	return n.pick().AcquireBlob(ctx, sha)
}

func (n *twoNodes) ReleaseBlob(ctx context.Context, sha string) (string, error) {
	return n.pick().ReleaseBlob(ctx, sha)
}

func (n *twoNodes) ChargeMedia(ctx context.Context, owner string, delta, limit int64) (int64, error) {
	return n.pick().ChargeMedia(ctx, owner, delta, limit)
}

func (n *twoNodes) MediaUsage(ctx context.Context, owner string) (int64, error) {
	return n.pick().MediaUsage(ctx, owner)
}

func (n *twoNodes) PutMediaFile(ctx context.Context, f persistence.MediaFile) error {
	return n.pick().PutMediaFile(ctx, f)
}

func (n *twoNodes) GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error) {
	return n.pick().GetMediaFile(ctx, id)
}

func (n *twoNodes) MarkMediaSent(ctx context.Context, id string, atMs uint64) error {
	return n.pick().MarkMediaSent(ctx, id, atMs)
}

func (n *twoNodes) UnsentMedia(ctx context.Context, beforeMs uint64, limit int) ([]persistence.MediaFile, error) {
	return n.pick().UnsentMedia(ctx, beforeMs, limit)
}

func (n *twoNodes) DeleteUnsentMedia(ctx context.Context, id string) (persistence.MediaFile, error) {
	return n.pick().DeleteUnsentMedia(ctx, id)
}

func (n *twoNodes) IndexName(ctx context.Context, scope, user, name string) error {
	return n.pick().IndexName(ctx, scope, user, name)
}

func (n *twoNodes) RemoveName(ctx context.Context, scope, user string) error {
	return n.pick().RemoveName(ctx, scope, user)
}

func (n *twoNodes) SearchNames(ctx context.Context, scope, prefix string, after persistence.Name, limit int) ([]persistence.Name, error) {
	return n.pick().SearchNames(ctx, scope, prefix, after, limit)
}

// TestInternalIndexBackfill: a store written before the index of internal
// accounts existed gets it at the next Open.
func TestInternalIndexBackfill(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix()
	s := openStore(t, shared.addr(), Options{Prefix: prefix})
	for _, id := range []string{"#g:old", "#g:older", "bob"} {
		if err := s.CreateAccount(ctx, persistence.Account{UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// As an earlier version left it: no index, no marker.
	rdb := redis.NewClient(&redis.Options{Addr: shared.addr()})
	defer rdb.Close()
	if err := rdb.Del(ctx, prefix+"internal", prefix+"internal-indexed").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.InternalAccounts(ctx, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("before the backfill: %v %v", got, err)
	}
	s2 := openStore(t, shared.addr(), Options{Prefix: prefix})
	if got, err := s2.InternalAccounts(ctx, "", 10); err != nil || !slices.Equal(got, []string{"#g:old", "#g:older"}) {
		t.Fatalf("after the backfill: %v %v", got, err)
	}
	if n, err := rdb.Exists(ctx, prefix+"internal-indexed").Result(); err != nil || n != 1 {
		t.Fatalf("marker: %d %v", n, err)
	}
}
