package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"actorim/persistence"
)

// MediaStore is what the Media suite runs over.
type MediaStore interface {
	persistence.Media
	io.Closer
}

// Media is the conformance suite of persistence.Media: blob reference counts
// and their generations, quotas, file records and the unsent index, each
// method's errors, and the races the contract settles (concurrent charges
// up to a limit, concurrent deletes of one file, a send racing garbage
// collection).
func Media(t *testing.T, open func(t *testing.T) MediaStore, known ...Known) {
	runSuite(t, open, known, []test[MediaStore]{
		{"Blobs", testBlobs},
		{"BlobsConcurrent", testBlobsConcurrent},
		{"Charge", testCharge},
		{"ChargeConcurrent", testChargeConcurrent},
		{"Files", testMediaFiles},
		{"MarkSent", testMarkSent},
		{"Unsent", testUnsent},
		{"DeleteUnsent", testDeleteUnsent},
		{"DeleteUnsentConcurrent", testDeleteUnsentConcurrent},
		{"SendRacesCollector", testSendRacesCollector},
		{"InvalidArguments", testMediaInvalid},
		{"CanceledContext", func(t *testing.T, s MediaStore) { checkCanceled(t, mediaCalls(s)) }},
		{"Closed", func(t *testing.T, s MediaStore) { checkClosed(t, s, mediaCalls(s)) }},
	})
}

// MediaDurability checks that blob counts and generations, usage and file
// records (sent or not, and the unsent index) survive Close and reopening.
// Every call of reopen must open the same underlying data, empty on the
// first call; see Durability.
func MediaDurability(t *testing.T, reopen func(t *testing.T) MediaStore) {
	ctx := context.Background()
	a, b := contentSHA("a"), contentSHA("b")
	s := reopen(t)
	keyA := mustAcquire(t, s, a)
	mustAcquire(t, s, a)
	keyB := mustAcquire(t, s, b)
	if del := mustRelease(t, s, b); del != keyB {
		t.Fatalf("ReleaseBlob(b) = %q, want %q", del, keyB)
	}
	mustCharge(t, s, "alice", 700, 1000)
	f1, f2 := mediaFile(1, "alice", 1000), mediaFile(2, "alice", 2000)
	mustPut(t, s, f1)
	mustPut(t, s, f2)
	if err := s.MarkMediaSent(ctx, f2.ID, 5000); err != nil {
		t.Fatal(err)
	}
	f2.SentAtMs = 5000
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen(t)
	for _, f := range []persistence.MediaFile{f1, f2} {
		if got := mustGet(t, s, f.ID); got != f {
			t.Fatalf("after reopen GetMediaFile(%s) = %+v, want %+v", f.ID, got, f)
		}
	}
	if used := mustUsage(t, s, "alice"); used != 700 {
		t.Fatalf("usage after reopen = %d, want 700", used)
	}
	if got := mustUnsent(t, s, math.MaxUint64, 10); len(got) != 1 || got[0] != f1 {
		t.Fatalf("UnsentMedia after reopen = %+v, want only %s", got, f1.ID)
	}
	if del := mustRelease(t, s, a); del != "" {
		t.Fatalf("first ReleaseBlob(a) after reopen = %q; a second reference is left", del)
	}
	if del := mustRelease(t, s, a); del != keyA {
		t.Fatalf("last ReleaseBlob(a) after reopen = %q, want %q", del, keyA)
	}
	if k := mustAcquire(t, s, b); k == keyB {
		t.Fatalf("AcquireBlob(b) after reopen returned the released generation's key %q", k)
	}
	if _, err := s.DeleteUnsentMedia(ctx, f2.ID); !errors.Is(err, persistence.ErrMediaSent) {
		t.Fatalf("DeleteUnsentMedia(sent) after reopen = %v, want ErrMediaSent", err)
	}
	if _, err := s.DeleteUnsentMedia(ctx, f1.ID); err != nil {
		t.Fatalf("DeleteUnsentMedia after reopen: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen(t)
	defer s.Close()
	if _, err := s.GetMediaFile(ctx, f1.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("deleted file after reopen: %v, want ErrNotFound", err)
	}
	if got := mustUnsent(t, s, math.MaxUint64, 10); len(got) != 0 {
		t.Fatalf("UnsentMedia after deleting the only unsent file = %+v", got)
	}
	if k := mustAcquire(t, s, a); k == keyA {
		t.Fatalf("AcquireBlob(a) after its release to zero and a reopen returned the old key %q", k)
	}
}

// mediaCalls returns a call of every Media method, by name.
func mediaCalls(s persistence.Media) map[string]call {
	sha := contentSHA("x")
	return map[string]call{
		"AcquireBlob": func(ctx context.Context) error {
			_, err := s.AcquireBlob(ctx, sha)
			return err
		},
		"ReleaseBlob": func(ctx context.Context) error {
			_, err := s.ReleaseBlob(ctx, sha)
			return err
		},
		"ChargeMedia": func(ctx context.Context) error {
			_, err := s.ChargeMedia(ctx, "alice", 1, 100)
			return err
		},
		"MediaUsage": func(ctx context.Context) error {
			_, err := s.MediaUsage(ctx, "alice")
			return err
		},
		"PutMediaFile": func(ctx context.Context) error {
			return s.PutMediaFile(ctx, mediaFile(1, "alice", 1))
		},
		"GetMediaFile": func(ctx context.Context) error {
			_, err := s.GetMediaFile(ctx, mediaID(1))
			return err
		},
		"MarkMediaSent": func(ctx context.Context) error {
			return s.MarkMediaSent(ctx, mediaID(1), 5)
		},
		"UnsentMedia": func(ctx context.Context) error {
			_, err := s.UnsentMedia(ctx, 10, 10)
			return err
		},
		"DeleteUnsentMedia": func(ctx context.Context) error {
			_, err := s.DeleteUnsentMedia(ctx, mediaID(1))
			return err
		},
	}
}

// contentSHA is the hex SHA-256 of s, standing for a file's content.
func contentSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// mediaID is the n-th file id, shaped like a real one (26 of [a-z0-9]).
func mediaID(n int) string { return fmt.Sprintf("f%025d", n) }

// mediaFile is an image record with every field set, unsent.
func mediaFile(n int, owner string, createdAtMs uint64) persistence.MediaFile {
	sha, thumb := contentSHA(fmt.Sprint("file", n)), contentSHA(fmt.Sprint("thumb", n))
	return persistence.MediaFile{
		ID:          mediaID(n),
		Owner:       owner,
		SHA256:      sha,
		Blob:        "b/" + sha + ".0",
		Size:        1<<33 + int64(n), // above 32 bits
		MIME:        "image/jpeg",
		Name:        fmt.Sprintf("chat %d 🐈.jpg", n),
		Width:       4032,
		Height:      3024,
		ThumbSHA256: thumb,
		ThumbBlob:   "b/" + thumb + ".7",
		ThumbSize:   9000,
		ThumbMIME:   "image/jpeg",
		ThumbWidth:  320,
		ThumbHeight: 240,
		Blurhash:    "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
		CreatedAtMs: createdAtMs,
	}
}

// validObjectKey reports whether k is a key persistence.Objects accepts: a
// path of [A-Za-z0-9._-] segments joined by '/'.
func validObjectKey(k string) bool {
	for seg := range strings.SplitSeq(k, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range []byte(seg) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
			if !ok {
				return false
			}
		}
	}
	return true
}

func mustAcquire(t *testing.T, s persistence.Media, sha string) string {
	t.Helper()
	k, err := s.AcquireBlob(context.Background(), sha)
	if err != nil {
		t.Fatalf("AcquireBlob(%.8s): %v", sha, err)
	}
	if !validObjectKey(k) {
		t.Fatalf("AcquireBlob(%.8s) = %q, not a valid object key", sha, k)
	}
	return k
}

func mustRelease(t *testing.T, s persistence.Media, sha string) string {
	t.Helper()
	k, err := s.ReleaseBlob(context.Background(), sha)
	if err != nil {
		t.Fatalf("ReleaseBlob(%.8s): %v", sha, err)
	}
	return k
}

func mustCharge(t *testing.T, s persistence.Media, owner string, delta, limit int64) int64 {
	t.Helper()
	used, err := s.ChargeMedia(context.Background(), owner, delta, limit)
	if err != nil {
		t.Fatalf("ChargeMedia(%s, %d, %d): %v", owner, delta, limit, err)
	}
	return used
}

func mustUsage(t *testing.T, s persistence.Media, owner string) int64 {
	t.Helper()
	used, err := s.MediaUsage(context.Background(), owner)
	if err != nil {
		t.Fatalf("MediaUsage(%s): %v", owner, err)
	}
	return used
}

func mustPut(t *testing.T, s persistence.Media, f persistence.MediaFile) {
	t.Helper()
	if err := s.PutMediaFile(context.Background(), f); err != nil {
		t.Fatalf("PutMediaFile(%s): %v", f.ID, err)
	}
}

func mustGet(t *testing.T, s persistence.Media, id string) persistence.MediaFile {
	t.Helper()
	f, err := s.GetMediaFile(context.Background(), id)
	if err != nil {
		t.Fatalf("GetMediaFile(%s): %v", id, err)
	}
	return f
}

func mustUnsent(t *testing.T, s persistence.Media, beforeMs uint64, limit int) []persistence.MediaFile {
	t.Helper()
	fs, err := s.UnsentMedia(context.Background(), beforeMs, limit)
	if err != nil {
		t.Fatalf("UnsentMedia(%d, %d): %v", beforeMs, limit, err)
	}
	return fs
}

// ids returns the ids of fs, sorted.
func ids(fs []persistence.MediaFile) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	slices.Sort(out)
	return out
}

func testBlobs(t *testing.T, s MediaStore) {
	ctx := context.Background()
	a, b := contentSHA("a"), contentSHA("b")
	k1 := mustAcquire(t, s, a)
	if k := mustAcquire(t, s, a); k != k1 {
		t.Fatalf("second AcquireBlob = %q, first %q; want one key while referenced", k, k1)
	}
	kb := mustAcquire(t, s, b)
	if kb == k1 {
		t.Fatalf("two contents share the key %q", kb)
	}
	if del := mustRelease(t, s, a); del != "" {
		t.Fatalf("ReleaseBlob with a reference left = %q, want \"\"", del)
	}
	if k := mustAcquire(t, s, a); k != k1 {
		t.Fatalf("AcquireBlob while still referenced = %q, want %q", k, k1)
	}
	mustRelease(t, s, a)
	if del := mustRelease(t, s, a); del != k1 {
		t.Fatalf("last ReleaseBlob = %q, want the key to delete %q", del, k1)
	}
	// A new generation: the old object may be being deleted right now.
	k2 := mustAcquire(t, s, a)
	if k2 == k1 {
		t.Fatalf("AcquireBlob after the last release returned the old key %q", k2)
	}
	if del := mustRelease(t, s, a); del != k2 {
		t.Fatalf("ReleaseBlob of the new generation = %q, want %q", del, k2)
	}
	// Releasing without references fails and leaves no debt behind.
	if del, err := s.ReleaseBlob(ctx, a); err == nil {
		t.Fatalf("ReleaseBlob without references = %q, nil; want an error", del)
	}
	if _, err := s.ReleaseBlob(ctx, contentSHA("never")); err == nil {
		t.Fatal("ReleaseBlob of a content never acquired succeeded")
	}
	k3 := mustAcquire(t, s, a)
	if k3 == k1 || k3 == k2 {
		t.Fatalf("third generation reuses a key: %q", k3)
	}
	if del := mustRelease(t, s, a); del != k3 {
		t.Fatalf("ReleaseBlob after a refused release = %q, want %q (one reference)", del, k3)
	}
	// b was untouched by all of this.
	if del := mustRelease(t, s, b); del != kb {
		t.Fatalf("ReleaseBlob(b) = %q, want %q", del, kb)
	}
}

func testBlobsConcurrent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	sha := contentSHA("shared")
	held := mustAcquire(t, s, sha)
	// Pairs while a reference is held: one key throughout, nothing to delete.
	const workers, pairs = 16, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range pairs {
				k, err := s.AcquireBlob(ctx, sha)
				if err != nil || k != held {
					t.Errorf("AcquireBlob = %q, %v; want %q", k, err, held)
					return
				}
				del, err := s.ReleaseBlob(ctx, sha)
				if err != nil || del != "" {
					t.Errorf("ReleaseBlob with a reference held = %q, %v", del, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if del := mustRelease(t, s, sha); del != held {
		t.Fatalf("releasing the held reference = %q, want %q: the pairs left the count off", del, held)
	}

	// Concurrent acquires, then concurrent releases: exactly one release is
	// the last.
	const n = 40
	keys := make(chan string, n)
	for range n {
		wg.Go(func() {
			k, err := s.AcquireBlob(ctx, sha)
			if err != nil {
				t.Errorf("AcquireBlob: %v", err)
			}
			keys <- k
		})
	}
	wg.Wait()
	close(keys)
	var key string
	for k := range keys {
		if key == "" {
			key = k
		}
		if k != key || k == held {
			t.Fatalf("concurrent acquires got %q and %q (released generation %q)", k, key, held)
		}
	}
	var last atomic.Int32
	for range n {
		wg.Go(func() {
			del, err := s.ReleaseBlob(ctx, sha)
			if err != nil {
				t.Errorf("ReleaseBlob: %v", err)
				return
			}
			if del != "" {
				last.Add(1)
				if del != key {
					t.Errorf("last ReleaseBlob = %q, want %q", del, key)
				}
			}
		})
	}
	wg.Wait()
	if got := last.Load(); got != 1 {
		t.Fatalf("%d of %d concurrent releases returned a key to delete, want exactly 1", got, n)
	}
	if _, err := s.ReleaseBlob(ctx, sha); err == nil {
		t.Fatal("ReleaseBlob after every reference was released succeeded")
	}
}

func testCharge(t *testing.T, s MediaStore) {
	ctx := context.Background()
	if used := mustUsage(t, s, "alice"); used != 0 {
		t.Fatalf("usage of an owner never charged = %d", used)
	}
	if used := mustCharge(t, s, "alice", 100, 1000); used != 100 {
		t.Fatalf("ChargeMedia(100) = %d", used)
	}
	if used := mustCharge(t, s, "alice", 900, 1000); used != 1000 {
		t.Fatalf("ChargeMedia up to the limit = %d, want 1000", used)
	}
	if _, err := s.ChargeMedia(ctx, "alice", 1, 1000); !errors.Is(err, persistence.ErrQuotaExceeded) {
		t.Fatalf("ChargeMedia above the limit = %v, want ErrQuotaExceeded", err)
	}
	if used := mustUsage(t, s, "alice"); used != 1000 {
		t.Fatalf("usage after a refused charge = %d, want 1000 (unchanged)", used)
	}
	if used := mustCharge(t, s, "alice", 0, 1000); used != 1000 {
		t.Fatalf("ChargeMedia(0) = %d, want the usage", used)
	}
	if used := mustCharge(t, s, "alice", -300, 1000); used != 700 {
		t.Fatalf("ChargeMedia(-300) = %d, want 700", used)
	}
	// A lowered limit refuses more but never blocks a release.
	if _, err := s.ChargeMedia(ctx, "alice", 1, 500); !errors.Is(err, persistence.ErrQuotaExceeded) {
		t.Fatalf("ChargeMedia over a lowered limit = %v, want ErrQuotaExceeded", err)
	}
	if used := mustCharge(t, s, "alice", -100, 500); used != 600 {
		t.Fatalf("ChargeMedia(-100) over the limit = %d, want 600", used)
	}
	if used := mustCharge(t, s, "alice", -1<<40, 500); used != 0 {
		t.Fatalf("ChargeMedia below zero = %d, want 0", used)
	}
	if used := mustUsage(t, s, "alice"); used != 0 {
		t.Fatalf("usage after releasing more than charged = %d, want 0", used)
	}
	if used := mustCharge(t, s, "alice", 10, 500); used != 10 {
		t.Fatalf("ChargeMedia after reaching 0 = %d, want 10", used)
	}
	// Usage is per owner; a charge of more than the whole limit is refused
	// outright.
	if _, err := s.ChargeMedia(ctx, "bob", 501, 500); !errors.Is(err, persistence.ErrQuotaExceeded) {
		t.Fatalf("ChargeMedia above the limit from zero = %v, want ErrQuotaExceeded", err)
	}
	if used := mustCharge(t, s, "bob", 5<<30, 1<<40); used != 5<<30 {
		t.Fatalf("ChargeMedia(5 GiB) = %d", used)
	}
	if used := mustUsage(t, s, "alice"); used != 10 {
		t.Fatalf("alice's usage after bob's charges = %d, want 10", used)
	}
}

func testChargeConcurrent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	const n, delta, limit = 100, 10, 500
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			used, err := s.ChargeMedia(ctx, "alice", delta, limit)
			switch {
			case err == nil:
				ok.Add(1)
				if used > limit || used <= 0 {
					t.Errorf("ChargeMedia returned usage %d, limit %d", used, limit)
				}
			case errors.Is(err, persistence.ErrQuotaExceeded):
				refused.Add(1)
			default:
				t.Errorf("ChargeMedia: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit/delta || refused.Load() != n-limit/delta {
		t.Fatalf("%d charges succeeded and %d were refused, want %d and %d", ok.Load(), refused.Load(), limit/delta, n-limit/delta)
	}
	if used := mustUsage(t, s, "alice"); used != limit {
		t.Fatalf("usage after concurrent charges = %d, want %d", used, limit)
	}
	// Concurrent releases, more than was charged: usage ends at 0.
	for range 60 {
		wg.Go(func() {
			if used, err := s.ChargeMedia(ctx, "alice", -delta, limit); err != nil || used < 0 {
				t.Errorf("ChargeMedia(-%d) = %d, %v", delta, used, err)
			}
		})
	}
	wg.Wait()
	if used := mustUsage(t, s, "alice"); used != 0 {
		t.Fatalf("usage after concurrent releases = %d, want 0", used)
	}
}

func testMediaFiles(t *testing.T, s MediaStore) {
	ctx := context.Background()
	if _, err := s.GetMediaFile(ctx, mediaID(1)); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetMediaFile(missing) = %v, want ErrNotFound", err)
	}
	f := mediaFile(1, "alice", 1_700_000_000_123)
	mustPut(t, s, f)
	if got := mustGet(t, s, f.ID); got != f {
		t.Fatalf("GetMediaFile = %+v, want %+v", got, f)
	}
	other := mediaFile(2, "bob", 5)
	other.ID = f.ID
	if err := s.PutMediaFile(ctx, other); !errors.Is(err, persistence.ErrExists) {
		t.Fatalf("PutMediaFile of a taken id = %v, want ErrExists", err)
	}
	if got := mustGet(t, s, f.ID); got != f {
		t.Fatalf("record after a refused put = %+v, want %+v", got, f)
	}
	// A record with only the required fields keeps its zeros.
	plain := persistence.MediaFile{ID: mediaID(2), Owner: "bob", SHA256: contentSHA("p"), Blob: "b/" + contentSHA("p") + ".0", Size: 0, MIME: "application/octet-stream"}
	mustPut(t, s, plain)
	if got := mustGet(t, s, plain.ID); got != plain {
		t.Fatalf("GetMediaFile = %+v, want %+v", got, plain)
	}
	// An id extending another is another file.
	if _, err := s.GetMediaFile(ctx, mediaID(1)+"0"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetMediaFile(id + \"0\") = %v, want ErrNotFound", err)
	}
	// A record put as sent already is no garbage.
	sent := mediaFile(3, "alice", 10)
	sent.SentAtMs = 20
	mustPut(t, s, sent)
	if got := mustGet(t, s, sent.ID); got != sent {
		t.Fatalf("GetMediaFile = %+v, want %+v", got, sent)
	}
	if got, want := ids(mustUnsent(t, s, math.MaxUint64, 10)), ids([]persistence.MediaFile{f, plain}); !slices.Equal(got, want) {
		t.Fatalf("UnsentMedia = %v, want %v (not %s, put as sent)", got, want, sent.ID)
	}
}

func testMarkSent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	f := mediaFile(1, "alice", 1000)
	mustPut(t, s, f)
	if err := s.MarkMediaSent(ctx, f.ID, 5000); err != nil {
		t.Fatalf("MarkMediaSent: %v", err)
	}
	f.SentAtMs = 5000
	if got := mustGet(t, s, f.ID); got != f {
		t.Fatalf("after MarkMediaSent: %+v, want %+v", got, f)
	}
	// The first mark wins.
	if err := s.MarkMediaSent(ctx, f.ID, 6000); err != nil {
		t.Fatalf("second MarkMediaSent: %v", err)
	}
	if got := mustGet(t, s, f.ID); got.SentAtMs != 5000 {
		t.Fatalf("a second MarkMediaSent moved SentAtMs to %d, want 5000", got.SentAtMs)
	}
	if err := s.MarkMediaSent(ctx, mediaID(9), 5000); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("MarkMediaSent(missing) = %v, want ErrNotFound", err)
	}
	if got := mustUnsent(t, s, math.MaxUint64, 10); len(got) != 0 {
		t.Fatalf("UnsentMedia lists a sent file: %+v", got)
	}
	if _, err := s.DeleteUnsentMedia(ctx, f.ID); !errors.Is(err, persistence.ErrMediaSent) {
		t.Fatalf("DeleteUnsentMedia(sent) = %v, want ErrMediaSent", err)
	}
	if got := mustGet(t, s, f.ID); got != f {
		t.Fatalf("record after a refused delete = %+v, want %+v", got, f)
	}
}

func testUnsent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	var files []persistence.MediaFile
	for i, created := range []uint64{1000, 2000, 2000, 3000, 4000, 1_700_000_000_000} {
		f := mediaFile(i+1, []string{"alice", "bob"}[i%2], created)
		mustPut(t, s, f)
		files = append(files, f)
	}
	if err := s.MarkMediaSent(ctx, files[1].ID, 9000); err != nil {
		t.Fatal(err)
	}
	if got := mustUnsent(t, s, 1000, 10); len(got) != 0 {
		t.Fatalf("UnsentMedia(before 1000) = %v, want none (CreatedAtMs 1000 is not below 1000)", ids(got))
	}
	got := mustUnsent(t, s, 3000, 10)
	if want := ids([]persistence.MediaFile{files[0], files[2]}); !slices.Equal(ids(got), want) {
		t.Fatalf("UnsentMedia(before 3000) = %v, want %v", ids(got), want)
	}
	for _, f := range got {
		i := slices.IndexFunc(files, func(g persistence.MediaFile) bool { return g.ID == f.ID })
		if f != files[i] {
			t.Fatalf("UnsentMedia returned %+v, stored %+v", f, files[i])
		}
	}
	all := ids([]persistence.MediaFile{files[0], files[2], files[3], files[4], files[5]})
	if got := ids(mustUnsent(t, s, math.MaxUint64, 100)); !slices.Equal(got, all) {
		t.Fatalf("UnsentMedia(no bound) = %v, want %v", got, all)
	}
	for limit := 1; limit <= 6; limit++ {
		got := ids(mustUnsent(t, s, math.MaxUint64, limit))
		if len(got) != min(limit, len(all)) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("UnsentMedia(limit %d) = %v", limit, got)
		}
		for _, id := range got {
			if !slices.Contains(all, id) {
				t.Fatalf("UnsentMedia(limit %d) returned %s, not an unsent file", limit, id)
			}
		}
	}
	if got := mustUnsent(t, s, math.MaxUint64, 0); len(got) != 0 {
		t.Fatalf("UnsentMedia(limit 0) = %v", ids(got))
	}
	if got := mustUnsent(t, s, 0, 10); len(got) != 0 {
		t.Fatalf("UnsentMedia(before 0) = %v", ids(got))
	}
	if _, err := s.DeleteUnsentMedia(ctx, files[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkMediaSent(ctx, files[3].ID, 9000); err != nil {
		t.Fatal(err)
	}
	want := ids([]persistence.MediaFile{files[2], files[4], files[5]})
	if got := ids(mustUnsent(t, s, math.MaxUint64, 100)); !slices.Equal(got, want) {
		t.Fatalf("UnsentMedia after a delete and a mark = %v, want %v", got, want)
	}
}

func testDeleteUnsent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	f, g := mediaFile(1, "alice", 1000), mediaFile(2, "alice", 1000)
	mustPut(t, s, f)
	mustPut(t, s, g)
	got, err := s.DeleteUnsentMedia(ctx, f.ID)
	if err != nil || got != f {
		t.Fatalf("DeleteUnsentMedia = %+v, %v; want %+v", got, err, f)
	}
	if _, err := s.GetMediaFile(ctx, f.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetMediaFile(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteUnsentMedia(ctx, f.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("second DeleteUnsentMedia = %v, want ErrNotFound", err)
	}
	if err := s.MarkMediaSent(ctx, f.ID, 5000); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("MarkMediaSent(deleted) = %v, want ErrNotFound", err)
	}
	if got := mustGet(t, s, g.ID); got != g {
		t.Fatalf("the other file after a delete: %+v", got)
	}
	if got := ids(mustUnsent(t, s, math.MaxUint64, 10)); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("UnsentMedia after a delete = %v, want only %s", got, g.ID)
	}
}

func testDeleteUnsentConcurrent(t *testing.T, s MediaStore) {
	ctx := context.Background()
	f := mediaFile(1, "alice", 1000)
	mustPut(t, s, f)
	const n = 50
	var ok, gone atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			got, err := s.DeleteUnsentMedia(ctx, f.ID)
			switch {
			case err == nil:
				ok.Add(1)
				if got != f {
					t.Errorf("DeleteUnsentMedia returned %+v, want %+v", got, f)
				}
			case errors.Is(err, persistence.ErrNotFound):
				gone.Add(1)
			default:
				t.Errorf("DeleteUnsentMedia: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || gone.Load() != n-1 {
		t.Fatalf("%d concurrent deletes succeeded and %d found nothing, want 1 and %d", ok.Load(), gone.Load(), n-1)
	}
}

// testSendRacesCollector races sends (MarkMediaSent) against the garbage
// collector (DeleteUnsentMedia) on each of many files: either the collector
// wins and every send finds the file gone, or a send wins and the file stays,
// marked by the first send, and no collector deletes it.
func testSendRacesCollector(t *testing.T, s MediaStore) {
	ctx := context.Background()
	const rounds, each = 20, 4
	collected := 0
	for r := range rounds {
		f := mediaFile(r+1, "alice", 1000)
		mustPut(t, s, f)
		var marked, markGone, deleted, deleteSent atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 * each {
			// Senders and collectors alternate, starting with either, so
			// that each side wins some rounds.
			if (i+r)%2 == 0 {
				wg.Go(func() {
					<-start
					err := s.MarkMediaSent(ctx, f.ID, uint64(5000+i/2))
					switch {
					case err == nil:
						marked.Add(1)
					case errors.Is(err, persistence.ErrNotFound):
						markGone.Add(1)
					default:
						t.Errorf("MarkMediaSent: %v", err)
					}
				})
				continue
			}
			wg.Go(func() {
				<-start
				_, err := s.DeleteUnsentMedia(ctx, f.ID)
				switch {
				case err == nil:
					deleted.Add(1)
				case errors.Is(err, persistence.ErrMediaSent):
					deleteSent.Add(1)
				case errors.Is(err, persistence.ErrNotFound):
				default:
					t.Errorf("DeleteUnsentMedia: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		got, err := s.GetMediaFile(ctx, f.ID)
		switch {
		case deleted.Load() == 1:
			collected++
			if marked.Load() != 0 || markGone.Load() != each || deleteSent.Load() != 0 || !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("round %d: collected, yet %d sends marked it, %d deletes saw it sent; record: %+v, %v",
					r, marked.Load(), deleteSent.Load(), got, err)
			}
		case deleted.Load() == 0:
			if marked.Load() != each || deleteSent.Load() != each || err != nil || got.SentAtMs < 5000 || got.SentAtMs >= 5000+each {
				t.Fatalf("round %d: kept, with %d of %d sends marked and %d of %d deletes refused; record %+v, %v",
					r, marked.Load(), each, deleteSent.Load(), each, got, err)
			}
		default:
			t.Fatalf("round %d: %d deletes succeeded", r, deleted.Load())
		}
	}
	if got := mustUnsent(t, s, math.MaxUint64, 100); len(got) != 0 {
		t.Fatalf("UnsentMedia after the races = %v, want none", ids(got))
	}
	t.Logf("the collector won %d of %d rounds", collected, rounds)
}

// testMediaInvalid checks that values which could escape their key space
// (a content hash or file id with a '/', an invalid owner) are refused and
// leave nothing behind.
func testMediaInvalid(t *testing.T, s MediaStore) {
	ctx := context.Background()
	for _, sha := range []string{"", "../../etc/passwd", strings.Repeat("g", 64), contentSHA("a") + "/x"} {
		if k, err := s.AcquireBlob(ctx, sha); err == nil {
			t.Errorf("AcquireBlob(%q) = %q, want an error", sha, k)
		}
		if k, err := s.ReleaseBlob(ctx, sha); err == nil {
			t.Errorf("ReleaseBlob(%q) = %q, want an error", sha, k)
		}
	}
	for _, owner := range []string{"", "a/b"} {
		if _, err := s.ChargeMedia(ctx, owner, 1, 10); err == nil {
			t.Errorf("ChargeMedia(owner %q) succeeded", owner)
		}
		f := mediaFile(1, owner, 1)
		if err := s.PutMediaFile(ctx, f); err == nil {
			t.Errorf("PutMediaFile(owner %q) succeeded", owner)
		}
	}
	for _, id := range []string{"", "a/b", "../x"} {
		f := mediaFile(1, "alice", 1)
		f.ID = id
		if err := s.PutMediaFile(ctx, f); err == nil {
			t.Errorf("PutMediaFile(id %q) succeeded", id)
		}
	}
	if got := mustUnsent(t, s, math.MaxUint64, 10); len(got) != 0 {
		t.Fatalf("refused puts left records: %v", ids(got))
	}
	f := mediaFile(2, "alice", 1)
	mustPut(t, s, f)
	if err := s.MarkMediaSent(ctx, f.ID, 0); err == nil {
		t.Error("MarkMediaSent at 0 (which means never) succeeded")
	}
	if got := mustGet(t, s, f.ID); got != f {
		t.Fatalf("record after a refused mark: %+v, want %+v", got, f)
	}
}
