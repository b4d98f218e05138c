package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"actorim/client"
	"actorim/client/mediatest"
	"actorim/protos/clientpb"
)

// specContent builds media-spec's Content and Media messages at run time,
// as protoc would generate them, to check the hand-written wire format
// against them.
func specContent(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: &opt, Type: &typ}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	str, u32, u64, b, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_UINT32,
		descriptorpb.FieldDescriptorProto_TYPE_UINT64, descriptorpb.FieldDescriptorProto_TYPE_BOOL, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	oneof := func(f *descriptorpb.FieldDescriptorProto) *descriptorpb.FieldDescriptorProto {
		f.OneofIndex = proto.Int32(0)
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("spec.proto"), Package: proto.String("spec"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Content"), OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("kind")}},
				Field: []*descriptorpb.FieldDescriptorProto{
					oneof(field("text", 1, str, "")), oneof(field("image", 5, msg, ".spec.Media")), oneof(field("audio", 6, msg, ".spec.Media")),
					oneof(field("video", 7, msg, ".spec.Media")), oneof(field("file", 8, msg, ".spec.Media")),
				}},
			{Name: proto.String("Media"), Field: []*descriptorpb.FieldDescriptorProto{
				field("file_id", 1, str, ""), field("name", 2, str, ""), field("mime_type", 3, str, ""), field("size", 4, u64, ""),
				field("sha256", 5, str, ""), field("width", 6, u32, ""), field("height", 7, u32, ""), field("duration_ms", 8, u32, ""),
				field("thumbnail", 9, msg, ".spec.Thumbnail"), field("blurhash", 10, str, ""), field("caption", 11, str, ""),
				field("voice", 12, b, ""),
			}},
			{Name: proto.String("Thumbnail"), Field: []*descriptorpb.FieldDescriptorProto{
				field("mime_type", 1, str, ""), field("width", 2, u32, ""), field("height", 3, u32, ""), field("size", 4, u64, ""),
			}},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().ByName("Content")
}

// TestMediaWireFormat: what mediaContent writes is the spec's Content to a
// generated decoder, and what a node that knows the kinds sends reads back
// in full.
func TestMediaWireFormat(t *testing.T) {
	contentDesc := specContent(t)
	mediaDesc := contentDesc.Fields().ByName("audio").Message()

	c, err := mediaContent("audio", media{FileID: "f1", Caption: "listen", Voice: true, DurationMs: 12_000})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	spec := dynamicpb.NewMessage(contentDesc)
	if err := proto.Unmarshal(raw, spec); err != nil {
		t.Fatal(err)
	}
	m := spec.Get(contentDesc.Fields().ByName("audio")).Message()
	get := func(name string) any { return m.Get(mediaDesc.Fields().ByName(protoreflect.Name(name))).Interface() }
	if get("file_id") != "f1" || get("caption") != "listen" || get("voice") != true || get("duration_ms") != uint32(12_000) || get("name") != "" {
		t.Fatalf("the spec's decoder read %v", m)
	}

	// The node's answer, server fields filled.
	img := dynamicpb.NewMessage(mediaDesc)
	set := func(msg *dynamicpb.Message, name string, v any) {
		msg.Set(msg.Descriptor().Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOf(v))
	}
	set(img, "file_id", "f2")
	set(img, "name", "cat.jpg")
	set(img, "mime_type", "image/jpeg")
	set(img, "size", uint64(120<<10))
	set(img, "sha256", "ab12")
	set(img, "width", uint32(1024))
	set(img, "height", uint32(768))
	set(img, "blurhash", "LEHV6n")
	th := dynamicpb.NewMessage(mediaDesc.Fields().ByName("thumbnail").Message())
	set(th, "mime_type", "image/jpeg")
	set(th, "width", uint32(320))
	set(th, "height", uint32(240))
	set(th, "size", uint64(9000))
	img.Set(mediaDesc.Fields().ByName("thumbnail"), protoreflect.ValueOfMessage(th))
	spec = dynamicpb.NewMessage(contentDesc)
	spec.Set(contentDesc.Fields().ByName("image"), protoreflect.ValueOfMessage(img))
	if raw, err = proto.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	got := &clientpb.Content{}
	if err := proto.Unmarshal(raw, got); err != nil {
		t.Fatal(err)
	}
	kind, gm, ok := mediaOf(got)
	want := media{FileID: "f2", Name: "cat.jpg", MIMEType: "image/jpeg", Size: 120 << 10, SHA256: "ab12", Width: 1024, Height: 768,
		Blurhash: "LEHV6n", Thumb: &thumb{MIMEType: "image/jpeg", Width: 320, Height: 240, Size: 9000}}
	if !ok || kind != "image" || gm.Thumb == nil || *gm.Thumb != *want.Thumb {
		t.Fatalf("mediaOf: %s %+v %v", kind, gm, ok)
	}
	gm.Thumb, want.Thumb = nil, nil
	if gm != want {
		t.Fatalf("mediaOf: %+v, want %+v", gm, want)
	}

	msg := &clientpb.Message{Id: 77, From: "alice", To: "bob", SentAtMs: uint64(time.Now().UnixMilli()), Content: got}
	line := entryLine(&clientpb.Entry{Seq: 5, Item: &clientpb.Entry_Message{Message: msg}})
	if !strings.HasSuffix(line, " alice -> bob: [image cat.jpg 1024x768 120 KiB file=f2 msg=77]") || !strings.HasPrefix(line, "[seq 5] ") {
		t.Fatalf("line %q", line)
	}
	if _, _, ok := mediaOf(client.Text("hi")); ok {
		t.Fatal("text read as media")
	}
	voice, _ := mediaContent("audio", media{FileID: "f3", Name: "rec.ogg", Voice: true, DurationMs: 72_500, Caption: "hey"})
	if s, _ := mediaText(&clientpb.Message{Id: 9, Content: voice}); s != "[voice rec.ogg 1:13 file=f3 msg=9] hey" {
		t.Fatalf("voice line %q", s)
	}
}

// mediaApp runs imctl commands as alice against the stand-in media API.
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

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDownload: a download writes the file and checks its SHA-256; a
// partial file is resumed with a Range request; a damaged one is caught.
func TestDownload(t *testing.T) {
	m := newMediaApp(t)
	data := make([]byte, 1<<20+5)
	_, _ = rand.Read(data)
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
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
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
// audio; the JSON codec cannot carry media in this build.
func TestUploadContent(t *testing.T) {
	m := newMediaApp(t)
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...)
	id, err := m.api.Put("alice", "cat.png", png)
	if err != nil {
		t.Fatal(err)
	}
	c, f, err := m.app().uploadContent(context.Background(), mediaFlags{fileID: id, caption: "look"})
	kind, got, ok := mediaOf(c)
	if err != nil || f.ID != id || !ok || kind != "image" || got.FileID != id || got.Caption != "look" {
		t.Fatalf("content %s %+v %v, file %+v, %v", kind, got, ok, f, err)
	}
	if _, _, err := m.app().uploadContent(context.Background(), mediaFlags{fileID: id, voice: true}); err == nil || !strings.Contains(err.Error(), "--voice needs an audio file") {
		t.Fatalf("--voice with an image: %v", err)
	}
	a := m.app()
	a.g.codec = "json"
	if _, _, err := a.uploadContent(context.Background(), mediaFlags{fileID: id}); err == nil {
		t.Fatal("media over the JSON codec accepted")
	}
	code, _, stderr := m.run(t, "send", "bob", "hello", "--caption", "x")
	if code != 1 || !strings.Contains(stderr, "go with --file") {
		t.Fatalf("--caption without a file: %d %q", code, stderr)
	}
}
