package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"actorim/actors"
	"actorim/auth"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// fakeBackend is a gateway.Backend without actors: accounts in a map, every
// login recorded as a fakeConn, and err (when set) returned by every call
// but Connect.
type fakeBackend struct {
	mu       sync.Mutex
	accounts map[string]string    // user id -> password hash
	revoked  map[string]time.Time // user id -> tokens revoked before
	err      *clientpb.Error
	// hold keeps the frames of new connections unanswered (their done is
	// not called) until the test releases them.
	hold  bool
	conns chan *fakeConn
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{accounts: map[string]string{}, revoked: map[string]time.Time{}, conns: make(chan *fakeConn, 16)}
}

func (b *fakeBackend) failing() *clientpb.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *fakeBackend) setErr(e *clientpb.Error) {
	b.mu.Lock()
	b.err = e
	b.mu.Unlock()
}

// Connect answers LoginOK at once, as the connection actor does, and
// records the connection.
func (b *fakeBackend) Connect(s actors.Session, out actors.Outbound) actors.Inbound {
	b.mu.Lock()
	hold := b.hold
	b.mu.Unlock()
	c := &fakeConn{sess: s, out: out, hold: hold, frames: make(chan heldFrame, 1024), closed: make(chan struct{})}
	_ = out.WriteFrame(&clientpb.Frame{Id: s.LoginID, Body: &clientpb.Frame_LoginOk{LoginOk: &clientpb.LoginOK{
		UserId: s.UserID, SessionId: s.SessionID, HeartbeatMs: s.HeartbeatMs, MaxFrameBytes: s.MaxFrameBytes}}})
	b.conns <- c
	return c
}

func (b *fakeBackend) CreateAccount(_ context.Context, userID, passwordHash string, ifMissing bool) *clientpb.Error {
	if e := b.failing(); e != nil {
		return e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.accounts[userID]; ok && !ifMissing {
		return &clientpb.Error{Code: clientpb.ErrorCode_ERR_CONFLICT, Message: "taken"}
	}
	b.accounts[userID] = passwordHash
	return nil
}

func (b *fakeBackend) Account(_ context.Context, userID string) (bool, string, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return false, "", e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.accounts[userID]
	return ok, h, nil
}

func (b *fakeBackend) History(_ context.Context, _ string, req *clientpb.HistoryRequest) (*clientpb.HistoryResult, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return nil, e
	}
	return &clientpb.HistoryResult{HasMore: req.GetBeforeSeq() > 1}, nil
}

func (b *fakeBackend) Send(_ context.Context, _, _ string, s *clientpb.Send) (*clientpb.SendAck, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return nil, e
	}
	return &clientpb.SendAck{ClientMsgId: s.GetClientMsgId(), Seq: 1, MsgId: 1}, nil
}

func (b *fakeBackend) TokensRevokedBefore(_ context.Context, userID string) (time.Time, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return time.Time{}, e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.revoked[userID], nil
}

func (b *fakeBackend) RevokeTokens(_ context.Context, userID string, before time.Time) (time.Time, int, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return time.Time{}, 0, e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.revoked[userID] = before
	return before, 0, nil
}

// broadcastBackend is a fakeBackend that also broadcasts.
type broadcastBackend struct{ *fakeBackend }

func (b broadcastBackend) Broadcast(_ context.Context, req actors.BroadcastRequest) (actors.BroadcastResult, *clientpb.Error) {
	if e := b.failing(); e != nil {
		return actors.BroadcastResult{}, e
	}
	return actors.BroadcastResult{ConversationID: "s:" + req.Channel}, nil
}

// fakeConn is a logged-in connection: it answers Ping with Pong and
// records every other frame, releasing it at once unless held.
type fakeConn struct {
	sess   actors.Session
	out    actors.Outbound
	hold   bool
	frames chan heldFrame
	once   sync.Once
	closed chan struct{}
}

type heldFrame struct {
	f    *clientpb.Frame
	done func()
}

func (c *fakeConn) Frame(f *clientpb.Frame, done func()) {
	if !c.hold {
		defer done()
	}
	if f.GetPing() != nil {
		_ = c.out.WriteFrame(&clientpb.Frame{Id: f.GetId(), Body: &clientpb.Frame_Pong{Pong: &clientpb.Pong{}}})
	}
	c.frames <- heldFrame{f, done}
}

func (c *fakeConn) SocketClosed() { c.once.Do(func() { close(c.closed) }) }

// next returns the next frame the connection was handed.
func (c *fakeConn) next(t *testing.T) heldFrame {
	t.Helper()
	select {
	case h := <-c.frames:
		return h
	case <-time.After(2 * time.Second):
		t.Fatal("no frame reached the backend")
		return heldFrame{}
	}
}

// none fails if a frame reaches the backend within d.
func (c *fakeConn) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case h := <-c.frames:
		t.Fatalf("frame %d reached the backend: %v", h.f.GetId(), h.f)
	case <-time.After(d):
	}
}

const (
	userSecret  = "user-secret-for-tests-0123456789abcdef"
	adminSecret = "admin-secret-for-tests-0123456789abcdef"
)

// harness is a Server over a fakeBackend, served the way a node serves it:
// through Listener and HTTPServer.
type harness struct {
	srv           *Server
	ts            *httptest.Server
	be            *fakeBackend
	tokens, admin *auth.Tokens
}

// testConfig is a Config with timeouts short enough for tests.
func testConfig() Config {
	return Config{
		MaxFrameBytes: 1 << 10,
		IdleTimeout:   5 * time.Second,
		LoginTimeout:  2 * time.Second,
		WriteTimeout:  2 * time.Second,
		LoginRate:     -1,
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil)
}

// newHarnessWith serves backend, a fakeBackend when nil.
func newHarnessWith(t *testing.T, cfg Config, backend Backend) *harness {
	t.Helper()
	h := &harness{}
	var err error
	if h.tokens, err = auth.NewTokens([]byte(userSecret), time.Hour); err != nil {
		t.Fatal(err)
	}
	if h.admin, err = auth.NewTokens([]byte(adminSecret), time.Hour); err != nil {
		t.Fatal(err)
	}
	switch b := backend.(type) {
	case nil:
		h.be = newFakeBackend()
		backend = h.be
	case broadcastBackend:
		h.be = b.fakeBackend
	case *fakeBackend:
		h.be = b
	}
	h.srv = New(cfg, backend, auth.NewKeyring(h.tokens, nil), h.admin, nil, nil, nil, nil)
	h.ts = httptest.NewUnstartedServer(nil)
	h.ts.Config = h.srv.HTTPServer(h.srv.Handler(), nil)
	h.ts.Listener = h.srv.Listener(h.ts.Listener)
	h.ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx, websocket.CloseGoingAway, "test over"); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		h.ts.Close()
	})
	return h
}

// userToken returns a user token for user.
func (h *harness) userToken(t *testing.T, user string) string {
	t.Helper()
	tok, _, err := h.tokens.Issue(user, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminToken returns a token signed with the admin secret.
func (h *harness) adminToken(t *testing.T) string {
	t.Helper()
	tok, _, err := h.admin.Issue("ops", true)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// nextConn returns the next connection that logged in.
func (h *harness) nextConn(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-h.be.conns:
		return c
	case <-time.After(2 * time.Second):
		t.Fatal("no connection logged in")
		return nil
	}
}

// wsClient is a test client speaking one codec.
type wsClient struct {
	t     *testing.T
	ws    *websocket.Conn
	codec wire.Codec
}

// dial opens a WebSocket asking for subprotocol ("" asks for none).
func (h *harness) dial(t *testing.T, subprotocol string) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	if subprotocol != "" {
		d.Subprotocols = []string{subprotocol}
	}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(h.ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &wsClient{t: t, ws: ws, codec: wire.CodecFor(ws.Subprotocol())}
}

// login dials and logs in as user, returning the client and its connection.
func (h *harness) login(t *testing.T, subprotocol, user string) (*wsClient, *fakeConn) {
	t.Helper()
	c := h.dial(t, subprotocol)
	c.send(loginFrame(1, h.userToken(t, user), "dev1"))
	if ok := c.read().GetLoginOk(); ok == nil || ok.GetUserId() != user {
		t.Fatalf("login as %s: no LoginOK", user)
	}
	return c, h.nextConn(t)
}

func loginFrame(id uint32, token, device string) *clientpb.Frame {
	return &clientpb.Frame{Id: id, Body: &clientpb.Frame_Login{Login: &clientpb.Login{
		Token: token, DeviceId: device, Platform: clientpb.Platform_PLATFORM_WEB}}}
}

func pingFrame(id uint32) *clientpb.Frame {
	return &clientpb.Frame{Id: id, Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}}
}

func sendFrame(id uint32, text string) *clientpb.Frame {
	return &clientpb.Frame{Id: id, Body: &clientpb.Frame_Send{Send: &clientpb.Send{
		ClientMsgId: "m" + text, To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: text}}}}}
}

func (c *wsClient) send(f *clientpb.Frame) {
	c.t.Helper()
	data, err := c.codec.Encode(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(data)
}

// sendRaw writes data as one message of the codec's type.
func (c *wsClient) sendRaw(data []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(c.codec.MessageType(), data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, checking it came in the codec's message type.
func (c *wsClient) read() *clientpb.Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if mt != c.codec.MessageType() {
		c.t.Fatalf("message type %d, want %d (%s)", mt, c.codec.MessageType(), c.codec.Name())
	}
	f, err := c.codec.Decode(data)
	if err != nil {
		c.t.Fatalf("decode: %v", err)
	}
	return f
}

// readError reads the next frame and checks it is an error with code.
func (c *wsClient) readError(id uint32, code clientpb.ErrorCode) *clientpb.Error {
	c.t.Helper()
	f := c.read()
	e := f.GetError()
	if e.GetCode() != code || f.GetId() != id {
		c.t.Fatalf("got frame %d %v, want error %d %s", f.GetId(), f, id, code)
	}
	if e.GetMessage() == "" {
		c.t.Fatalf("%s without a message", code)
	}
	return e
}

// alive checks the socket is served: a Ping is answered with a Pong.
func (c *wsClient) alive(id uint32) {
	c.t.Helper()
	c.send(pingFrame(id))
	if f := c.read(); f.GetPong() == nil || f.GetId() != id {
		c.t.Fatalf("ping %d answered with %v", id, f)
	}
}

// closed reads until the socket ends and checks the close code; frames
// before the close are skipped.
func (c *wsClient) closed(code int) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("socket ended with %v, want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// errorBody is the JSON shape of every HTTP error.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks resp is an HTTP error with status and code, in the
// documented shape and nothing more.
func wantError(t *testing.T, resp *http.Response, status int, code clientpb.ErrorCode) errorBody {
	t.Helper()
	defer resp.Body.Close()
	var raw map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("status %d: body is not JSON: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != status {
		t.Fatalf("status %d %v, want %d %s", resp.StatusCode, raw, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var b errorBody
	inner, ok := raw["error"]
	if len(raw) != 1 || !ok || len(inner) != 2 {
		t.Fatalf("body %v is not {\"error\": {\"code\", \"message\"}}", raw)
	}
	b.Error.Code, _ = inner["code"].(string)
	b.Error.Message, _ = inner["message"].(string)
	if b.Error.Code != code.String() || b.Error.Message == "" {
		t.Fatalf("error %+v, want code %s and a message", b.Error, code)
	}
	if got := clientpb.HTTPStatus(code); got != status && status != http.StatusUnsupportedMediaType && status != http.StatusNotImplemented {
		t.Fatalf("%s answered with %d, but clientpb.HTTPStatus says %d", code, status, got)
	}
	return b
}
