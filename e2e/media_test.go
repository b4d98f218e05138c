package e2e

// Media end to end: files uploaded over HTTP (simple and tus), sent as
// messages over the WebSocket, and downloaded by the recipients through the
// Go client and plain HTTP. The shared node stores files on its disk (the
// standalone default); TestMediaLimits runs a node of its own with small
// limits, and TestMediaAcrossNodes a cluster on S3 (SeaweedFS).

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/client"
	"actorim/node"
	"actorim/protos/clientpb"
)

// mediaHTTP is user's HTTP client of n, with a fresh token.
func (n *testNode) mediaHTTP(t *testing.T, user string) *client.HTTP {
	t.Helper()
	return &client.HTTP{BaseURL: n.http, Token: n.token(t, user)}
}

// testPNG is a w×h PNG with a gradient (so that it is not all one colour).
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sendFile sends uploaded file f from d to a user (or a group), as the
// content kind its sniffed type makes it.
func (d *device) sendFile(t *testing.T, to string, ct clientpb.ConversationType, f client.File, caption string) *clientpb.SendAck {
	t.Helper()
	c := clientpb.MediaContent(client.MediaKind(f.MIMEType), &clientpb.Media{FileId: f.ID, Caption: caption})
	ack, err := d.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: to, ConversationType: ct, Content: c})
	if err != nil {
		t.Fatalf("%s sends file %s to %s: %v", d.user, f.ID, to, err)
	}
	return ack
}

// receiveMedia waits for d's next entry carrying media and returns its
// message.
func (d *device) receiveMedia(t *testing.T) *clientpb.Message {
	t.Helper()
	return d.receiveFile(t, "")
}

// receiveFile waits for d's next entry carrying file id (any file for "")
// and returns its message.
func (d *device) receiveFile(t *testing.T, id string) *clientpb.Message {
	t.Helper()
	return d.until(t, waitPush, "a media message", func(e *clientpb.Entry) bool {
		m, kind := clientpb.MediaOf(e.GetMessage().GetContent())
		return kind != "" && (id == "" || m.GetFileId() == id)
	}).GetMessage()
}

// download fetches a file (or its thumbnail) whole through the Go client.
func download(t *testing.T, h *client.HTTP, fileID string, msgID uint64, thumb bool) ([]byte, client.Download, error) {
	t.Helper()
	var b bytes.Buffer
	var d client.Download
	var err error
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if thumb {
		d, err = h.DownloadThumb(c, fileID, msgID, &b)
	} else {
		d, err = h.Download(c, fileID, msgID, &b, 0)
	}
	return b.Bytes(), d, err
}

// mustRefuse fails unless err is a coded refusal with code and status.
func mustRefuse(t *testing.T, what string, err error, code clientpb.ErrorCode, status int) {
	t.Helper()
	var e *client.Error
	switch {
	case err == nil:
		t.Fatalf("%s: accepted, want %s", what, code)
	case !errors.As(err, &e):
		t.Fatalf("%s: %v, want %s", what, err, code)
	case e.Code != code || e.Status != status:
		t.Fatalf("%s: %s (HTTP %d) %q, want %s (HTTP %d)", what, e.Code, e.Status, e.Message, code, status)
	}
}

// get is a plain GET (no client library) with a bearer token ("" for
// none) and headers; it returns the answer and its body's bytes.
func get(t *testing.T, url, token string, headers ...string) (httpAnswer, []byte) {
	t.Helper()
	a := call(t, http.MethodGet, url, token, nil, headers...)
	return a, []byte(a.body)
}

// TestMediaImage: an image uploaded by alice and sent to bob arrives with
// its type, size, hash, dimensions, thumbnail and placeholder; bob
// downloads it byte-identical, and its thumbnail as the JPEG described.
func TestMediaImage(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	pic := testPNG(t, 640, 480)

	f, err := n.mediaHTTP(t, alice).UploadSimple(ctx(t), bytes.NewReader(pic), "beach.png")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if f.MIMEType != "image/png" || f.Size != int64(len(pic)) || f.SHA256 != sha256Hex(pic) || f.Width != 640 || f.Height != 480 {
		t.Fatalf("upload answered %+v", f)
	}
	ack := a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, f, "the beach")

	msg := b.receiveMedia(t)
	img := msg.GetContent().GetImage()
	switch {
	case img == nil:
		t.Fatalf("bob received %v, want an image", msg.GetContent())
	case msg.GetId() != ack.GetMsgId():
		t.Fatalf("bob received message %d, alice sent %d", msg.GetId(), ack.GetMsgId())
	case img.GetFileId() != f.ID || img.GetName() != "beach.png" || img.GetMimeType() != "image/png" || img.GetCaption() != "the beach":
		t.Fatalf("image %v", img)
	case img.GetSize() != uint64(len(pic)) || img.GetSha256() != sha256Hex(pic):
		t.Fatalf("image size %d sha256 %s, sent %d %s", img.GetSize(), img.GetSha256(), len(pic), sha256Hex(pic))
	case img.GetWidth() != 640 || img.GetHeight() != 480:
		t.Fatalf("image dimensions %dx%d, want 640x480", img.GetWidth(), img.GetHeight())
	case img.GetThumbnail().GetWidth() != 320 || img.GetThumbnail().GetHeight() != 240 || img.GetThumbnail().GetMimeType() != "image/jpeg":
		t.Fatalf("thumbnail %v, want a 320x240 JPEG", img.GetThumbnail())
	case img.GetBlurhash() == "":
		t.Fatal("no blurhash placeholder")
	}

	hb := n.mediaHTTP(t, bob)
	got, d, err := download(t, hb, f.ID, msg.GetId(), false)
	if err != nil {
		t.Fatalf("bob downloads: %v", err)
	}
	if sha256Hex(got) != sha256Hex(pic) || d.MIMEType != "image/png" || d.SHA256 != sha256Hex(pic) || d.Name != "beach.png" {
		t.Fatalf("bob downloaded %d bytes (sha256 %s) as %+v; sent %d bytes (sha256 %s)", len(got), sha256Hex(got), d, len(pic), sha256Hex(pic))
	}
	thumb, td, err := download(t, hb, f.ID, msg.GetId(), true)
	if err != nil {
		t.Fatalf("bob downloads the thumbnail: %v", err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
	if err != nil || td.MIMEType != "image/jpeg" || uint64(len(thumb)) != img.GetThumbnail().GetSize() ||
		cfg.Width != 320 || cfg.Height != 240 {
		t.Fatalf("thumbnail: %d bytes (described %d), %+v, decodes to %+v (%v)", len(thumb), img.GetThumbnail().GetSize(), td, cfg, err)
	}

	// Plain HTTP, as a browser fetches it: type, length, validator and
	// caching; a conditional request is answered 304 without the body.
	url := fmt.Sprintf("%s/v1/media/%s?msg=%d", n.http, f.ID, msg.GetId())
	resp, body := get(t, url, hb.Token)
	etag := resp.header.Get("ETag")
	if resp.status != http.StatusOK || !bytes.Equal(body, pic) || resp.header.Get("Content-Type") != "image/png" ||
		resp.header.Get("Content-Length") != strconv.Itoa(len(pic)) || etag != `"`+sha256Hex(pic)+`"` ||
		!strings.Contains(resp.header.Get("Cache-Control"), "private") || resp.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET: %d, %d bytes, headers %v", resp.status, len(body), resp.header)
	}
	if resp, body := get(t, url, hb.Token, "If-None-Match", etag); resp.status != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("GET If-None-Match: %d with %d bytes, want 304 and none", resp.status, len(body))
	}
}

// TestMediaRange: Range requests serve a slice (video seeking), a suffix,
// and resume an interrupted download through the Go client; a range past
// the end is 416.
func TestMediaRange(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	data := randomBytes(t, 3<<20+17)
	f, err := n.mediaHTTP(t, alice).UploadSimple(ctx(t), bytes.NewReader(data), "clip.bin")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, f, "")
	msg := b.receiveMedia(t)
	if msg.GetContent().GetFile() == nil {
		t.Fatalf("random bytes arrived as %v, want a file", msg.GetContent())
	}
	hb := n.mediaHTTP(t, bob)
	url := fmt.Sprintf("%s/v1/media/%s?msg=%d", n.http, f.ID, msg.GetId())

	resp, body := get(t, url, hb.Token, "Range", "bytes=1000000-1000999")
	if resp.status != http.StatusPartialContent || !bytes.Equal(body, data[1000000:1001000]) ||
		resp.header.Get("Content-Range") != fmt.Sprintf("bytes 1000000-1000999/%d", len(data)) || resp.header.Get("Content-Length") != "1000" {
		t.Fatalf("Range bytes=1000000-1000999: %d, %d bytes, headers %v", resp.status, len(body), resp.header)
	}
	if resp, body := get(t, url, hb.Token, "Range", "bytes=-100"); resp.status != http.StatusPartialContent || !bytes.Equal(body, data[len(data)-100:]) {
		t.Fatalf("Range bytes=-100: %d, %d bytes", resp.status, len(body))
	}
	if resp, _ := get(t, url, hb.Token, "Range", fmt.Sprintf("bytes=%d-", len(data)+10)); resp.status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("Range past the end: %d, want 416", resp.status)
	}

	// A download cut short resumes from the bytes held.
	held := len(data) / 3
	var rest bytes.Buffer
	d, err := hb.Download(ctx(t), f.ID, msg.GetId(), &rest, int64(held))
	if err != nil || d.Offset != int64(held) || d.Written != int64(len(data)-held) || d.Size != int64(len(data)) {
		t.Fatalf("resumed download: %+v, %v", d, err)
	}
	if whole := append(append([]byte(nil), data[:held]...), rest.Bytes()...); sha256Hex(whole) != f.SHA256 {
		t.Fatal("resumed download differs from the file")
	}
}

// offsetReader is an io.ReaderAt that counts the bytes read from it and
// remembers the lowest offset asked for.
type offsetReader struct {
	r        io.ReaderAt
	mu       sync.Mutex
	lowest   int64
	read     int64
	anything bool
}

func (o *offsetReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	o.mu.Lock()
	if !o.anything || off < o.lowest {
		o.lowest = off
	}
	o.anything = true
	o.read += int64(n)
	o.mu.Unlock()
	return n, err
}

// tusOffset asks the node how many bytes of an upload it holds (HEAD).
func tusOffset(t *testing.T, uploadURL, token string) int64 {
	t.Helper()
	a := call(t, http.MethodHead, uploadURL, token, nil, "Tus-Resumable", client.TusVersion)
	off, err := strconv.ParseInt(a.header.Get("Upload-Offset"), 10, 64)
	if a.status != http.StatusOK || err != nil {
		t.Fatalf("HEAD %s: %d, Upload-Offset %q", uploadURL, a.status, a.header.Get("Upload-Offset"))
	}
	return off
}

// TestMediaResumable: a 50 MiB upload cut off half-way (its connection
// closed in the middle of a PATCH) is resumed from what the node holds,
// without sending the first half again, and the recipient downloads the
// whole file byte-identical.
func TestMediaResumable(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	const size = 50 << 20
	data := randomBytes(t, size)
	ha := n.mediaHTTP(t, alice)

	cut, stop := context.WithCancel(context.Background())
	defer stop()
	var uploadURL string
	_, err := ha.Upload(cut, bytes.NewReader(data), size, "backup.bin", client.UploadOptions{
		ChunkSize: 16 << 20,
		Created:   func(u string) { uploadURL = u },
		Progress: func(done, _ int64) {
			if done >= size/2 {
				stop() // the network goes away half-way, inside the second PATCH
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload returned %v, want context.Canceled", err)
	}
	if uploadURL == "" {
		t.Fatal("the upload was never created")
	}
	held := tusOffset(t, uploadURL, ha.Token)
	if held < size/4 || held >= size {
		t.Fatalf("the node holds %d bytes of %d after the cut, want about half", held, size)
	}

	src := &offsetReader{r: bytes.NewReader(data)}
	f, err := ha.ResumeUpload(ctx(t), uploadURL, src, size, client.UploadOptions{ChunkSize: 16 << 20})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if src.lowest < held || src.read != size-held {
		t.Fatalf("the resume read %d bytes from offset %d on; the node held %d of %d (want %d bytes from %d)",
			src.read, src.lowest, held, size, size-held, held)
	}
	if f.Size != size || f.SHA256 != sha256Hex(data) {
		t.Fatalf("resumed upload: %+v", f)
	}
	t.Logf("cut at %d of %d bytes; the resume sent the other %d", held, size, src.read)

	a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, f, "")
	msg := b.receiveMedia(t)
	got, _, err := download(t, n.mediaHTTP(t, bob), f.ID, msg.GetId(), false)
	if err != nil || sha256Hex(got) != sha256Hex(data) {
		t.Fatalf("bob downloads %d bytes (sha256 %s), want %d (%s): %v", len(got), sha256Hex(got), size, sha256Hex(data), err)
	}
}

// TestMediaForbidden: only the uploader and the members of a conversation
// the file was sent in read it, each naming a message of their own timeline
// that carries it; nobody else can send someone else's file.
func TestMediaForbidden(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	c := n.connect(t, carol, "c", nil)
	ha, hb, hc := n.mediaHTTP(t, alice), n.mediaHTTP(t, bob), n.mediaHTTP(t, carol)
	pic := testPNG(t, 64, 64)
	f, err := ha.UploadSimple(ctx(t), bytes.NewReader(pic), "secret.png")
	if err != nil {
		t.Fatal(err)
	}

	// Before it is sent, only alice reads it.
	if _, _, err := download(t, ha, f.ID, 0, false); err != nil {
		t.Fatalf("the uploader downloads: %v", err)
	}
	_, _, err = download(t, hb, f.ID, 0, false)
	mustRefuse(t, "bob, before it is sent", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	_, err = hb.Info(ctx(t), f.ID, 0)
	mustRefuse(t, "bob asks for its description", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	if resp, _ := get(t, n.http+"/v1/media/"+f.ID, ""); resp.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.status)
	}

	ack := a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, f, "")
	msg := b.receiveMedia(t)
	if _, _, err := download(t, hb, f.ID, msg.GetId(), false); err != nil {
		t.Fatalf("bob, naming the message: %v", err)
	}

	// carol names alice and bob's message: it is not in her timeline.
	_, _, err = download(t, hc, f.ID, ack.GetMsgId(), false)
	mustRefuse(t, "carol names their message", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	_, _, err = download(t, hc, f.ID, ack.GetMsgId(), true)
	mustRefuse(t, "carol asks for the thumbnail", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	_, err = hc.Link(ctx(t), f.ID, ack.GetMsgId())
	mustRefuse(t, "carol asks for a signed link", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)

	// carol cannot send alice's file either (which would let her read it).
	_, err = c.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: bob,
		Content: clientpb.MediaContent(clientpb.MediaImage, &clientpb.Media{FileId: f.ID})})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("carol sends alice's file: %v, want ERR_FORBIDDEN", err)
	}

	// A message of carol's own carrying another file does not open this one.
	g, err := hc.UploadSimple(ctx(t), bytes.NewReader(testPNG(t, 32, 32)), "mine.png")
	if err != nil {
		t.Fatal(err)
	}
	own := c.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, g, "")
	_, _, err = download(t, hc, f.ID, own.GetMsgId(), false)
	mustRefuse(t, "carol names her message carrying another file", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)

	// In a group, members read it and carol, outside, does not.
	gid := fmt.Sprintf("media-%d", time.Now().UnixNano())
	a.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob)
	gf, err := ha.UploadSimple(ctx(t), bytes.NewReader(testPNG(t, 48, 48)), "team.png")
	if err != nil {
		t.Fatal(err)
	}
	gack := a.sendFile(t, gid, clientpb.ConversationType_CONVERSATION_TYPE_GROUP, gf, "")
	gmsg := b.receiveFile(t, gf.ID)
	if _, _, err := download(t, hb, gf.ID, gmsg.GetId(), false); err != nil {
		t.Fatalf("a group member downloads: %v", err)
	}
	_, _, err = download(t, hc, gf.ID, gack.GetMsgId(), false)
	mustRefuse(t, "carol, outside the group", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
}

// TestMediaRecalled: once alice recalls the message, bob can no longer
// fetch its file, with his token or with a signed link he got before.
func TestMediaRecalled(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", nil)
	hb := n.mediaHTTP(t, bob)
	pic := testPNG(t, 200, 100)
	f, err := n.mediaHTTP(t, alice).UploadSimple(ctx(t), bytes.NewReader(pic), "oops.png")
	if err != nil {
		t.Fatal(err)
	}
	ack := a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, f, "")
	msg := b.receiveMedia(t)
	link, err := hb.Link(ctx(t), f.ID, msg.GetId())
	if err != nil || link.ThumbURL == "" {
		t.Fatalf("link: %+v, %v", link, err)
	}
	if resp, body := get(t, link.URL, ""); resp.status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("signed link before the recall: %d, %d bytes", resp.status, len(body))
	}

	if err := a.recall(t, msg.GetConversationId(), ack.GetMsgId()); err != nil {
		t.Fatalf("recall: %v", err)
	}
	_, _, err = download(t, hb, f.ID, msg.GetId(), false)
	mustRefuse(t, "bob after the recall", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	_, _, err = download(t, hb, f.ID, msg.GetId(), true)
	mustRefuse(t, "bob's thumbnail after the recall", err, clientpb.ErrorCode_ERR_FORBIDDEN, http.StatusForbidden)
	for _, u := range []string{link.URL, link.ThumbURL} {
		if resp, _ := get(t, u, ""); resp.status != http.StatusForbidden {
			t.Fatalf("signed link after the recall: %d, want 403", resp.status)
		}
	}
}

// bombPNG is a w×h 8-bit grey PNG of zeros: w*h bytes once decoded (4 times
// that as RGBA), a few hundred KiB on the wire.
func bombPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
		copy(hdr[4:], typ)
		out.Write(hdr[:])
		out.Write(data)
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:])
		crc.Write(data)
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc.Sum32())
		out.Write(sum[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8 bits, greyscale
	chunk("IHDR", ihdr)
	var idat bytes.Buffer
	z, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, w+1) // filter byte 0, then the pixels
	for y := 0; y < h; y++ {
		if _, err := z.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMediaLimits runs a node of its own with small limits: a file over the
// size limit and a user over the quota are refused with their codes (simple
// and tus uploads alike); identical content is stored once; a decompression
// bomb is refused without being decoded, with bounded memory; a refused
// type is refused.
func TestMediaLimits(t *testing.T) {
	const maxBytes, quota = 1 << 20, 5 << 19 // 1 MiB files, 2.5 MiB a user
	n := startNode(t, func(c *node.Config) {
		c.Media.Service.MaxBytes = maxBytes
		c.Media.Service.QuotaBytes = quota
	})
	alice := n.newUser(t, "alice")
	h := n.mediaHTTP(t, alice)

	_, err := h.UploadSimple(ctx(t), bytes.NewReader(randomBytes(t, maxBytes+1)), "big.bin")
	mustRefuse(t, "simple upload over the size limit", err, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, http.StatusRequestEntityTooLarge)
	_, err = h.Upload(ctx(t), bytes.NewReader(randomBytes(t, maxBytes+1)), maxBytes+1, "big.bin", client.UploadOptions{})
	mustRefuse(t, "tus upload over the size limit", err, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, http.StatusRequestEntityTooLarge)
	// A body longer than it said, or of unknown length: counted as it comes.
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, n.http+"/v1/media?name=x.bin", io.MultiReader(bytes.NewReader(randomBytes(t, maxBytes+4096))))
	req.Header.Set("Authorization", "Bearer "+h.Token)
	req.ContentLength = -1
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked upload over the size limit: %d, want 413", resp.StatusCode)
		}
	} // (an error: the node closed the connection on the excess; also a refusal)

	// Identical content is stored once: the same bytes again add a file
	// record (charged to the quota: each file has its own life) but no
	// object to the store.
	one := randomBytes(t, 600<<10)
	f1, err := h.UploadSimple(ctx(t), bytes.NewReader(one), "one.bin")
	if err != nil {
		t.Fatal(err)
	}
	objects := countFiles(t, filepath.Join(n.dir, "media", "objects"))
	f1again, err := h.UploadSimple(ctx(t), bytes.NewReader(one), "one-again.bin")
	if err != nil {
		t.Fatalf("the same bytes again: %v", err)
	}
	if f1again.ID == f1.ID || f1again.SHA256 != f1.SHA256 || f1again.QuotaUsed != f1.QuotaUsed+int64(len(one)) {
		t.Fatalf("the same content again: %+v after %+v", f1again, f1)
	}
	if now := countFiles(t, filepath.Join(n.dir, "media", "objects")); objects == 0 || now != objects {
		t.Fatalf("the object store holds %d files after the same content again, %d before", now, objects)
	}
	if _, err := h.UploadSimple(ctx(t), bytes.NewReader(randomBytes(t, 900<<10)), "two.bin"); err != nil {
		t.Fatalf("a file within the quota: %v", err) // 2,100 KiB of 2,560
	}
	_, err = h.UploadSimple(ctx(t), bytes.NewReader(randomBytes(t, 900<<10)), "three.bin")
	mustRefuse(t, "simple upload over the quota", err, clientpb.ErrorCode_ERR_QUOTA_EXCEEDED, http.StatusRequestEntityTooLarge)
	_, err = h.Upload(ctx(t), bytes.NewReader(randomBytes(t, 900<<10)), 900<<10, "three.bin", client.UploadOptions{})
	mustRefuse(t, "tus upload over the quota", err, clientpb.ErrorCode_ERR_QUOTA_EXCEEDED, http.StatusRequestEntityTooLarge)

	// Executables are refused by type, whatever their name says.
	bob := n.newUser(t, "bob")
	hb := n.mediaHTTP(t, bob)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), randomBytes(t, 2048)...)
	_, err = hb.UploadSimple(ctx(t), bytes.NewReader(elf), "holiday.jpg")
	mustRefuse(t, "an executable named .jpg", err, clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED, http.StatusUnsupportedMediaType)

	// A 12,000 × 12,000 PNG (144 MB of grey, 576 MB as RGBA) in 140 KiB:
	// refused from its header, never decoded.
	bomb := bombPNG(t, 12000, 12000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = hb.UploadSimple(ctx(t), bytes.NewReader(bomb), "bomb.png")
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("bomb: %d KiB on the wire; the node and the test allocated %d KiB meanwhile", len(bomb)>>10, allocated>>10)
	if allocated > 32<<20 {
		t.Errorf("a %d KiB bomb cost %d MiB of allocations: it was decoded", len(bomb)>>10, allocated>>20)
	}
	mustRefuse(t, "a decompression bomb", err, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, http.StatusRequestEntityTooLarge)
}

// TestMediaAcrossNodes: in a cluster storing media in S3 (SeaweedFS on
// loopback), files uploaded through node 1 (in one request, and resumably
// in several parts) download through node 2 byte-identical, with their
// thumbnail and Range requests, and a signed link made by node 1 opens on
// node 2.
func TestMediaAcrossNodes(t *testing.T) {
	store := sharedS3(t)
	c := startCluster(t, 2, store.mediaFlags(fmt.Sprintf("c%d/", time.Now().UnixNano()))...)
	n1, n2 := c.nodes[0].node(), c.nodes[1].node()
	alice, bob := n1.newUser(t, "alice"), n1.newUser(t, "bob")
	a := n1.connect(t, alice, "a", nil)
	b := n2.connect(t, bob, "b", nil)
	up := n1.mediaHTTP(t, alice)

	pic := testPNG(t, 800, 600)
	img, err := up.UploadSimple(ctx(t), bytes.NewReader(pic), "view.png")
	if err != nil {
		t.Fatalf("upload the image through node 1: %v", err)
	}
	const size = 20 << 20 // past one 16 MiB part of an S3 multipart upload
	data := randomBytes(t, size)
	uctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	big, err := up.Upload(uctx, bytes.NewReader(data), size, "archive.bin", client.UploadOptions{ChunkSize: 6 << 20})
	if err != nil {
		t.Fatalf("tus upload through node 1: %v", err)
	}

	a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, img, "")
	imsg := b.receiveFile(t, img.ID)
	a.sendFile(t, bob, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, big, "")
	bmsg := b.receiveFile(t, big.ID)
	if m := imsg.GetContent().GetImage(); m.GetWidth() != 800 || m.GetHeight() != 600 || m.GetThumbnail().GetWidth() != 320 {
		t.Fatalf("the image arrived on node 2 as %v", imsg.GetContent())
	}

	down := n2.mediaHTTP(t, bob)
	if got, _, err := download(t, down, img.ID, imsg.GetId(), false); err != nil || sha256Hex(got) != sha256Hex(pic) {
		t.Fatalf("bob downloads the image through node 2: %d bytes, %v", len(got), err)
	}
	if thumb, _, err := download(t, down, img.ID, imsg.GetId(), true); err != nil || uint64(len(thumb)) != imsg.GetContent().GetImage().GetThumbnail().GetSize() {
		t.Fatalf("bob downloads the thumbnail through node 2: %d bytes, %v", len(thumb), err)
	}
	got, _, err := download(t, down, big.ID, bmsg.GetId(), false)
	if err != nil || sha256Hex(got) != sha256Hex(data) {
		t.Fatalf("bob downloads %d MiB through node 2: %d bytes (sha256 %s, want %s), %v", size>>20, len(got), sha256Hex(got), sha256Hex(data), err)
	}
	url := fmt.Sprintf("%s/v1/media/%s?msg=%d", n2.http, big.ID, bmsg.GetId())
	if resp, body := get(t, url, down.Token, "Range", "bytes=16777200-16777299"); resp.status != http.StatusPartialContent || !bytes.Equal(body, data[16777200:16777300]) {
		t.Fatalf("Range across a part boundary through node 2: %d, %d bytes", resp.status, len(body))
	}

	link, err := n1.mediaHTTP(t, bob).Link(ctx(t), img.ID, imsg.GetId())
	if err != nil {
		t.Fatalf("a link from node 1: %v", err)
	}
	onNode2 := strings.Replace(link.URL, n1.http, n2.http, 1)
	if resp, body := get(t, onNode2, ""); onNode2 == link.URL || resp.status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("node 1's signed link on node 2 (%s): %d, %d bytes", onNode2, resp.status, len(body))
	}
}

// TestMediaOff: a node whose media store is off answers the media API and
// media sends with ERR_UNSUPPORTED (not with a lookup of a file another
// node may have stored).
func TestMediaOff(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Media.Store = node.MediaStoreOff })
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	_, err := n.mediaHTTP(t, alice).UploadSimple(ctx(t), bytes.NewReader(testPNG(t, 8, 8)), "x.png")
	mustRefuse(t, "upload to a node without media", err, clientpb.ErrorCode_ERR_UNSUPPORTED, http.StatusBadRequest)
	a := n.connect(t, alice, "a", nil)
	_, err = a.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: bob,
		Content: clientpb.MediaContent(clientpb.MediaImage, &clientpb.Media{FileId: "abcdefghijklmnopqrstuvwxyz"})})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_UNSUPPORTED {
		t.Fatalf("a media send to a node without media: %v, want ERR_UNSUPPORTED", err)
	}
}
