package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/persistence/embedded"
	objectsfs "actorim/persistence/objects/fs"
	"actorim/protos/clientpb"
)

// testEnv is a Service over the real stores of a single node (the embedded
// Pebble store for the records, the filesystem object store for the
// bytes, each in a temporary directory), served by a real HTTP server.
type testEnv struct {
	svc     *Service
	srv     *httptest.Server
	objects *objectsfs.Store
	store   *embedded.Store
	msgs    *fakeMessages
	clock   *fakeClock
}

// putOnly is an object store without the PutFile fast path: only the
// methods of Objects are promoted.
type putOnly struct{ Objects }

// streamedObjects makes the service write objects through Put only (no
// PutFile fast path).
func streamedObjects(_ *Config, d *Deps) { d.Objects = putOnly{d.Objects} }

// newTestService builds the one Service of a test, over the stores, with
// its defaults but a fake clock and a collector that never ticks on its
// own (tests call collect). opts change its Config and Deps. The server
// stands in for the gateway: "Authorization: Bearer <user>" authenticates
// user.
func newTestService(t *testing.T, opts ...func(*Config, *Deps)) *testEnv {
	t.Helper()
	objects, err := objectsfs.Open(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the store closes after the service stops.
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	env := &testEnv{
		objects: objects,
		store:   store,
		msgs:    &fakeMessages{},
		clock:   &fakeClock{now: time.Now()},
	}
	cfg := Config{
		Dir:        t.TempDir(),
		LinkSecret: []byte("0123456789abcdef0123456789abcdef"),
		GCInterval: time.Hour,
		Now:        env.clock.Now,
	}
	deps := Deps{Objects: env.objects, Store: env.store, Messages: env.msgs}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	svc, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.svc = svc
	h := svc.Handler()
	env.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			r = r.WithContext(WithUser(r.Context(), user))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		env.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return env
}

// objectFiles returns the objects in the object store, read from its
// directory as the fs store lays it out (key "a/b" is the file a/b~; names
// starting with '.', its temporary files, are no objects), each with its
// file's info. Every key found is checked through the store's Stat.
func (e *testEnv) objectFiles(t *testing.T) map[string]os.FileInfo {
	t.Helper()
	root := e.objects.Dir()
	files := map[string]os.FileInfo{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case path == root:
			return nil
		case strings.HasPrefix(d.Name(), "."):
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir():
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		key, ok := strings.CutSuffix(filepath.ToSlash(rel), "~")
		if !ok {
			return fmt.Errorf("%s: not an object file", path)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if _, err := e.objects.Stat(t.Context(), key); err != nil {
			return fmt.Errorf("file %s, but %w", path, err)
		}
		files[key] = info
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// objectKeys returns the keys of the objects in the object store, sorted.
func (e *testEnv) objectKeys(t *testing.T) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(e.objectFiles(t)))
}

// request sends a request as user ("": none) and returns the response with
// its body read.
func (e *testEnv) request(t *testing.T, method, path, user string, body io.Reader, header ...string) (*http.Response, []byte) {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.srv.URL + path
	}
	req, err := http.NewRequestWithContext(t.Context(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Content-Length" { // the client sends req.ContentLength, not the header
			req.ContentLength, _ = strconv.ParseInt(header[i+1], 10, 64)
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, data
}

// upload is a simple upload of data named name by user; it fails the test
// unless the answer is 201.
func (e *testEnv) upload(t *testing.T, user, name string, data []byte) fileJSON {
	t.Helper()
	res, body := e.request(t, "POST", "/v1/media?name="+url.QueryEscape(name), user, bytes.NewReader(data))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s: %d %s", name, res.StatusCode, body)
	}
	var f fileJSON
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// usage returns user's quota usage.
func (e *testEnv) usage(t *testing.T, user string) int64 {
	t.Helper()
	n, err := e.store.MediaUsage(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expectError checks an error answer: status and the gateway's JSON body
// {"error": {"code": "ERR_...", "message": "..."}}.
func expectError(t *testing.T, res *http.Response, body []byte, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d (%s)", res.StatusCode, status, body)
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %s and a message", e.Error, code)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// randomBytes returns n bytes that sniff as application/octet-stream.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	fillRandom(b, seed)
	return b
}

// fillRandom fills b from an xorshift generator seeded by seed.
func fillRandom(b []byte, seed uint64) uint64 {
	x := seed | 1
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
	return x
}

// randomReader yields left bytes from fillRandom's generator, hashing them.
type randomReader struct {
	left int64
	x    uint64
	h    hasher
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	r.x = fillRandom(p, r.x)
	if r.h.Hash == nil {
		r.h = newHasher()
	}
	r.h.Write(p)
	r.left -= int64(len(p))
	return len(p), nil
}

func (r *randomReader) sum() string { return r.h.sum() }

// hasher is SHA-256 with a hex sum.
type hasher struct{ hash.Hash }

func newHasher() hasher { return hasher{sha256.New()} }

func (h hasher) sum() string { return hex.EncodeToString(h.Sum(nil)) }

// testImage is a w x h gradient, half transparent when alpha.
func testImage(w, h int, alpha bool) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := uint8(255)
			if alpha && x < w/2 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, a})
		}
	}
	return img
}

func jpegBytes(t *testing.T, w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testImage(w, h, false), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngBytes(t *testing.T, w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, testImage(w, h, true)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeader returns a PNG that declares w x h pixels (1-bit grayscale)
// followed by idat, the compressed rows (none: a truncated file, which
// image.DecodeConfig accepts since it reads the header only).
func pngHeader(w, h uint32, idat []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		b.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		b.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 1, 0 // bit depth 1, grayscale
	chunk("IHDR", ihdr)
	if idat != nil {
		chunk("IDAT", idat)
		chunk("IEND", nil)
	}
	return b.Bytes()
}

// tusCreate creates a tus upload of size bytes named name; it returns the
// upload's URL.
func (e *testEnv) tusCreate(t *testing.T, user, name string, size int64) string {
	t.Helper()
	res, body := e.request(t, "POST", "/v1/uploads/", user, nil,
		"Tus-Resumable", "1.0.0", "Upload-Length", strconv.FormatInt(size, 10),
		"Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("tus create: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	if !strings.Contains(loc, "/v1/uploads/") {
		t.Fatalf("tus create: Location %q", loc)
	}
	return loc
}

// tusPatch sends data at offset to the upload at loc.
func (e *testEnv) tusPatch(t *testing.T, user, loc string, offset int64, data []byte) (*http.Response, []byte) {
	t.Helper()
	return e.request(t, "PATCH", loc, user, bytes.NewReader(data),
		"Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream",
		"Upload-Offset", strconv.FormatInt(offset, 10))
}

// tusOffset returns the offset HEAD reports, or -1 with the status when
// the upload is not there.
func (e *testEnv) tusOffset(t *testing.T, user, loc string) (int64, int) {
	t.Helper()
	res, _ := e.request(t, "HEAD", loc, user, nil, "Tus-Resumable", "1.0.0")
	if res.StatusCode != http.StatusOK {
		return -1, res.StatusCode
	}
	n, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n, res.StatusCode
}

// fileOf returns the record of id.
func (e *testEnv) fileOf(t *testing.T, id string) persistence.MediaFile {
	t.Helper()
	f, err := e.store.GetMediaFile(t.Context(), id)
	if err != nil {
		t.Fatalf("file %s: %v", id, err)
	}
	return f
}

// fakeMessages stands for the actors' Messages: each user's timeline as a
// map; its messages carry a file as image content.
type fakeMessages struct {
	mu   sync.Mutex
	msgs map[string]map[uint64]*clientpb.Message
}

func (f *fakeMessages) MediaMessage(_ context.Context, user string, id uint64) (*clientpb.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[user][id]
	if !ok {
		return nil, fmt.Errorf("message %d of %s: %w", id, user, persistence.ErrNotFound)
	}
	return m, nil
}

// add puts a message carrying fileID into user's timeline.
func (f *fakeMessages) add(user string, id uint64, fileID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgs == nil {
		f.msgs = map[string]map[uint64]*clientpb.Message{}
	}
	if f.msgs[user] == nil {
		f.msgs[user] = map[uint64]*clientpb.Message{}
	}
	f.msgs[user][id] = &clientpb.Message{Id: id, Content: clientpb.MediaContent(clientpb.MediaImage, &clientpb.Media{FileId: fileID})}
}

// recall marks user's message id recalled. It keeps the content, so that a
// test sees the recall itself refused, not a missing file id.
func (f *fakeMessages) recall(user string, id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[user][id].Recalled = true
}

// fakeClock is the service's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
