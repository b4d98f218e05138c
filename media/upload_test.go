package media

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"image/jpeg"
	"image/png"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buckket/go-blurhash"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSimpleUploadInfoDownload(t *testing.T) {
	env := newTestService(t)
	data := randomBytes(300_000, 1)
	f := env.upload(t, "alice", "report final.bin", data)
	if !validFileID(f.FileID) || f.Size != int64(len(data)) || f.SHA256 != sha(data) ||
		f.MIMEType != "application/octet-stream" || f.Name != "report final.bin" || f.CreatedAtMs == 0 {
		t.Fatalf("upload answered %+v", f)
	}
	if f.QuotaUsed != int64(len(data)) || f.QuotaLimit != 1<<30 {
		t.Fatalf("quota %d of %d", f.QuotaUsed, f.QuotaLimit)
	}

	res, body := env.request(t, "GET", "/v1/media/"+f.FileID+"/info", "alice", nil)
	var info fileJSON
	if res.StatusCode != 200 || json.Unmarshal(body, &info) != nil || info != f {
		t.Fatalf("info: %d %s, want %+v", res.StatusCode, body, f)
	}

	res, body = env.request(t, "GET", "/v1/media/"+f.FileID, "alice", nil)
	if res.StatusCode != 200 || sha(body) != sha(data) {
		t.Fatalf("download: %d, %d bytes, sha256 %s", res.StatusCode, len(body), sha(body))
	}
	want := map[string]string{
		"Content-Type":            "application/octet-stream",
		"Content-Length":          strconv.Itoa(len(data)),
		"Etag":                    `"` + sha(data) + `"`,
		"Accept-Ranges":           "bytes",
		"Cache-Control":           "private, max-age=31536000, immutable",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
		"Content-Disposition":     "attachment; filename*=UTF-8''report%20final.bin",
		"Last-Modified":           time.UnixMilli(int64(f.CreatedAtMs)).UTC().Format(http.TimeFormat),
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}

	res, body = env.request(t, "HEAD", "/v1/media/"+f.FileID, "alice", nil)
	if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("HEAD: %d, %d body bytes, Content-Length %s", res.StatusCode, len(body), res.Header.Get("Content-Length"))
	}
	res, body = env.request(t, "GET", "/v1/media/"+f.FileID+"/thumb", "alice", nil)
	expectError(t, res, body, 404, "ERR_NOT_FOUND")
	res, body = env.request(t, "POST", "/v1/media?name=x", "", bytes.NewReader(data[:1000]))
	expectError(t, res, body, 401, "ERR_UNAUTHENTICATED")

	// Without Content-Length: charged ahead while it arrives, then what it is.
	res, body = env.request(t, "POST", "/v1/media?name=y", "bob", io.MultiReader(bytes.NewReader(data[:1000])))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("chunked upload: %d %s", res.StatusCode, body)
	}
	if n := env.usage(t, "bob"); n != 1000 {
		t.Fatalf("usage %d after a chunked upload of 1000 bytes", n)
	}
}

func TestImagesGetDimensionsThumbnailBlurhash(t *testing.T) {
	env := newTestService(t)
	for _, tc := range []struct {
		name          string
		data          []byte
		mime          string
		width, height int32
		thumbW        int32
		thumbH        int32
	}{
		{"cat.jpg", jpegBytes(t, 1000, 600), "image/jpeg", 1000, 600, 320, 192},
		{"tall.png", pngBytes(t, 400, 800), "image/png", 400, 800, 160, 320},
		{"small.png", pngBytes(t, 40, 30), "image/png", 40, 30, 40, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := env.upload(t, "alice", tc.name, tc.data)
			if f.MIMEType != tc.mime || f.Width != tc.width || f.Height != tc.height {
				t.Fatalf("got %s %dx%d", f.MIMEType, f.Width, f.Height)
			}
			th := f.Thumbnail
			if th == nil || th.MIMEType != "image/jpeg" || th.Width != tc.thumbW || th.Height != tc.thumbH || th.Size == 0 {
				t.Fatalf("thumbnail %+v", th)
			}
			if x, y, err := blurhash.Components(f.Blurhash); err != nil || x != 4 || y != 3 {
				t.Fatalf("blurhash %q: %dx%d %v", f.Blurhash, x, y, err)
			}
			res, body := env.request(t, "GET", "/v1/media/"+f.FileID+"/thumb", "alice", nil)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" || int64(len(body)) != th.Size {
				t.Fatalf("thumb: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
			}
			img, err := jpeg.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != int(th.Width) || b.Dy() != int(th.Height) || b.Dx() > 320 || b.Dy() > 320 {
				t.Fatalf("thumbnail decodes to %v", b)
			}
			res, _ = env.request(t, "HEAD", "/v1/media/"+f.FileID, "alice", nil)
			if d := res.Header.Get("Content-Disposition"); d != "inline; filename*=UTF-8''"+tc.name {
				t.Fatalf("Content-Disposition %q", d)
			}
		})
	}
}

func TestUploadTooLarge(t *testing.T) {
	env := newTestService(t, func(c *Config, _ *Deps) { c.MaxBytes = 1000 })
	t.Run("declared", func(t *testing.T) {
		res, body := env.request(t, "POST", "/v1/media?name=big", "alice", bytes.NewReader(make([]byte, 1001)))
		expectError(t, res, body, 413, "ERR_PAYLOAD_TOO_LARGE")
	})
	t.Run("streamed beyond", func(t *testing.T) {
		// No Content-Length: the body is sent chunked, and cut off at 1000
		// bytes, not read to its end (10 MiB).
		before := testutil.ToFloat64(env.svc.metrics.received)
		body := &randomReader{left: 10 << 20, x: 5}
		res, data := env.request(t, "POST", "/v1/media?name=big", "alice", body)
		expectError(t, res, data, 413, "ERR_PAYLOAD_TOO_LARGE")
		if got := testutil.ToFloat64(env.svc.metrics.received) - before; got > 1000 {
			t.Fatalf("%v bytes written to disk", got)
		}
	})
	t.Run("tus declared", func(t *testing.T) {
		res, body := env.request(t, "POST", "/v1/uploads/", "alice", nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1001")
		expectError(t, res, body, 413, "ERR_PAYLOAD_TOO_LARGE")
	})
	t.Run("tus beyond the declared length", func(t *testing.T) {
		loc := env.tusCreate(t, "alice", "f", 500)
		res, body := env.tusPatch(t, "alice", loc, 0, make([]byte, 600))
		expectError(t, res, body, 413, "ERR_PAYLOAD_TOO_LARGE")
		if n, _ := env.tusOffset(t, "alice", loc); n != 0 {
			t.Fatalf("offset %d after a refused PATCH", n)
		}
	})
	if n := env.usage(t, "alice"); n != 500 { // the tus upload still open
		t.Fatalf("usage %d, want 500", n)
	}
	if left, _ := os.ReadDir(env.svc.simpleDir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestQuotaExceededReleasesCharge(t *testing.T) {
	env := newTestService(t, func(c *Config, _ *Deps) { c.QuotaBytes = 1000 })
	env.upload(t, "alice", "a", randomBytes(600, 1))
	for name, send := range map[string]func() (*http.Response, []byte){
		"simple": func() (*http.Response, []byte) {
			return env.request(t, "POST", "/v1/media?name=b", "alice", bytes.NewReader(randomBytes(500, 2)))
		},
		"simple chunked": func() (*http.Response, []byte) {
			return env.request(t, "POST", "/v1/media?name=b", "alice", io.MultiReader(bytes.NewReader(randomBytes(500, 2))))
		},
		"tus": func() (*http.Response, []byte) {
			return env.request(t, "POST", "/v1/uploads/", "alice", nil, "Tus-Resumable", "1.0.0", "Upload-Length", "500")
		},
	} {
		t.Run(name, func(t *testing.T) {
			res, body := send()
			expectError(t, res, body, 413, "ERR_QUOTA_EXCEEDED")
			if n := env.usage(t, "alice"); n != 600 {
				t.Fatalf("usage %d after a refusal, want 600", n)
			}
		})
	}
	// A body of unknown length that fits is charged what it is, though
	// the quota has no room for a step ahead of it.
	res, body := env.request(t, "POST", "/v1/media?name=c", "alice", io.MultiReader(bytes.NewReader(randomBytes(300, 5))))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("chunked upload within the quota: %d %s", res.StatusCode, body)
	}
	if n := env.usage(t, "alice"); n != 900 {
		t.Fatalf("usage %d, want 900", n)
	}
	// Bob's quota is his own.
	env.upload(t, "bob", "b", randomBytes(900, 3))
}

// elfExecutable is the start of an ELF executable (64-bit, little-endian,
// e_type ET_EXEC).
func elfExecutable() []byte {
	b := make([]byte, 4096)
	copy(b, "\x7fELF\x02\x01\x01")
	b[16] = 2
	return b
}

func TestDeniedTypeRefused(t *testing.T) {
	env := newTestService(t)
	for name, data := range map[string][]byte{
		"elf":    elfExecutable(),
		"pe exe": append([]byte("MZ"), randomBytes(2000, 4)...),
	} {
		t.Run(name, func(t *testing.T) {
			res, body := env.request(t, "POST", "/v1/media?name=tool", "alice", bytes.NewReader(data))
			expectError(t, res, body, 415, "ERR_MEDIA_TYPE_REFUSED")
			loc := env.tusCreate(t, "alice", "tool", int64(len(data)))
			res, body = env.tusPatch(t, "alice", loc, 0, data)
			expectError(t, res, body, 415, "ERR_MEDIA_TYPE_REFUSED")
			if _, status := env.tusOffset(t, "alice", loc); status != 404 {
				t.Fatalf("refused tus upload: HEAD %d, want 404 (gone)", status)
			}
		})
	}
	if n := env.usage(t, "alice"); n != 0 {
		t.Fatalf("usage %d after refusals", n)
	}
	// No record was marked sent, so UnsentMedia up to the end of time lists
	// every record there is.
	recs, err := env.store.UnsentMedia(t.Context(), math.MaxUint64, 100)
	if err != nil {
		t.Fatal(err)
	}
	if keys := env.objectKeys(t); len(recs) != 0 || len(keys) != 0 {
		t.Fatalf("refused files stored: %d records, objects %v", len(recs), keys)
	}
	if got := testutil.ToFloat64(env.svc.metrics.uploads.WithLabelValues("refused")); got != 4 {
		t.Fatalf("refused uploads counted %v, want 4", got)
	}
}

func TestAllowedTypes(t *testing.T) {
	env := newTestService(t, func(c *Config, _ *Deps) { c.AllowedTypes = []string{"image/*", "application/pdf"} })
	env.upload(t, "alice", "a.png", pngBytes(t, 10, 10))
	res, body := env.request(t, "POST", "/v1/media?name=a.txt", "alice", strings.NewReader("just some text"))
	expectError(t, res, body, 415, "ERR_MEDIA_TYPE_REFUSED")
}

// heapGrowth runs f and returns how far the live heap rose above what it
// was before, sampled every half millisecond (garbage collected often, so
// that what is measured is what f holds, not what it dropped).
func heapGrowth(t *testing.T, f func()) uint64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { rtmetrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// bigBlankPNG is a valid PNG of w x h pixels, 1-bit grayscale, all black:
// a few KiB of file that decodes to w*h bytes.
func bigBlankPNG(t *testing.T, w, h int) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, 1+(w+7)/8) // filter byte 0, then the bits
	for range h {
		zw.Write(row)
	}
	zw.Close()
	data := pngHeader(uint32(w), uint32(h), z.Bytes())
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != w || cfg.Height != h {
		t.Fatalf("bigBlankPNG: %v %v", cfg, err)
	}
	return data
}

func TestDecompressionBombRefusedWithoutDecoding(t *testing.T) {
	env := newTestService(t)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tiny file declaring 100000x100000", pngHeader(100000, 100000, nil)},
		{"valid 7000x6000 over 40 MP", bigBlankPNG(t, 7000, 6000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res *http.Response
			var body []byte
			grew := heapGrowth(t, func() {
				res, body = env.request(t, "POST", "/v1/media?name=bomb.png", "alice", bytes.NewReader(tc.data))
			})
			expectError(t, res, body, 413, "ERR_PAYLOAD_TOO_LARGE")
			if !strings.Contains(string(body), "pixels") {
				t.Fatalf("message does not name the pixel limit: %s", body)
			}
			if n := testutil.ToFloat64(env.svc.metrics.decoded); n != 0 {
				t.Fatalf("%v images decoded", n)
			}
			if grew > 8<<20 {
				t.Fatalf("heap grew %d KiB during the request", grew>>10)
			}
			t.Logf("heap grew %d KiB", grew>>10)
		})
	}
	if n := env.usage(t, "alice"); n != 0 {
		t.Fatalf("usage %d after refusals", n)
	}
}

func TestSameBytesStoredOnce(t *testing.T) {
	env := newTestService(t)
	data := randomBytes(50_000, 7)
	a := env.upload(t, "alice", "a.bin", data)
	first := env.objectFiles(t)[env.fileOf(t, a.FileID).Blob]
	if first == nil {
		t.Fatalf("first upload: no object %s", env.fileOf(t, a.FileID).Blob)
	}
	b := env.upload(t, "bob", "b.bin", data)
	if a.FileID == b.FileID || a.SHA256 != b.SHA256 {
		t.Fatalf("files %s %s, sha256 %s %s", a.FileID, b.FileID, a.SHA256, b.SHA256)
	}
	ra, rb := env.fileOf(t, a.FileID), env.fileOf(t, b.FileID)
	if ra.Blob != rb.Blob {
		t.Fatalf("blobs %s and %s", ra.Blob, rb.Blob)
	}
	// One object, written once: both Put and PutFile rename a new file
	// into place, so a second write would have replaced the first's file.
	files := env.objectFiles(t)
	if len(files) != 1 || files[ra.Blob] == nil {
		t.Fatalf("objects %v, want %s only", slices.Collect(maps.Keys(files)), ra.Blob)
	}
	if !os.SameFile(first, files[ra.Blob]) || !first.ModTime().Equal(files[ra.Blob].ModTime()) {
		t.Fatalf("object %s written again by the second upload", ra.Blob)
	}
	for _, u := range []struct{ user, id string }{{"alice", a.FileID}, {"bob", b.FileID}} {
		if res, body := env.request(t, "GET", "/v1/media/"+u.id, u.user, nil); res.StatusCode != 200 || sha(body) != sha(data) {
			t.Fatalf("%s: %d", u.user, res.StatusCode)
		}
	}
	// Two references, counted by releasing them (last in the test, since it
	// uses them up): the first leaves one, the second is the last and names
	// the object to delete, a third has none to drop.
	ctx := t.Context()
	if key, err := env.store.ReleaseBlob(ctx, a.SHA256); err != nil || key != "" {
		t.Fatalf("first release: %q %v; want a reference left", key, err)
	}
	if key, err := env.store.ReleaseBlob(ctx, a.SHA256); err != nil || key != ra.Blob {
		t.Fatalf("second release: %q %v; want the last, deleting %s", key, err, ra.Blob)
	}
	if key, err := env.store.ReleaseBlob(ctx, a.SHA256); err == nil {
		t.Fatalf("third release: %q; want an error, no references left", key)
	}
}

func TestMemoryBoundedFor64MiB(t *testing.T) {
	env := newTestService(t, streamedObjects)
	const size = 64 << 20
	var want, got string
	var f fileJSON
	grewUp := heapGrowth(t, func() {
		src := &randomReader{left: size, x: 99}
		res, body := env.request(t, "POST", "/v1/media?name=big.bin", "alice", io.NopCloser(src), "Content-Length", strconv.Itoa(size))
		if res.StatusCode != 201 || json.Unmarshal(body, &f) != nil {
			t.Fatalf("upload: %d %s", res.StatusCode, body)
		}
		want = src.sum()
	})
	grewDown := heapGrowth(t, func() {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", env.srv.URL+"/v1/media/"+f.FileID, nil)
		req.Header.Set("Authorization", "Bearer alice")
		res, err := env.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		h := newHasher()
		if n, err := io.Copy(h, res.Body); err != nil || n != size {
			t.Fatalf("download: %d bytes, %v", n, err)
		}
		got = h.sum()
	})
	if f.SHA256 != want || got != want {
		t.Fatalf("sha256: sent %s, server %s, received %s", want, f.SHA256, got)
	}
	t.Logf("heap grew %d KiB uploading, %d KiB downloading 64 MiB", grewUp>>10, grewDown>>10)
	if grewUp > 4<<20 || grewDown > 4<<20 {
		t.Fatalf("heap grew %d KiB up, %d KiB down", grewUp>>10, grewDown>>10)
	}
}
