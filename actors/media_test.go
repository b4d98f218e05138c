package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// hookedMedia is the node's real store (embedded) as MediaFiles, with a
// hook that runs at a MarkMediaSent of a chosen file, before it is marked:
// the test of mark-before-append looks at the timeline from there.
type hookedMedia struct {
	persistence.Media
	mu     sync.Mutex
	onMark map[string]func()
}

func newHookedMedia(st persistence.Media) *hookedMedia {
	return &hookedMedia{Media: st, onMark: map[string]func(){}}
}

func (m *hookedMedia) MarkMediaSent(ctx context.Context, id string, atMs uint64) error {
	m.mu.Lock()
	hook := m.onMark[id]
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	return m.Media.MarkMediaSent(ctx, id, atMs)
}

func (m *hookedMedia) put(f persistence.MediaFile) {
	if err := m.PutMediaFile(context.Background(), f); err != nil {
		panic(err)
	}
}

func (m *hookedMedia) get(id string) persistence.MediaFile {
	f, err := m.GetMediaFile(context.Background(), id)
	if err != nil {
		panic(err)
	}
	return f
}

func (m *hookedMedia) hook(id string, fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onMark[id] = fn
}

var fileRun atomic.Int64

// newFileID returns a valid file id unique to this process.
func newFileID() string { return fmt.Sprintf("f%025d", fileRun.Add(1)) }

// upload records a file of owner with MIME type mime, as the media API
// would after an upload; an image gets dimensions and a thumbnail.
func upload(rt *testNode, owner, mime, name string) persistence.MediaFile {
	id := newFileID()
	f := persistence.MediaFile{ID: id, Owner: owner, SHA256: strings.Repeat("ab", 32), Blob: "blobs/" + id,
		Size: 123456, MIME: mime, Name: name, CreatedAtMs: uint64(time.Now().UnixMilli())}
	if strings.HasPrefix(mime, "image/") {
		f.Width, f.Height, f.Blurhash = 1024, 768, "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
		f.ThumbSHA256, f.ThumbBlob, f.ThumbSize, f.ThumbMIME, f.ThumbWidth, f.ThumbHeight =
			strings.Repeat("cd", 32), "blobs/t"+id, 9000, "image/jpeg", 320, 240
	}
	rt.media.put(f)
	return f
}

// fakeOut is the socket of a test connection: it queues what is written.
type fakeOut struct{ frames chan *clientpb.Frame }

func (o *fakeOut) WriteFrame(f *clientpb.Frame) error {
	select {
	case o.frames <- f:
	default:
		return errors.New("fakeOut: full")
	}
	return nil
}

func (o *fakeOut) Close(int, string) {}

// testConn is a logged-in connection actor driven by a test.
type testConn struct {
	in     Inbound
	out    *fakeOut
	nextID uint32
}

// connect logs user in on a connection of its own, closed when the test ends.
func connect(t *testing.T, rt *testNode, user string) *testConn {
	t.Helper()
	c := &testConn{out: &fakeOut{frames: make(chan *clientpb.Frame, 1024)}, nextID: 1}
	c.in = rt.Connect(Session{UserID: user, DeviceID: "d1", SessionID: session(userRun.Add(1)),
		Platform: clientpb.Platform_PLATFORM_WEB, LoginID: 1}, c.out)
	t.Cleanup(c.in.SocketClosed)
	if f := c.await(t, 1); f.GetLoginOk() == nil {
		t.Fatalf("login: %v", f)
	}
	return c
}

// await returns the next frame answering request id, skipping pushes.
func (c *testConn) await(t *testing.T, id uint32) *clientpb.Frame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-c.out.frames:
			if f.GetId() == id {
				return f
			}
		case <-deadline:
			t.Fatalf("no answer to request %d", id)
		}
	}
}

// send sends s and returns its answer: a SendAck or an Error.
func (c *testConn) send(t *testing.T, s *clientpb.Send) (*clientpb.SendAck, *clientpb.Error) {
	t.Helper()
	c.nextID++
	id := c.nextID
	c.in.Frame(&clientpb.Frame{Id: id, Body: &clientpb.Frame_Send{Send: s}}, func() {})
	f := c.await(t, id)
	return f.GetSendAck(), f.GetError()
}

// lastEntry returns the newest entry of user's timeline.
func lastEntry(t *testing.T, rt *testNode, user string) *clientpb.Entry {
	t.Helper()
	ctx := context.Background()
	last, err := rt.store.LastSeq(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	es, err := rt.store.ReadTimeline(ctx, user, last-1, 1)
	if err != nil || len(es) != 1 {
		t.Fatalf("read %s at %d: %v %v", user, last, es, err)
	}
	return es[0]
}

func lastSeq(t *testing.T, rt *testNode, user string) uint64 {
	t.Helper()
	n, err := rt.store.LastSeq(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func imageContent(m *clientpb.Media) *clientpb.Content {
	return &clientpb.Content{Kind: &clientpb.Content_Image{Image: m}}
}

// TestMediaSendFillsFromRecord: a media send from a connection carries the
// upload record's fields whatever the client claimed (name only when the
// client gave none); the file is marked sent before the message is
// appended; a retry is a duplicate, a changed retry is refused.
func TestMediaSendFillsFromRecord(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	u := newUsers(t, rt, "ann", "bo")
	ann, bo := u[0], u[1]
	f := upload(rt, ann, "image/jpeg", "cat.jpg")
	var seqAtMark atomic.Int64
	seqAtMark.Store(-1)
	rt.media.hook(f.ID, func() {
		if seqAtMark.Load() < 0 {
			n, _ := rt.store.LastSeq(context.Background(), ann)
			seqAtMark.Store(int64(n))
		}
	})
	c := connect(t, rt, ann)

	forged := &clientpb.Send{ClientMsgId: "img-1", To: bo, Content: imageContent(&clientpb.Media{
		FileId: f.ID, MimeType: "text/html", Size: 1, Sha256: "00", Width: 1, Height: 1, Blurhash: "x",
		DurationMs: 0, Caption: "my cat", Thumbnail: &clientpb.Thumbnail{Size: 1}})}
	ack, e := c.send(t, forged)
	if e != nil {
		t.Fatalf("send: %v", e)
	}
	want := imageContent(&clientpb.Media{FileId: f.ID, Name: "cat.jpg", MimeType: "image/jpeg", Size: 123456,
		Sha256: f.SHA256, Width: 1024, Height: 768, Blurhash: f.Blurhash, Caption: "my cat",
		Thumbnail: &clientpb.Thumbnail{MimeType: "image/jpeg", Width: 320, Height: 240, Size: 9000}})
	got := lastEntry(t, rt, bo).GetMessage()
	if got.GetId() != ack.GetMsgId() || !proto.Equal(got.GetContent(), want) {
		t.Fatalf("bo received %v\nwant content %v", got, want)
	}
	if rt.media.get(f.ID).SentAtMs == 0 {
		t.Fatal("file not marked sent")
	}
	if n := seqAtMark.Load(); n < 0 || uint64(n) >= ack.GetSeq() {
		t.Fatalf("marked sent when ann's timeline ended at %d; the message is at %d: want the mark before the append", n, ack.GetSeq())
	}

	// A retry, forged fields and all, is the same message.
	again, e := c.send(t, forged)
	if e != nil || !again.GetDuplicate() || again.GetMsgId() != ack.GetMsgId() {
		t.Fatalf("retry: %v %v, want a duplicate of %d", again, e, ack.GetMsgId())
	}
	changed := proto.Clone(forged).(*clientpb.Send)
	changed.GetContent().GetImage().Caption = "my dog"
	if _, e := c.send(t, changed); e.GetCode() != clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED {
		t.Fatalf("retry with another caption: %v, want ERR_CLIENT_MSG_ID_REUSED", e)
	}

	// The client may rename; a file may be sent again, and as a file.
	renamed := &clientpb.Send{ClientMsgId: "img-2", To: bo, Content: &clientpb.Content{Kind: &clientpb.Content_File{
		File: &clientpb.Media{FileId: f.ID, Name: "kitty.jpg"}}}}
	if _, e := c.send(t, renamed); e != nil {
		t.Fatalf("renamed: %v", e)
	}
	m := lastEntry(t, rt, bo).GetMessage().GetContent().GetFile()
	if m.GetName() != "kitty.jpg" || m.GetMimeType() != "image/jpeg" || m.GetSize() != 123456 || m.GetWidth() != 1024 {
		t.Fatalf("renamed file: %v", m)
	}
}

// TestMediaSendRefused: a file that does not exist, another user's, or one
// whose type does not fit the kind is refused; nothing is stored and the
// file is not marked sent.
func TestMediaSendRefused(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	u := newUsers(t, rt, "ann", "bo")
	ann, bo := u[0], u[1]
	mine := upload(rt, ann, "image/png", "a.png")
	theirs := upload(rt, bo, "image/png", "b.png")
	c := connect(t, rt, ann)
	for _, tc := range []struct {
		name    string
		content *clientpb.Content
		code    clientpb.ErrorCode
	}{
		{"another user's file", imageContent(&clientpb.Media{FileId: theirs.ID}), clientpb.ErrorCode_ERR_FORBIDDEN},
		{"unknown file", imageContent(&clientpb.Media{FileId: newFileID()}), clientpb.ErrorCode_ERR_NOT_FOUND},
		{"image as audio", &clientpb.Content{Kind: &clientpb.Content_Audio{Audio: &clientpb.Media{FileId: mine.ID}}}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"image as video", &clientpb.Content{Kind: &clientpb.Content_Video{Video: &clientpb.Media{FileId: mine.ID}}}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"malformed file id", imageContent(&clientpb.Media{FileId: "../" + mine.ID[3:]}), clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := lastSeq(t, rt, ann)
			_, e := c.send(t, &clientpb.Send{ClientMsgId: "r-" + tc.name[:5], To: bo, Content: tc.content})
			if e.GetCode() != tc.code {
				t.Fatalf("got %v, want %s", e, tc.code)
			}
			if after := lastSeq(t, rt, ann); after != before {
				t.Fatalf("ann's timeline grew from %d to %d", before, after)
			}
		})
	}
	if rt.media.get(mine.ID).SentAtMs != 0 || rt.media.get(theirs.ID).SentAtMs != 0 {
		t.Fatal("a refused send marked a file sent")
	}
}

// TestMediaGroupAndAdminSend: a group send and the HTTP API's send resolve
// media as a connection's send does; the API's sender is the user in the
// path, who must own the file.
func TestMediaGroupAndAdminSend(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	u := newUsers(t, rt, "ann", "bo", "cy")
	ann, bo, cy := u[0], u[1], u[2]
	g := "gm-" + ann
	ctx := context.Background()
	if r := userOpGroup(t, rt, ann, g, []string{bo, cy}); r != nil {
		t.Fatalf("create group: %v", r)
	}
	vid := upload(rt, ann, "video/mp4", "clip.mp4")
	group := clientpb.ConversationType_CONVERSATION_TYPE_GROUP
	video := &clientpb.Content{Kind: &clientpb.Content_Video{Video: &clientpb.Media{
		FileId: vid.ID, Width: 1920, Height: 1080, DurationMs: 61_000, Size: 5, Caption: "look"}}}

	c := connect(t, rt, ann)
	ack, e := c.send(t, &clientpb.Send{ClientMsgId: "gv-1", To: g, ConversationType: group, Content: video})
	if e != nil {
		t.Fatalf("group send: %v", e)
	}
	want := &clientpb.Content{Kind: &clientpb.Content_Video{Video: &clientpb.Media{FileId: vid.ID, Name: "clip.mp4",
		MimeType: "video/mp4", Size: 123456, Sha256: vid.SHA256, Width: 1920, Height: 1080, DurationMs: 61_000, Caption: "look"}}}
	for _, member := range []string{bo, cy} {
		if m := lastEntry(t, rt, member).GetMessage(); m.GetId() != ack.GetMsgId() || !proto.Equal(m.GetContent(), want) {
			t.Fatalf("%s received %v\nwant %v", member, m, want)
		}
	}

	// Bo may not send ann's file, to the group or privately, by either path.
	cb := connect(t, rt, bo)
	if _, e := cb.send(t, &clientpb.Send{ClientMsgId: "gv-2", To: g, ConversationType: group, Content: video}); e.GetCode() != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("group send of another's file: %v", e)
	}
	if _, e := rt.Send(ctx, bo, "server", &clientpb.Send{ClientMsgId: "av-1", To: ann, Content: video}); e.GetCode() != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("admin send of another's file: %v", e)
	}
	if _, e := rt.Send(ctx, bo, "server", &clientpb.Send{ClientMsgId: "av-2", To: g, ConversationType: group, Content: video}); e.GetCode() != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("admin group send of another's file: %v", e)
	}
	// Ann may, through the API, with the record's fields.
	a, e := rt.Send(ctx, ann, "server", &clientpb.Send{ClientMsgId: "av-3", To: bo, Content: video})
	if e != nil {
		t.Fatalf("admin send: %v", e)
	}
	if m := lastEntry(t, rt, bo).GetMessage(); m.GetId() != a.GetMsgId() || !proto.Equal(m.GetContent(), want) {
		t.Fatalf("bo received %v\nwant %v", m, want)
	}
	if again, e := rt.Send(ctx, ann, "server", &clientpb.Send{ClientMsgId: "av-3", To: bo, Content: video}); e != nil || !again.GetDuplicate() {
		t.Fatalf("admin retry: %v %v", again, e)
	}
}

// userOpGroup creates group g owned by owner with members; the error, or nil.
func userOpGroup(t *testing.T, rt *testNode, owner, g string, members []string) *clientpb.Error {
	t.Helper()
	res, err := rt.d.member.Request(context.Background(), g, KindGroup, &actorpb.GroupOp{User: owner, Request: &clientpb.GroupRequest{
		GroupId: g, Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Members: members}}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.(*actorpb.OpResult).GetError()
}

// TestMediaDisabled: without a MediaFiles store, media sends are refused
// with ERR_UNSUPPORTED, and broadcasts never carry media.
func TestMediaDisabled(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := startServiceOn(t, st)
	ctx := context.Background()
	send := &clientpb.Send{ClientMsgId: "m1", To: "bo", Content: imageContent(&clientpb.Media{FileId: newFileID()})}
	if _, e := rt.Send(ctx, "ann", "server", send); e.GetCode() != clientpb.ErrorCode_ERR_UNSUPPORTED {
		t.Fatalf("media send without media: %v", e)
	}
	_, e := rt.Broadcast(ctx, BroadcastRequest{Content: send.GetContent()})
	if e.GetCode() != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("broadcast of media: %v", e)
	}
}

// TestMediaMessage: the media API's lookup finds a message in the user's
// own timeline only, and flags it once recalled.
func TestMediaMessage(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	u := newUsers(t, rt, "ann", "bo", "cy")
	ann, bo, cy := u[0], u[1], u[2]
	ctx := context.Background()
	f := upload(rt, ann, "audio/ogg", "hello.ogg")
	voice := &clientpb.Content{Kind: &clientpb.Content_Audio{Audio: &clientpb.Media{FileId: f.ID, Voice: true, DurationMs: 3000}}}
	ack, e := rt.Send(ctx, ann, "server", &clientpb.Send{ClientMsgId: "v1", To: bo, Content: voice})
	if e != nil {
		t.Fatal(e)
	}
	for _, user := range []string{ann, bo} {
		m, err := rt.MediaMessage(ctx, user, ack.GetMsgId())
		if err != nil || m.GetContent().GetAudio().GetFileId() != f.ID || !m.GetContent().GetAudio().GetVoice() || m.GetRecalled() {
			t.Fatalf("MediaMessage(%s): %v, %v", user, m, err)
		}
	}
	for _, tc := range []struct {
		user string
		id   uint64
	}{{cy, ack.GetMsgId()}, {bo, ack.GetMsgId() + 1<<40}, {bo, 0}} {
		if m, err := rt.MediaMessage(ctx, tc.user, tc.id); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("MediaMessage(%s, %d): %v, %v, want ErrNotFound", tc.user, tc.id, m, err)
		}
	}

	r := userOp(t, rt, ann, &clientpb.Frame{Body: &clientpb.Frame_Recall{Recall: &clientpb.Recall{
		ConversationId: ack.GetConversationId(), MsgId: ack.GetMsgId()}}})
	if r.GetError() != nil {
		t.Fatalf("recall: %v", r.GetError())
	}
	m, err := rt.MediaMessage(ctx, bo, ack.GetMsgId())
	if err != nil || !m.GetRecalled() || m.GetContent() != nil {
		t.Fatalf("recalled: %v, %v", m, err)
	}
}

// TestValidateMedia: the fields a sender sets on media are checked before
// any store call.
func TestValidateMedia(t *testing.T) {
	t.Parallel()
	id := newFileID()
	media := func(kind string, m *clientpb.Media) *clientpb.Content {
		if m.FileId == "" {
			m.FileId = id
		}
		return clientpb.MediaContent(kind, m)
	}
	for _, tc := range []struct {
		name    string
		content *clientpb.Content
		code    clientpb.ErrorCode // 0: accepted
	}{
		{"image", media(kindImage, &clientpb.Media{Caption: "hi"}), 0},
		{"voice note", media(kindAudio, &clientpb.Media{Voice: true, DurationMs: maxMediaDurationMs}), 0},
		{"video", media(kindVideo, &clientpb.Media{Width: maxVideoSide, Height: 1, DurationMs: 1}), 0},
		{"file", media(kindFile, &clientpb.Media{Name: "report.pdf"}), 0},
		{"empty media", &clientpb.Content{Kind: &clientpb.Content_Image{}}, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"short file id", media(kindFile, &clientpb.Media{FileId: id[1:]}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"upper case file id", media(kindFile, &clientpb.Media{FileId: strings.ToUpper("a" + id[1:])}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"caption not UTF-8", media(kindImage, &clientpb.Media{Caption: "\xff"}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"name not UTF-8", media(kindFile, &clientpb.Media{Name: "\xc3"}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"caption too long", media(kindImage, &clientpb.Media{Caption: strings.Repeat("x", 101)}), clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{"caption and name too long", media(kindImage, &clientpb.Media{Caption: strings.Repeat("x", 50), Name: strings.Repeat("n", 51)}), clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{"duration too long", media(kindVideo, &clientpb.Media{DurationMs: maxMediaDurationMs + 1}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"duration of an image", media(kindImage, &clientpb.Media{DurationMs: 1}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"voice video", media(kindVideo, &clientpb.Media{Voice: true}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"video too wide", media(kindVideo, &clientpb.Media{Width: maxVideoSide + 1}), clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"video too tall", media(kindVideo, &clientpb.Media{Height: maxVideoSide + 1}), clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validateContent(tc.content, 100)
			if e.GetCode() != tc.code {
				t.Fatalf("got %v, want %s", e, tc.code)
			}
		})
	}
}
