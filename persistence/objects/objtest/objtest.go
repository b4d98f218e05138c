// Package objtest is the conformance suite of persistence.Objects: Run
// checks a backend (persistence/objects/fs, persistence/objects/s3) against
// what the contract promises: whole objects or none, streaming in both
// directions, Range reads as http.ServeContent makes them, the same errors
// for missing objects and bad keys.
package objtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"actorim/persistence"
)

// DefaultContentType is what an object stored with an empty content type
// reports: S3 services store it so, and the other backends follow.
const DefaultContentType = "application/octet-stream"

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Run runs the suite; open returns an empty store for each subtest (a new
// directory, or a new key prefix in a shared bucket).
func Run(t *testing.T, open func(t *testing.T) persistence.Objects) {
	tests := []struct {
		name string
		fn   func(*testing.T, persistence.Objects)
	}{
		{"RoundTrip", testRoundTrip},
		{"Ranges", testRanges},
		{"ServeContent", testServeContent},
		{"ContentType", testContentType},
		{"Overwrite", testOverwrite},
		{"WrongLength", testWrongLength},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"BadKeys", testBadKeys},
		{"Cancelled", testCancelled},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Memory", testMemory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// put stores the object of seed with size bytes under key, streamed.
func put(t *testing.T, s persistence.Objects, key string, seed uint64, size int64, ctype string) {
	t.Helper()
	if err := s.Put(context.Background(), key, newGen(seed, size), size, ctype); err != nil {
		t.Fatalf("Put %s (%d bytes): %v", key, size, err)
	}
}

// open opens key, closed when the test ends.
func open(t *testing.T, s persistence.Objects, key string) persistence.Object {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// expect checks that key holds the object of seed with size bytes and type
// ctype, written between from and to, through Stat, Info and a full read.
func expect(t *testing.T, s persistence.Objects, key string, seed uint64, size int64, ctype string, from, to time.Time) {
	t.Helper()
	st, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat %s: %v", key, err)
	}
	checkInfo(t, "Stat", st, key, size, ctype, from, to)
	o := open(t, s, key)
	checkInfo(t, "Info", o.Info(), key, size, ctype, from, to)
	if err := check(o, seed, size); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

func checkInfo(t *testing.T, what string, got persistence.ObjectInfo, key string, size int64, ctype string, from, to time.Time) {
	t.Helper()
	if got.Key != key || got.Size != size || got.ContentType != ctype {
		t.Errorf("%s = {Key %q, Size %d, ContentType %q}, want {%q, %d, %q}", what, got.Key, got.Size, got.ContentType, key, size, ctype)
	}
	// S3 keeps whole seconds; allow for that and a little clock skew.
	if got.ModTime.Before(from.Add(-2*time.Second)) || got.ModTime.After(to.Add(2*time.Second)) {
		t.Errorf("%s: ModTime %v, want between %v and %v", what, got.ModTime, from, to)
	}
}

func notFound(t *testing.T, s persistence.Objects, key string) {
	t.Helper()
	if _, err := s.Stat(context.Background(), key); !errors.Is(err, persistence.ErrObjectNotFound) {
		t.Errorf("Stat %s: %v, want ErrObjectNotFound", key, err)
	}
	o, err := s.Open(context.Background(), key)
	if !errors.Is(err, persistence.ErrObjectNotFound) {
		t.Errorf("Open %s: %v, want ErrObjectNotFound", key, err)
	}
	if o != nil {
		_ = o.Close()
	}
}

func testRoundTrip(t *testing.T, s persistence.Objects) {
	for i, size := range []int64{0, 1, 1000, 64*kib + 3, 20 * mib} {
		t.Run(fmt.Sprintf("%d", size), func(t *testing.T) {
			key := fmt.Sprintf("rt/%d/obj-%d", i, size)
			from := time.Now()
			put(t, s, key, uint64(i+1), size, "image/png")
			expect(t, s, key, uint64(i+1), size, "image/png", from, time.Now())
		})
	}
}

// testRanges seeks and reads parts, as http.ServeContent does for a Range
// request: Seek(0, End) for the size, Seek(0, Start), then Seek(off, Start)
// and a bounded read.
func testRanges(t *testing.T, s persistence.Objects) {
	const seed, size = 7, 3*mib + 37
	put(t, s, "ranges", seed, size, "video/mp4")
	o := open(t, s, "ranges")
	if n, err := o.Seek(0, io.SeekEnd); err != nil || n != size {
		t.Fatalf("Seek(0, End) = %d, %v; want %d", n, err, size)
	}
	if n, err := o.Seek(0, io.SeekStart); err != nil || n != 0 {
		t.Fatalf("Seek(0, Start) = %d, %v", n, err)
	}
	for _, r := range []struct{ off, n int64 }{
		{0, 1}, {0, 100}, {100, 1000}, {size - 10, 10}, {size / 2, 64 * kib}, {1, mib + 1}, {size - 1, 1}, {5, 5},
	} {
		if n, err := o.Seek(r.off, io.SeekStart); err != nil || n != r.off {
			t.Fatalf("Seek(%d, Start) = %d, %v", r.off, n, err)
		}
		got := make([]byte, r.n)
		if _, err := io.ReadFull(o, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", r.n, r.off, err)
		}
		if !bytes.Equal(got, content(seed, r.off, r.n)) {
			t.Fatalf("%d bytes at %d differ", r.n, r.off)
		}
		if n, err := o.Seek(0, io.SeekCurrent); err != nil || n != r.off+r.n {
			t.Fatalf("Seek(0, Current) after reading %d at %d = %d, %v", r.n, r.off, n, err)
		}
	}
	// The rest of the object from a relative position, to its end.
	if _, err := o.Seek(-(size / 3), io.SeekEnd); err != nil {
		t.Fatalf("Seek(-n, End): %v", err)
	}
	rest, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(rest, content(seed, size-size/3, size/3)) {
		t.Fatalf("reading the last %d bytes: %d bytes, %v (or they differ)", size/3, len(rest), err)
	}
	if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
	// Back to the start after EOF: the whole object again.
	if _, err := o.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := check(o, seed, size); err != nil {
		t.Fatalf("whole object after seeking back: %v", err)
	}
}

// testServeContent serves the object with http.ServeContent, as the media
// handler does, for whole, single-range and multi-range requests.
func testServeContent(t *testing.T, s persistence.Objects) {
	const seed, size = 11, 2*mib + 5
	put(t, s, "serve", seed, size, "audio/ogg")
	get := func(rng string) *httptest.ResponseRecorder {
		o := open(t, s, "serve")
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		http.ServeContent(rec, req, "", o.Info().ModTime, o)
		return rec
	}
	whole := get("")
	if whole.Code != http.StatusOK || int64(whole.Body.Len()) != size || !bytes.Equal(whole.Body.Bytes(), content(seed, 0, size)) {
		t.Fatalf("whole: status %d, %d bytes (want 200, %d, identical)", whole.Code, whole.Body.Len(), size)
	}
	for _, c := range []struct {
		rng    string
		off, n int64
	}{
		{"bytes=0-0", 0, 1},
		{"bytes=1000-1999", 1000, 1000},
		{"bytes=-100", size - 100, 100},
		{fmt.Sprintf("bytes=%d-", size-5), size - 5, 5},
		{fmt.Sprintf("bytes=%d-%d", mib-1, mib+kib), mib - 1, kib + 2},
	} {
		rec := get(c.rng)
		want := fmt.Sprintf("bytes %d-%d/%d", c.off, c.off+c.n-1, size)
		if rec.Code != http.StatusPartialContent || rec.Header().Get("Content-Range") != want {
			t.Errorf("%s: status %d, Content-Range %q; want 206, %q", c.rng, rec.Code, rec.Header().Get("Content-Range"), want)
			continue
		}
		if !bytes.Equal(rec.Body.Bytes(), content(seed, c.off, c.n)) {
			t.Errorf("%s: body of %d bytes differs", c.rng, rec.Body.Len())
		}
	}
	rec := get("bytes=0-9,500000-500099")
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if rec.Code != http.StatusPartialContent || err != nil || mt != "multipart/byteranges" {
		t.Fatalf("two ranges: status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	mr := multipart.NewReader(rec.Body, params["boundary"])
	for _, r := range []struct{ off, n int64 }{{0, 10}, {500000, 100}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("two ranges: part at %d: %v", r.off, err)
		}
		got, _ := io.ReadAll(p)
		if !bytes.Equal(got, content(seed, r.off, r.n)) {
			t.Errorf("two ranges: part at %d differs", r.off)
		}
	}
}

func testContentType(t *testing.T, s persistence.Objects) {
	for i, c := range []struct{ put, want string }{
		{"image/jpeg", "image/jpeg"},
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8"},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"", DefaultContentType},
	} {
		key := fmt.Sprintf("ct/%d", i)
		put(t, s, key, uint64(i), 10, c.put)
		if st, err := s.Stat(context.Background(), key); err != nil || st.ContentType != c.want {
			t.Errorf("Put with %q: Stat = %q, %v; want %q", c.put, st.ContentType, err, c.want)
		}
		if got := open(t, s, key).Info().ContentType; got != c.want {
			t.Errorf("Put with %q: Info = %q, want %q", c.put, got, c.want)
		}
	}
}

// testOverwrite: a Put of an existing key replaces the object whole, size
// and type too, larger by smaller and smaller by larger.
func testOverwrite(t *testing.T, s persistence.Objects) {
	put(t, s, "ow", 1, mib+1, "image/png")
	from := time.Now()
	put(t, s, "ow", 2, 10, "text/plain")
	expect(t, s, "ow", 2, 10, "text/plain", from, time.Now())
	from = time.Now()
	put(t, s, "ow", 3, 17*mib, "video/webm")
	expect(t, s, "ow", 3, 17*mib, "video/webm", from, time.Now())
}

// testWrongLength: a reader that yields fewer or more bytes than the size
// given stores nothing, and leaves an existing object as it was; at a size
// below and above an S3 part (16 MiB by default).
func testWrongLength(t *testing.T, s persistence.Objects) {
	for _, size := range []int64{100, 20 * mib} {
		for _, c := range []struct {
			name  string
			given int64
		}{{"short", size - 1}, {"long", size + 1}, {"empty", 0}, {"double", 2 * size}} {
			t.Run(fmt.Sprintf("%s-%d", c.name, size), func(t *testing.T) {
				key := fmt.Sprintf("wl/%s-%d", c.name, size)
				if err := s.Put(context.Background(), key, newGen(5, c.given), size, "image/gif"); err == nil {
					t.Errorf("Put of %d bytes declared as %d: no error", c.given, size)
				}
				notFound(t, s, key)

				put(t, s, key, 6, 1000, "text/plain")
				from := time.Now()
				if err := s.Put(context.Background(), key, newGen(5, c.given), size, "image/gif"); err == nil {
					t.Errorf("Put of %d bytes declared as %d over an object: no error", c.given, size)
				}
				expect(t, s, key, 6, 1000, "text/plain", from.Add(-time.Minute), time.Now())
			})
		}
	}
	if err := s.Put(context.Background(), "wl/negative", newGen(1, 0), -1, ""); err == nil {
		t.Error("Put of size -1: no error")
	}
	notFound(t, s, "wl/negative")
}

func testMissing(t *testing.T, s persistence.Objects) {
	notFound(t, s, "never/put")
	put(t, s, "dir/obj", 1, 10, "")
	notFound(t, s, "dir")          // a prefix of a key is no object
	notFound(t, s, "dir/obj/more") // nor a path through one
	notFound(t, s, "dir/ob")
}

func testDelete(t *testing.T, s persistence.Objects) {
	ctx := context.Background()
	if err := s.Delete(ctx, "del/never"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	put(t, s, "del/a", 1, 100, "")
	put(t, s, "del/b", 2, 100, "")
	for range 2 {
		if err := s.Delete(ctx, "del/a"); err != nil {
			t.Errorf("Delete: %v", err)
		}
	}
	notFound(t, s, "del/a")
	expect(t, s, "del/b", 2, 100, DefaultContentType, time.Now().Add(-time.Minute), time.Now())
	// The key can be written again.
	put(t, s, "del/a", 3, 5, "")
	expect(t, s, "del/a", 3, 5, DefaultContentType, time.Now().Add(-time.Minute), time.Now())
}

// BadKeys are keys every backend refuses: the contract's keys are '/'-joined
// segments of [A-Za-z0-9._-], none empty; a segment may not start with '.'
// (no "." or "..", and no name of a store's own files).
var BadKeys = []string{
	"", "/", "/abs", "a/", "a//b", ".", "..", "a/../b", "../a", "a/./b", ".hidden", "a/.b",
	"a b", "a\\b", "a:b", "ä", "a\x00b", "a?b", "a#b", "a%2fb", "a\nb", "a*",
}

func testBadKeys(t *testing.T, s persistence.Objects) {
	ctx := context.Background()
	for _, key := range BadKeys {
		if err := s.Put(ctx, key, newGen(1, 3), 3, ""); err == nil {
			t.Errorf("Put(%q): no error", key)
		}
		if o, err := s.Open(ctx, key); err == nil || errors.Is(err, persistence.ErrObjectNotFound) {
			t.Errorf("Open(%q): %v, want an error that is not ErrObjectNotFound", key, err)
			if o != nil {
				_ = o.Close()
			}
		}
		if _, err := s.Stat(ctx, key); err == nil || errors.Is(err, persistence.ErrObjectNotFound) {
			t.Errorf("Stat(%q): %v, want an error that is not ErrObjectNotFound", key, err)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q): no error", key)
		}
	}
	// The nearest good keys work.
	for _, key := range []string{"a", "a.b", "A-Z_a-z.0-9", "a/b/c", "a..b", "a.", "-", "_"} {
		put(t, s, "good/"+key, 1, 3, "")
		notFoundKey := "good/" + key + "x"
		notFound(t, s, notFoundKey)
	}
}

// testCancelled: a context done before or during a Put fails it and stores
// nothing; Open and Stat with a done context fail.
func testCancelled(t *testing.T, s persistence.Objects) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(done, "cx/before", newGen(1, 100), 100, ""); err == nil {
		t.Error("Put with a done context: no error")
	}
	notFound(t, s, "cx/before")

	for _, size := range []int64{256 * kib, 20 * mib} {
		ctx, cancel := context.WithCancel(context.Background())
		key := fmt.Sprintf("cx/during-%d", size)
		r := &cancelAfter{r: newGen(1, size), n: size / 2, cancel: cancel}
		if err := s.Put(ctx, key, r, size, ""); err == nil {
			t.Errorf("Put of %d bytes cancelled half way: no error", size)
		}
		cancel()
		notFound(t, s, key)
	}

	put(t, s, "cx/there", 1, 10, "")
	if _, err := s.Stat(done, "cx/there"); err == nil {
		t.Error("Stat with a done context: no error")
	}
	if o, err := s.Open(done, "cx/there"); err == nil {
		_ = o.Close()
		t.Error("Open with a done context: no error")
	}
}

// testConcurrentPuts: writers race on one key while readers open and read
// it. A read that succeeds has one writer's object whole (its size, type and
// bytes): never a mix, never a silently short object. A read may fail
// instead, with an error of the object's own: an S3 bucket keeps no old
// version for a reader whose object was replaced under it (the GET is pinned
// to the version Open saw, and refused). The final read must succeed.
func testConcurrentPuts(t *testing.T, s persistence.Objects) {
	const writers = 6
	size := func(i int) int64 { return 512*kib + int64(i)*1000 }
	ctype := func(i int) string { return fmt.Sprintf("application/x-writer-%d", i) }
	// whose returns the writer whose object o claims to be, after reading
	// it; a read error is returned as such, wrong bytes as errMismatch.
	whose := func(o persistence.Object) (int, error) {
		info := o.Info()
		for i := range writers {
			if info.Size == size(i) && info.ContentType == ctype(i) {
				return i, check(o, uint64(100+i), size(i))
			}
		}
		return -1, fmt.Errorf("%w: info %+v is no writer's", errMismatch, info)
	}
	put(t, s, "race", 99, 10, "")
	var wg sync.WaitGroup
	var stop atomic.Bool
	errs := make(chan error, 64)
	for i := range writers {
		wg.Go(func() {
			for range 3 {
				if err := s.Put(context.Background(), "race", newGen(uint64(100+i), size(i)), size(i), ctype(i)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", i, err)
					return
				}
			}
		})
	}
	var rwg sync.WaitGroup
	var whole, refused atomic.Int64
	for range 2 {
		rwg.Go(func() {
			for !stop.Load() {
				o, err := s.Open(context.Background(), "race")
				if err != nil {
					errs <- fmt.Errorf("reader: Open: %w", err)
					return
				}
				if o.Info().Size == 10 { // the first object, before any writer
					_ = o.Close()
					continue
				}
				_, err = whose(o)
				_ = o.Close()
				switch {
				case err == nil:
					whole.Add(1)
				case errors.Is(err, errMismatch):
					errs <- fmt.Errorf("reader: %w", err)
					return
				default:
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	o := open(t, s, "race")
	if i, err := whose(o); err != nil {
		t.Errorf("after the race: %v", err)
	} else {
		t.Logf("writer %d won; during the race %d reads were whole, %d failed (the object changed under them)", i, whole.Load(), refused.Load())
	}
}

// testMemory: putting and reading back a 64 MiB object does not hold it in
// memory. The peak of HeapInuse, sampled while it runs, must stay within
// 24 MiB of where it started: a backend may buffer a part (S3's 16 MiB),
// not the object. The collector runs at GOGC=10 meanwhile, so that garbage
// waiting to be collected does not pass for memory held.
func testMemory(t *testing.T, s persistence.Objects) {
	const size = 64 * mib
	const bound = 24 * mib
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	put(t, s, "big", 64, size, "video/mp4")
	putDone := time.Since(start)
	o := open(t, s, "big")
	err := check(o, 64, size)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("64 MiB: put %v, read %v; HeapInuse peaked %.1f MiB above the start", putDone.Round(time.Millisecond),
		(time.Since(start) - putDone).Round(time.Millisecond), float64(grew)/mib)
	if grew > bound {
		t.Errorf("HeapInuse grew by %.1f MiB putting and reading a 64 MiB object, more than %d MiB", float64(grew)/mib, bound/mib)
	}
}
