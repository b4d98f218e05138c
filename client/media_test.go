package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/client"
	"actorim/client/mediatest"
	"actorim/protos/clientpb"
)

// connKey finds a request's connection in its context (see cutter).
type connKey struct{}

// mediaServer runs the node's media service (mediatest) behind a
// middleware that counts the bytes the server reads from PATCH bodies, and
// can cut the connection of the first PATCH after cutAt bytes (0: never).
type mediaServer struct {
	*httptest.Server
	media *mediatest.Server
	cutAt int64

	mu      sync.Mutex
	read    int64   // PATCH body bytes the server read
	offsets []int64 // Upload-Offset of each PATCH
	heads   int
	cut     bool
}

func newMediaServer(t *testing.T, cutAt int64) *mediaServer {
	t.Helper()
	m, err := mediatest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the service stops after the server.
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	s := &mediaServer{media: m, cutAt: cutAt}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *mediaServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead:
		s.mu.Lock()
		s.heads++
		s.mu.Unlock()
	case http.MethodPatch:
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		s.mu.Lock()
		s.offsets = append(s.offsets, off)
		cut := s.cutAt > 0 && !s.cut
		s.cut = s.cut || cut
		s.mu.Unlock()
		limit := int64(-1)
		if cut {
			limit = s.cutAt
		}
		r.Body = &countingBody{s: s, r: r.Body, limit: limit, conn: r.Context().Value(connKey{}).(net.Conn)}
	}
	s.media.ServeHTTP(w, r)
}

func (s *mediaServer) stats() (read int64, offsets []int64, heads int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read, append([]int64(nil), s.offsets...), s.heads
}

// countingBody counts what the server reads; with a limit, it closes the
// connection once limit bytes have gone through, as a lost network would.
type countingBody struct {
	s     *mediaServer
	r     io.ReadCloser
	limit int64
	n     int64
	conn  net.Conn
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.limit >= 0 {
		if b.n >= b.limit {
			_ = b.conn.Close()
			return 0, io.ErrUnexpectedEOF
		}
		p = p[:min(int64(len(p)), b.limit-b.n)]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.s.mu.Lock()
	b.s.read += int64(n)
	b.s.mu.Unlock()
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

// randomBytes returns n bytes of noise from a fixed seed. The node sniffs
// a file's type from its first bytes, and noise of crypto/rand sometimes
// starts with a signature (about 4 in 10,000: "MZ" is an executable,
// refused; 0xFF 0xFB is MP3): this noise sniffs as
// application/octet-stream every run.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'m', 'e', 'd', 'i', 'a'}).Read(b) // never fails
	return b
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// progressLog records the Progress callback and checks it never goes back.
type progressLog struct {
	mu    sync.Mutex
	last  int64
	total int64
	calls int
	back  bool
}

func (p *progressLog) fn(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls > 0 && done <= p.last {
		p.back = true
	}
	p.last, p.total = done, total
	p.calls++
}

func (p *progressLog) check(t *testing.T, size int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.back || p.last != size || p.total != size || p.calls < 3 {
		t.Fatalf("progress: went back %v, last %d of %d, %d calls; want monotonic up to %d", p.back, p.last, p.total, p.calls, size)
	}
}

// TestUploadResumesAfterCut: the connection of the first PATCH dies half
// way through its chunk; the client asks the server where it stands and
// sends only the rest. The server reads each byte once.
func TestUploadResumesAfterCut(t *testing.T) {
	const chunk = client.DefaultChunkSize
	data := randomBytes(t, 2*chunk+12345)
	srv := newMediaServer(t, chunk/2)
	h := &client.HTTP{BaseURL: srv.URL, Token: "alice"}
	var prog progressLog
	start := time.Now()
	f, err := h.Upload(ctxT(t), bytes.NewReader(data), int64(len(data)), "noise.bin",
		client.UploadOptions{Progress: prog.fn, RetryMin: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("uploaded %d bytes in %v", len(data), time.Since(start))
	read, offsets, heads := srv.stats()
	if read != int64(len(data)) {
		t.Errorf("the server read %d bytes, want %d: something was sent twice", read, len(data))
	}
	want := []int64{0, chunk / 2, chunk/2 + chunk} // cut half way, then two chunks from there
	if !slices.Equal(offsets, want) {
		t.Errorf("PATCH offsets %v, want %v", offsets, want)
	}
	if heads != 1 {
		t.Errorf("%d HEAD requests, want 1", heads)
	}
	prog.check(t, int64(len(data)))
	if f.ID == "" || f.Name != "noise.bin" || f.Size != int64(len(data)) || f.SHA256 != hexSHA(data) || f.MIMEType != "application/octet-stream" {
		t.Fatalf("file %+v", f)
	}
	var got bytes.Buffer
	if _, err := h.Download(ctxT(t), f.ID, 0, &got, 0); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download: %v, %d bytes equal %v", err, got.Len(), bytes.Equal(got.Bytes(), data))
	}
}

// TestResumeUpload: an upload stopped (the process ends) after a chunk and
// a half is finished by a fresh client from its URL, sending only what the
// server does not have.
func TestResumeUpload(t *testing.T) {
	const chunk = 1 << 20
	data := randomBytes(t, 3*chunk+7)
	srv := newMediaServer(t, 0)
	ctx, stop := context.WithCancel(ctxT(t))
	var uploadURL string
	_, err := (&client.HTTP{BaseURL: srv.URL, Token: "alice"}).Upload(ctx, bytes.NewReader(data), int64(len(data)), "a.bin",
		client.UploadOptions{ChunkSize: chunk, Created: func(u string) { uploadURL = u },
			Progress: func(done, _ int64) {
				if done >= chunk+chunk/2 {
					stop()
				}
			}})
	if !errors.Is(err, context.Canceled) || uploadURL == "" {
		t.Fatalf("stopped upload: %v, URL %q", err, uploadURL)
	}

	h := &client.HTTP{BaseURL: srv.URL, Token: "alice"}
	if _, err := h.ResumeUpload(ctxT(t), uploadURL, bytes.NewReader(data[:10]), 10, client.UploadOptions{}); !errors.Is(err, client.ErrUploadMismatch) {
		t.Fatalf("resume with other bytes: %v, want ErrUploadMismatch", err)
	}
	other := &client.HTTP{BaseURL: srv.URL, Token: "mallory"}
	if _, err := other.ResumeUpload(ctxT(t), uploadURL, bytes.NewReader(data), int64(len(data)), client.UploadOptions{}); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("resume by another user: %v, want ERR_NOT_FOUND", err)
	}
	var prog progressLog
	f, err := h.ResumeUpload(ctxT(t), uploadURL, bytes.NewReader(data), int64(len(data)), client.UploadOptions{ChunkSize: chunk, Progress: prog.fn})
	if err != nil {
		t.Fatal(err)
	}
	read, offsets, _ := srv.stats()
	if read != int64(len(data)) {
		t.Errorf("the server read %d bytes, want %d (offsets %v)", read, len(data), offsets)
	}
	prog.check(t, int64(len(data)))
	if f.ID != client.FileIDOf(uploadURL) || f.SHA256 != hexSHA(data) {
		t.Fatalf("file %+v, want id %s", f, client.FileIDOf(uploadURL))
	}
	// The node lets an upload go once it is a file (HEAD 404), and its URL
	// still resumes, with nothing to send: the file's record answers.
	req, _ := http.NewRequest(http.MethodHead, uploadURL, nil)
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("Tus-Resumable", client.TusVersion)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of a finished upload: %v %v, want 404", resp, err)
	}
	if f2, err := h.ResumeUpload(ctxT(t), uploadURL, bytes.NewReader(data), int64(len(data)), client.UploadOptions{}); err != nil || f2.ID != f.ID {
		t.Fatalf("resume of a finished upload: %+v, %v", f2, err)
	}
}

func TestUploadErrors(t *testing.T) {
	srv := newMediaServer(t, 0)
	ctx := ctxT(t)
	t.Run("no-token", func(t *testing.T) {
		start := time.Now()
		_, err := (&client.HTTP{BaseURL: srv.URL}).Upload(ctx, strings.NewReader("x"), 1, "x", client.UploadOptions{})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != clientpb.ErrorCode_ERR_UNAUTHENTICATED || e.Status != http.StatusUnauthorized || e.Message != "missing bearer token" {
			t.Fatalf("got %#v", err)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("a refusal was retried")
		}
	})
	t.Run("unknown-upload", func(t *testing.T) {
		_, err := (&client.HTTP{BaseURL: srv.URL, Token: "alice"}).ResumeUpload(ctx, "/v1/uploads/nope", strings.NewReader("x"), 1, client.UploadOptions{})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != clientpb.ErrorCode_ERR_NOT_FOUND || e.Status != http.StatusNotFound {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("unreadable-source", func(t *testing.T) {
		_, err := (&client.HTTP{BaseURL: srv.URL, Token: "alice"}).Upload(ctx, failingReader{}, 100, "x", client.UploadOptions{RetryMin: time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("server-gone", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		start := time.Now()
		_, err := (&client.HTTP{BaseURL: dead.URL, Token: "alice"}).Upload(ctx, strings.NewReader("x"), 1, "x",
			client.UploadOptions{Retries: 2, RetryMin: time.Millisecond})
		if err == nil || client.CodeOf(err) != 0 || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestUploadEmptyAndSimple(t *testing.T) {
	srv := newMediaServer(t, 0)
	h := &client.HTTP{BaseURL: srv.URL, Token: "alice"}
	ctx := ctxT(t)
	f, err := h.Upload(ctx, bytes.NewReader(nil), 0, "empty", client.UploadOptions{})
	if err != nil || f.Size != 0 || f.SHA256 != hexSHA(nil) {
		t.Fatalf("empty upload: %+v, %v", f, err)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(t, 3000)...)
	f, err = h.UploadSimple(ctx, bytes.NewReader(png), "cat 🐈.png")
	if err != nil || f.Size != int64(len(png)) || f.MIMEType != "image/png" || f.Name != "cat 🐈.png" || client.MediaKind(f.MIMEType) != "image" {
		t.Fatalf("simple upload: %+v, %v", f, err)
	}
	info, err := h.Info(ctx, f.ID, 0)
	if err != nil || info != f {
		t.Fatalf("info %+v, %v; want %+v", info, err, f)
	}
	var buf bytes.Buffer
	d, err := h.Download(ctx, f.ID, 0, &buf, 0)
	if err != nil || d.Name != "cat 🐈.png" || d.Disposition != "inline" || d.SHA256 != f.SHA256 || d.Size != f.Size || d.MIMEType != "image/png" || !bytes.Equal(buf.Bytes(), png) {
		t.Fatalf("download %+v, %v", d, err)
	}
	if _, err := h.DownloadThumb(ctx, f.ID, 0, io.Discard); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("thumb: %v", err)
	}
	if _, err := (&client.HTTP{BaseURL: srv.URL, Token: "bob"}).Info(ctx, f.ID, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("info of another's file: %v", err)
	}
	l, err := h.Link(ctx, f.ID, 0)
	if err != nil || !strings.HasPrefix(l.URL, srv.URL+"/v1/media/"+f.ID+"?") || time.Until(l.ExpiresAt) < time.Minute {
		t.Fatalf("link %+v, %v", l, err)
	}
}

// TestDownloadResume: a download cut short is finished with a Range
// request from where it stopped, against http.ServeContent.
func TestDownloadResume(t *testing.T) {
	data := randomBytes(t, 1<<20+3)
	modified := time.Now()
	ignoreRange := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer alice" || r.URL.Path != "/v1/media/f1" || r.URL.Query().Get("msg") != "42" {
			http.Error(w, "no", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("ETag", `"`+hexSHA(data)+`"`)
		w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
		if ignoreRange {
			_, _ = w.Write(data)
			return
		}
		http.ServeContent(w, r, "", modified, bytes.NewReader(data))
	}))
	defer srv.Close()
	h := &client.HTTP{BaseURL: srv.URL, Token: "alice"}
	ctx := ctxT(t)

	var got bytes.Buffer
	d, err := h.Download(ctx, "f1", 42, &failAfter{w: &got, n: 300_000}, 0)
	if err == nil || d.Written != 300_000 || d.Offset != 0 || d.Size != int64(len(data)) {
		t.Fatalf("cut download: %+v, %v", d, err)
	}
	d, err = h.Download(ctx, "f1", 42, &got, d.Offset+d.Written)
	if err != nil || d.Offset != 300_000 || d.Written != int64(len(data))-300_000 || d.Size != int64(len(data)) ||
		d.Name != "résumé.pdf" || d.Disposition != "attachment" || d.SHA256 != hexSHA(data) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("resumed download: %+v, %v, equal %v", d, err, bytes.Equal(got.Bytes(), data))
	}
	// Complete already: 416 from the server, nothing to write.
	if d, err := h.Download(ctx, "f1", 42, &got, int64(len(data))); err != nil || d.Written != 0 || d.Size != int64(len(data)) {
		t.Fatalf("download of a complete file: %+v, %v", d, err)
	}
	// A server that ignores Range: the bytes held are skipped.
	ignoreRange = true
	var tail bytes.Buffer
	if d, err := h.Download(ctx, "f1", 42, &tail, 1000); err != nil || !bytes.Equal(tail.Bytes(), data[1000:]) || d.Offset != 1000 {
		t.Fatalf("download without Range support: %+v, %v", d, err)
	}
	if _, err := h.Download(ctx, "f1", 0, io.Discard, 0); err == nil || !strings.Contains(err.Error(), "HTTP 418") {
		t.Fatalf("refused download: %v", err)
	}
}

// failAfter fails writes after n bytes, as a full disk would.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestMediaKind(t *testing.T) {
	for mime, want := range map[string]string{
		"image/jpeg": "image", "IMAGE/PNG": "image", "audio/ogg; codecs=opus": "audio", "video/mp4": "video",
		"application/pdf": "file", "text/plain; charset=utf-8": "file", "": "file", "imagex/foo": "file",
	} {
		if got := client.MediaKind(mime); got != want {
			t.Errorf("MediaKind(%q) = %q, want %q", mime, got, want)
		}
	}
}
