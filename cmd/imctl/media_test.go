package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"actorim/client"
	"actorim/client/mediatest"
	"actorim/protos/clientpb"
)

// TestMediaLines: each media kind reads back as its kind, and listen's line
// names what a person needs before downloading.
func TestMediaLines(t *testing.T) {
	for _, kind := range []string{"image", "audio", "video", "file"} {
		c, err := mediaContent(kind, &clientpb.Media{FileId: "f1"})
		if err != nil {
			t.Fatal(err)
		}
		if k, m, ok := mediaOf(c); !ok || k != kind || m.GetFileId() != "f1" {
			t.Fatalf("%s read back as %s %v %v", kind, k, m, ok)
		}
	}
	if _, err := mediaContent("sticker", &clientpb.Media{}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	img := &clientpb.Media{FileId: "f2", Name: "cat.jpg", MimeType: "image/jpeg", Size: 120 << 10, Sha256: "ab12", Width: 1024, Height: 768,
		Blurhash: "LEHV6n", Thumbnail: &clientpb.Thumbnail{MimeType: "image/jpeg", Width: 320, Height: 240, Size: 9000}}
	got, _ := mediaContent("image", img)
	msg := &clientpb.Message{Id: 77, From: "alice", To: "bob", SentAtMs: uint64(time.Now().UnixMilli()), Content: got}
	line := entryLine(&clientpb.Entry{Seq: 5, Item: &clientpb.Entry_Message{Message: msg}})
	if !strings.HasSuffix(line, " alice -> bob: [image cat.jpg 1024x768 120 KiB file=f2 msg=77]") || !strings.HasPrefix(line, "[seq 5] ") {
		t.Fatalf("line %q", line)
	}
	if _, _, ok := mediaOf(client.Text("hi")); ok {
		t.Fatal("text read as media")
	}
	voice, _ := mediaContent("audio", &clientpb.Media{FileId: "f3", Name: "rec.ogg", Voice: true, DurationMs: 72_500, Caption: "hey"})
	if s, _ := mediaText(&clientpb.Message{Id: 9, Content: voice}); s != "[voice rec.ogg 1:13 file=f3 msg=9] hey" {
		t.Fatalf("voice line %q", s)
	}
}

// mediaApp runs imctl commands as alice against the node's media service
// (mediatest).
type mediaApp struct {
	srv  *httptest.Server
	api  *mediatest.Server
	home string
}

func newMediaApp(t *testing.T) *mediaApp {
	t.Helper()
	api, err := mediatest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the service stops after the server.
	t.Cleanup(func() {
		if err := api.Close(); err != nil {
			t.Error(err)
		}
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	home := t.TempDir()
	p := &profile{UserID: "alice", Token: "alice", DeviceID: "d1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := p.save(home); err != nil {
		t.Fatal(err)
	}
	return &mediaApp{srv: srv, api: api, home: home}
}

func (m *mediaApp) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--server", m.srv.URL, "--home", m.home, "--as", "alice"}, args...)
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func (m *mediaApp) app() *app {
	return &app{g: globals{server: m.srv.URL, home: m.home, as: "alice", codec: "proto", timeout: 10 * time.Second},
		stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
}

// noise returns n bytes of noise from a fixed seed. The node sniffs a
// file's type from its first bytes, and noise of crypto/rand sometimes
// starts with a signature (about 4 in 10,000: "MZ" is an executable,
// refused): this noise sniffs as application/octet-stream every run.
func noise(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'i', 'm', 'c', 't', 'l'}).Read(b) // never fails
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDownload: a download writes the file and checks its SHA-256; a
// partial file is resumed with a Range request; a damaged one is caught.
func TestDownload(t *testing.T) {
	m := newMediaApp(t)
	data := noise(1<<20 + 5)
	id, err := m.api.Put("alice", "../report.bin", data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "r.bin")

	code, stdout, stderr := m.run(t, "download", id, "-o", out)
	got, _ := os.ReadFile(out)
	if code != 0 || !bytes.Equal(got, data) || !strings.Contains(stdout, "sha256 "+sum(data)+" verified") {
		t.Fatalf("download: %d %q %q", code, stdout, stderr)
	}

	if err := os.WriteFile(out, data[:300_000], 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = m.run(t, "download", id, "-o", out)
	got, _ = os.ReadFile(out)
	if code != 0 || !bytes.Equal(got, data) || !strings.Contains(stderr, "resuming") || !strings.Contains(stdout, "verified") {
		t.Fatalf("resumed download: %d %q %q", code, stdout, stderr)
	}

	bad := append([]byte("garbage"), data[7:300_000]...)
	if err := os.WriteFile(out, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = m.run(t, "download", id, "-o", out)
	if code != 1 || !strings.Contains(stderr, "SHA-256") {
		t.Fatalf("damaged partial file: %d %q", code, stderr)
	}

	code, stdout, _ = m.run(t, "download", id, "-o", "-")
	if code != 0 || stdout != string(data) {
		t.Fatalf("download to stdout: %d, %d bytes", code, len(stdout))
	}

	// Default name: the file's base name, never a path out of the directory.
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	code, _, stderr = m.run(t, "--json", "download", id)
	if got, _ := os.ReadFile(filepath.Join(dir, "report.bin")); code != 0 || !bytes.Equal(got, data) {
		t.Fatalf("download by name: %d %q", code, stderr)
	}

	code, _, stderr = m.run(t, "--json", "download", "nope")
	if code != 1 || !strings.Contains(stderr, `"code":"ERR_NOT_FOUND"`) {
		t.Fatalf("unknown file: %d %q", code, stderr)
	}
}

// TestUploadFileResumes: an upload cut short is remembered, and the next
// upload of the same file continues it; an upload the node forgot starts
// again.
func TestUploadFileResumes(t *testing.T) {
	m := newMediaApp(t)
	data := noise(3 << 20)
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &client.HTTP{BaseURL: m.srv.URL, Token: "alice"}

	// A first run stopped (Ctrl-C) after the first chunk.
	a := m.app()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	h1 := &client.HTTP{BaseURL: m.srv.URL, Token: "alice", Client: stopAfter(stop, 1<<20)}
	if _, err := a.uploadFile(ctx, h1, "alice", path); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "resumes") {
		t.Fatalf("stopped upload: %v", err)
	}
	pending := (&pendingUploads{home: m.home, user: "alice"}).load()
	if len(pending) != 1 {
		t.Fatalf("pending uploads %v", pending)
	}
	var uploadURL string
	for _, u := range pending {
		uploadURL = u
	}

	a = m.app()
	f, err := a.uploadFile(context.Background(), h, "alice", path)
	stderr := a.stderr.(*bytes.Buffer).String()
	if err != nil || f.ID != client.FileIDOf(uploadURL) || f.SHA256 != sum(data) || !strings.Contains(stderr, "resuming the upload") {
		t.Fatalf("resumed upload: %+v, %v, %q", f, err, stderr)
	}
	if _, err := os.Stat(filepath.Join(m.home, "alice.uploads.json")); !os.IsNotExist(err) {
		t.Fatalf("the finished upload is still pending: %v", err)
	}

	(&pendingUploads{home: m.home, user: "alice"}).put(func() string {
		fi, _ := os.Stat(path)
		return path + "|" + itoa(fi.Size()) + "|" + itoa(fi.ModTime().UnixNano())
	}(), m.srv.URL+"/v1/uploads/forgotten")
	a = m.app()
	f2, err := a.uploadFile(context.Background(), h, "alice", path)
	if stderr := a.stderr.(*bytes.Buffer).String(); err != nil || f2.ID == f.ID || !strings.Contains(stderr, "starting again") {
		t.Fatalf("upload the node forgot: %+v, %v, %q", f2, err, stderr)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// stopAfter is an HTTP client that calls stop once PATCH bodies have
// carried after bytes, as a person pressing Ctrl-C would.
func stopAfter(stop func(), after int64) *http.Client {
	var sent atomic.Int64
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch {
			r = r.Clone(r.Context())
			r.Body = &stopBody{ReadCloser: r.Body, sent: &sent, after: after, stop: stop}
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type stopBody struct {
	io.ReadCloser
	sent  *atomic.Int64
	after int64
	stop  func()
}

func (b *stopBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.sent.Add(int64(n)) >= b.after {
		b.stop()
	}
	return n, err
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 120 << 10: "120 KiB", 3<<20 + 400<<10: "3.4 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestUploadContent: the kind follows the sniffed type; --voice needs
// audio.
func TestUploadContent(t *testing.T) {
	m := newMediaApp(t)
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...)
	id, err := m.api.Put("alice", "cat.png", png)
	if err != nil {
		t.Fatal(err)
	}
	c, f, err := m.app().uploadContent(context.Background(), mediaFlags{fileID: id, caption: "look"})
	kind, got, ok := mediaOf(c)
	if err != nil || f.ID != id || !ok || kind != "image" || got.GetFileId() != id || got.GetCaption() != "look" {
		t.Fatalf("content %s %+v %v, file %+v, %v", kind, got, ok, f, err)
	}
	if _, _, err := m.app().uploadContent(context.Background(), mediaFlags{fileID: id, voice: true}); err == nil || !strings.Contains(err.Error(), "--voice needs an audio file") {
		t.Fatalf("--voice with an image: %v", err)
	}
	code, _, stderr := m.run(t, "send", "bob", "hello", "--caption", "x")
	if code != 1 || !strings.Contains(stderr, "go with --file") {
		t.Fatalf("--caption without a file: %d %q", code, stderr)
	}
}
