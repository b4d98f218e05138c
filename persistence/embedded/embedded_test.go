package embedded

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"actorim/persistence"
	"actorim/persistence/storetest"
)

// openTest opens a store in dir, closed when the test ends, with accounts
// for users.
func openTest(t testing.TB, dir string, opts Options, h hooks, users ...string) *Store {
	t.Helper()
	s, err := open(dir, opts, h)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.CreateAccounts(t, s, users...)
	return s
}

func TestConformanceEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openTest(t, t.TempDir(), Options{}, hooks{})
	})
}

func TestEraserEmbedded(t *testing.T) {
	storetest.Eraser(t, func(t *testing.T) (storetest.EraserStore, storetest.KeyLister) {
		s := openTest(t, t.TempDir(), Options{}, hooks{})
		return s, func(t *testing.T) []string {
			t.Helper()
			var out []string
			if err := s.ForEachKey(context.Background(), func(k, _ []byte) bool {
				out = append(out, string(k))
				return true
			}); err != nil {
				t.Fatalf("ForEachKey: %v", err)
			}
			return out
		}
	})
}

// TestConformanceEmbeddedSmallBatches runs the suite with batches of at most
// two ops, so that more commits interleave with the concurrent tests, and a
// memory of one batch, so that the committer often has to look dedup keys up
// again on disk.
func TestConformanceEmbeddedSmallBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openTest(t, t.TempDir(), Options{MaxBatch: 1}, hooks{recentBatches: 1})
	})
}

func TestDurabilityEmbedded(t *testing.T) {
	dir := t.TempDir()
	storetest.Durability(t, func(t *testing.T) storetest.TimelineStore {
		return openTest(t, dir, Options{}, hooks{})
	})
}

func TestMediaDurabilityEmbedded(t *testing.T) {
	dir := t.TempDir()
	storetest.MediaDurability(t, func(t *testing.T) storetest.MediaStore {
		return openTest(t, dir, Options{}, hooks{})
	})
}

// crashDirEnv names the store directory for the child process of
// TestKillRecovery.
const crashDirEnv = "ACTORIM_EMBEDDED_CRASH_DIR"

// TestKillRecovery appends from a child process, SIGKILLs it mid-stream and
// checks that every acknowledged append survived and that seqs carry on
// without a gap.
func TestKillRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		crashChild(os.Getenv(crashDirEnv))
		return
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := s.CreateAccount(context.Background(), persistence.Account{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillRecovery$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct{ seq, msgID uint64 }
	acked := map[string][]ack{}
	var maxID uint64
	sc := bufio.NewScanner(out)
	for n := 0; n < 500 && sc.Scan(); n++ {
		var user string
		var a ack
		if _, err := fmt.Sscan(sc.Text(), &user, &a.seq, &a.msgID); err != nil {
			t.Fatalf("child said %q: %v", sc.Text(), err)
		}
		acked[user] = append(acked[user], a)
		maxID = max(maxID, a.msgID)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked["alice"]) == 0 {
		t.Fatalf("child acknowledged nothing; stderr:\n%s", stderr.String())
	}

	s = openTest(t, dir, Options{}, hooks{})
	ctx := context.Background()
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
		t.Logf("%s: %d entries after kill, %d acknowledged", user, len(entries), len(acked[user]))
	}
	last, err := s.LastSeq(ctx, "alice")
	if err != nil {
		t.Fatal(err)
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

// crashChild appends until it is killed, printing each acknowledged entry.
func crashChild(dir string) {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var next atomic.Uint64
	for range 16 {
		go func() {
			for {
				id := strconv.FormatUint(next.Add(1), 10)
				res, err := s.Append(context.Background(), storetest.PrivateRequest("alice", "bob", id))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				for i, u := range []string{"alice", "bob"} {
					fmt.Fprintln(w, u, res.Entries[i].Seq, res.Entries[i].GetMessage().GetId())
				}
				_ = w.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCommitFailure fails one commit and checks that its ops fail without
// leaving a trace: no seq, dedup key or account is consumed.
func TestCommitFailure(t *testing.T) {
	var failing atomic.Bool
	injected := errors.New("injected commit failure")
	s := openTest(t, t.TempDir(), Options{}, hooks{commit: func(b *pebble.Batch) error {
		if failing.Load() {
			return injected
		}
		return b.Commit(pebble.Sync)
	}}, "alice", "bob")
	ctx := context.Background()
	if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m0")); err != nil {
		t.Fatal(err)
	}

	failing.Store(true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", fmt.Sprintf("f%d", i)))
			if !errors.Is(err, injected) {
				t.Errorf("append during failure = %v, want the injected error", err)
			}
		})
	}
	wg.Wait()
	if err := s.CreateAccount(ctx, persistence.Account{UserID: "carol"}); !errors.Is(err, injected) {
		t.Fatalf("CreateAccount during failure = %v, want the injected error", err)
	}
	failing.Store(false)

	if _, err := s.GetAccount(ctx, "carol"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("account of a failed commit exists: %v", err)
	}
	if err := s.CreateAccount(ctx, persistence.Account{UserID: "carol"}); err != nil {
		t.Fatalf("CreateAccount after failure: %v", err)
	}
	for i := range 8 {
		res, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", fmt.Sprintf("f%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate {
			t.Fatalf("f%d: dedup key of a failed commit was consumed", i)
		}
		if want := uint64(i + 2); res.Entries[0].Seq != want || res.Entries[1].Seq != want {
			t.Fatalf("f%d after failure got seqs %d, %d; want %d", i, res.Entries[0].Seq, res.Entries[1].Seq, want)
		}
	}
}

// TestDedupAfterLongWait covers an append whose caller found no dedup record,
// and which then waited in the queue while the original committed and more
// batches than the committer remembers followed.
func TestDedupAfterLongWait(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{}, hooks{recentBatches: 1}, "alice", "bob")
	ctx := context.Background()
	looked := s.gen.Load()
	first, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "k"))
	if err != nil {
		t.Fatal(err)
	}
	// One more batch pushes the original out of the committer's memory.
	if _, err := s.Append(ctx, storetest.PrivateRequest("bob", "alice", "other")); err != nil {
		t.Fatal(err)
	}
	o, err := newAppendOp(storetest.PrivateRequest("alice", "bob", "k"))
	if err != nil {
		t.Fatal(err)
	}
	o.checked, o.checkedGen = true, looked
	if err := s.do(ctx, o); err != nil || o.err != nil {
		t.Fatal(err, o.err)
	}
	if !o.res.Duplicate || o.res.Entries[0].Seq != first.Entries[0].Seq {
		t.Fatalf("late retry got %v, want a duplicate of seq %d", o.res, first.Entries[0].Seq)
	}
	// The committer answered o after its last batch, so its maps are ours to read.
	if n := len(s.recent); n != 1 {
		t.Fatalf("committer remembers %d dedup keys, want those of its last batch only (1)", n)
	}
}

func TestPebbleLoggerQuietAtInfo(t *testing.T) {
	var buf bytes.Buffer
	l := pebbleLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Infof("routine %d", 1)
	if buf.Len() != 0 {
		t.Fatalf("Infof logged at info level: %s", buf.String())
	}
	l.Errorf("bad %d", 2)
	if !bytes.Contains(buf.Bytes(), []byte("bad 2")) {
		t.Fatalf("Errorf was not logged: %q", buf.String())
	}
}

// BenchmarkAppend appends private messages between random pairs of 1000
// users from a growing number of concurrent writers; group commit turns
// concurrency into throughput.
func BenchmarkAppend(b *testing.B) {
	for _, perProc := range []int{1, 16, 128} {
		writers := perProc * runtime.GOMAXPROCS(0)
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchmarkAppend(b, perProc)
		})
	}
}

func benchmarkAppend(b *testing.B, perProc int) {
	const nUsers = 1000
	s := openTest(b, b.TempDir(), Options{}, hooks{})
	users := make([]string, nUsers)
	var wg sync.WaitGroup
	for i := range users {
		users[i] = fmt.Sprintf("user%04d", i)
	}
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < nUsers; i += 50 {
				if err := s.CreateAccount(context.Background(), persistence.Account{UserID: users[i]}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	storetest.BenchmarkAppends(b, s, users, perProc)
}

// TestReadsHideUnsyncedBatch holds a batch between "readable in Pebble" and
// "fsync returned" and checks that no read shows it meanwhile: a device must
// never be handed an entry that a crash at that moment would undo.
func TestReadsHideUnsyncedBatch(t *testing.T) {
	var hold atomic.Bool
	applied, release := make(chan struct{}), make(chan struct{})
	s := openTest(t, t.TempDir(), Options{}, hooks{commit: func(b *pebble.Batch) error {
		// NoSync applies the batch (readable at once) without the fsync,
		// which this hook then stands in for by waiting.
		err := b.Commit(pebble.NoSync)
		if hold.Load() {
			applied <- struct{}{}
			<-release
		}
		return err
	}}, "alice", "bob")
	ctx := context.Background()
	if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m1")); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", "m2"))
		done <- err
	}()
	<-applied
	for _, u := range []string{"alice", "bob"} {
		if last, err := s.LastSeq(ctx, u); err != nil || last != 1 {
			t.Errorf("%s: LastSeq = %d, %v during the fsync; want 1", u, last, err)
		}
		if es, err := s.ReadTimeline(ctx, u, 0, 10); err != nil || len(es) != 1 {
			t.Errorf("%s: ReadTimeline shows %d entries during the fsync; want 1", u, len(es))
		}
		if es, err := s.ReadConversation(ctx, u, "p:alice:bob", 0, 10); err != nil || len(es) != 1 {
			t.Errorf("%s: ReadConversation shows %d entries during the fsync; want 1", u, len(es))
		}
	}
	hold.Store(false)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastSeq(ctx, "bob"); last != 2 {
		t.Fatalf("LastSeq after the fsync = %d, want 2", last)
	}
	if es, _ := s.ReadTimeline(ctx, "alice", 0, 10); len(es) != 2 {
		t.Fatalf("ReadTimeline after the fsync shows %d entries, want 2", len(es))
	}
}

// TestBlockCacheHoldsBlocks guards the cache sizing: Pebble reserves memtable
// memory from the block cache, and a cache no bigger than the memtables
// caches nothing, turning every dedup lookup into file reads.
func TestBlockCacheHoldsBlocks(t *testing.T) {
	// A 1 MiB cache: if the memtable's reservation were taken out of it, no
	// block would fit.
	s := openTest(t, t.TempDir(), Options{CacheBytes: 1 << 20}, hooks{}, "alice", "bob")
	ctx := context.Background()
	for i := range 2000 {
		if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := s.Append(ctx, storetest.PrivateRequest("alice", "bob", fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if m := s.db.Metrics(); m.BlockCache.Count == 0 {
		t.Fatalf("block cache holds no blocks after lookups against flushed tables (hits %d, misses %d)", m.BlockCache.Hits, m.BlockCache.Misses)
	}
}
