package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"actorim/client"
	"actorim/node"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// TestErrorCodes: every refusal comes back as a clear error code on the
// request that caused it, nothing is stored for it, and the connection keeps
// working unless the error is fatal to it.
func TestErrorCodes(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")

	t.Run("bad token closes with 4001", func(t *testing.T) {
		for name, tok := range map[string]string{
			"garbage": "not-a-token",
			"forged":  forge(t, alice),
			"expired": expired(t, n, alice),
		} {
			c := n.dial(t, client.Options{})
			_, err := c.Login(ctx(t), tok, "web", clientpb.Platform_PLATFORM_WEB, nil)
			if client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
				t.Fatalf("%s token: %v", name, err)
			}
			requireClosed(t, c, clientpb.CloseUnauthenticated)
		}
	})

	t.Run("frames before login", func(t *testing.T) {
		c := n.dial(t, client.Options{})
		_, err := c.Request(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_LOGGED_IN {
			t.Fatalf("ping before login: %v", err)
		}
		if _, err := c.Login(ctx(t), n.token(t, alice), "web", clientpb.Platform_PLATFORM_WEB, nil); err != nil {
			t.Fatalf("login after the refusal: %v", err)
		}
	})

	t.Run("bad login fields", func(t *testing.T) {
		c := n.dial(t, client.Options{})
		_, err := c.Login(ctx(t), n.token(t, alice), "bad/device", clientpb.Platform_PLATFORM_WEB, nil)
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Fatalf("bad device id: %v", err)
		}
		_, err = c.Login(ctx(t), n.token(t, alice), "web", clientpb.Platform_PLATFORM_UNSPECIFIED, nil)
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Fatalf("no platform: %v", err)
		}
	})

	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	sendErr := func(s *clientpb.Send) error {
		_, err := a.Send(ctx(t), s)
		return err
	}

	t.Run("malformed frame", func(t *testing.T) {
		if err := a.WriteRaw(websocket.BinaryMessage, []byte{0xff, 0xff, 0xff, 0x01, 0x02}); err != nil {
			t.Fatal(err)
		}
		requireAsyncError(t, a, clientpb.ErrorCode_ERR_BAD_FRAME)
		j := n.connect(t, alice, "json", nil, jsonCodec)
		for _, raw := range []string{`{"id":1,"send":`, `[1,2,3]`, `{"id":"x"}`, `{"send":{"to":7}}`} {
			if err := j.WriteRaw(websocket.TextMessage, []byte(raw)); err != nil {
				t.Fatal(err)
			}
			requireAsyncError(t, j, clientpb.ErrorCode_ERR_BAD_FRAME)
		}
		requireAlive(t, a)
		requireAlive(t, j)
	})

	t.Run("frame too large", func(t *testing.T) {
		f := &clientpb.Frame{Id: 99, Body: &clientpb.Frame_Send{Send: &clientpb.Send{
			ClientMsgId: cmid(), To: bob, Content: client.Text(strings.Repeat("x", 70<<10)),
		}}}
		data, _ := wire.ProtoCodec{}.Encode(f)
		if err := a.WriteRaw(websocket.BinaryMessage, data); err != nil {
			t.Fatal(err)
		}
		requireAsyncError(t, a, clientpb.ErrorCode_ERR_FRAME_TOO_LARGE)
		requireAlive(t, a)
		b.quiet(t, 300*time.Millisecond)

		// Far beyond the limit the socket is closed with 1009.
		c := n.connect(t, alice, "big", nil)
		_ = c.WriteRaw(websocket.BinaryMessage, bytes.Repeat([]byte{1}, 300<<10))
		requireClosed(t, c.Conn, websocket.CloseMessageTooBig)
	})

	t.Run("payload too large", func(t *testing.T) {
		err := sendErr(&clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Text(strings.Repeat("y", 17<<10))})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE {
			t.Fatalf("17 KiB text: %v", err)
		}
	})

	t.Run("unknown recipient", func(t *testing.T) {
		err := sendErr(&clientpb.Send{ClientMsgId: cmid(), To: "nobody-" + alice, Content: client.Text("hi")})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT {
			t.Fatalf("unknown recipient: %v", err)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for name, s := range map[string]*clientpb.Send{
			"no client_msg_id":     {To: bob, Content: client.Text("x")},
			"bad recipient id":     {ClientMsgId: cmid(), To: "no/such", Content: client.Text("x")},
			"no content":           {ClientMsgId: cmid(), To: bob},
			"empty text":           {ClientMsgId: cmid(), To: bob, Content: client.Text("")},
			"invalid UTF-8":        {ClientMsgId: cmid(), To: bob, Content: client.Text("caf\xe9")},
			"invalid UTF-8 custom": {ClientMsgId: cmid(), To: bob, Content: client.Custom("x", "\"\xff\"")},
		} {
			if err := sendErr(s); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := a.Sync(ctx(t), 0, 501); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("sync limit 501: %v", err)
		}
		if _, err := a.History(ctx(t), "nonsense", 0, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("history of a malformed conversation id: %v", err)
		}
		b.quiet(t, 200*time.Millisecond)
	})

	t.Run("forbidden history", func(t *testing.T) {
		if _, err := a.History(ctx(t), "p:"+bob+":zz-someone-else", 0, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
			t.Fatalf("reading others' conversation: %v", err)
		}
	})

	t.Run("unsupported and already logged in", func(t *testing.T) {
		_, err := a.Request(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Push{Push: &clientpb.Push{}}})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_UNSUPPORTED {
			t.Fatalf("client sends a push: %v", err)
		}
		_, err = a.Login(ctx(t), n.token(t, alice), "web", clientpb.Platform_PLATFORM_WEB, nil)
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_ALREADY_LOGGED_IN {
			t.Fatalf("second login: %v", err)
		}
		_, err = a.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: "no-such-group-" + bob, Content: client.Text("g"),
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("send to a group that does not exist: %v", err)
		}
	})

	t.Run("http errors", func(t *testing.T) {
		h := &client.HTTP{BaseURL: n.http}
		if err := h.Register(ctx(t), alice, "whatever1"); client.CodeOf(err) != clientpb.ErrorCode_ERR_CONFLICT {
			t.Errorf("register taken id: %v", err)
		}
		if err := h.Register(ctx(t), "new-"+alice, "123"); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("short password: %v", err)
		}
		if _, err := h.Login(ctx(t), alice, "wrong-password"); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Errorf("wrong password: %v", err)
		}
		if _, err := h.History(ctx(t), "p:a:b", 0, 0); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Errorf("history without token: %v", err)
		}
		resp, err := http.Post(n.http+"/v1/register", "application/json", strings.NewReader(`{"user_id":`))
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed body: %v %v", resp.StatusCode, err)
		}
	})
}

// TestRateLimitedSend: sends beyond the per-connection rate are refused with
// ERR_RATE_LIMITED and a retry hint; nothing is stored for them, and the same
// client message id succeeds once the client waits.
func TestRateLimitedSend(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.Gateway.SendRate, c.Gateway.SendBurst = 5, 5
	})
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	var limited []string
	accepted := 0
	for i := 0; i < 12; i++ {
		id := cmid()
		_, err := a.SendText(ctx(t), bob, id, "burst")
		var e *client.Error
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &e) && e.Code == clientpb.ErrorCode_ERR_RATE_LIMITED:
			if e.RetryAfter <= 0 {
				t.Fatalf("no retry hint: %v", e)
			}
			limited = append(limited, id)
		default:
			t.Fatal(err)
		}
	}
	if accepted < 5 || len(limited) == 0 {
		t.Fatalf("accepted %d, limited %d", accepted, len(limited))
	}
	got := b.collect(t, accepted, 5*time.Second)
	b.quiet(t, 300*time.Millisecond)
	time.Sleep(time.Second)
	ack, err := a.SendText(ctx(t), bob, limited[0], "burst")
	if err != nil || ack.GetDuplicate() {
		t.Fatalf("retry after waiting: %v, %v", ack, err)
	}
	if more := b.collect(t, 1, 5*time.Second); more[0].GetSeq() != got[len(got)-1].GetSeq()+1 {
		t.Fatalf("gap after refused sends: %d then %d", got[len(got)-1].GetSeq(), more[0].GetSeq())
	}
}

// TestConnectionTimeouts: a socket that never logs in is closed with 4002; a
// logged-in socket that goes silent (no frames, no pongs) with 4004.
func TestConnectionTimeouts(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.Gateway.LoginTimeout = 500 * time.Millisecond
		c.Gateway.IdleTimeout = time.Second
	})
	c := n.dial(t, client.Options{})
	requireClosed(t, c, clientpb.CloseLoginTimeout)

	alice := n.newUser(t, "alice")
	// The token first: a password login hashes (tens of ms, more on a busy
	// machine), which must not eat the 500 ms login timeout of the socket.
	token := n.token(t, alice)
	ws, _, err := websocket.DefaultDialer.Dial(n.ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetPingHandler(func(string) error { return nil }) // a dead peer answers nothing
	login, _ := wire.JSONCodec{}.Encode(&clientpb.Frame{Id: 1, Body: &clientpb.Frame_Login{Login: &clientpb.Login{
		Token: token, DeviceId: "web", Platform: clientpb.Platform_PLATFORM_WEB,
	}}})
	if err := ws.WriteMessage(websocket.TextMessage, login); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var closeErr *websocket.CloseError
	for {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &closeErr) || closeErr.Code != clientpb.CloseIdle {
		t.Fatalf("silent socket ended with %v", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 4*time.Second {
		t.Fatalf("closed after %v, idle timeout is 1s", el)
	}
}

func requireAsyncError(t *testing.T, c *device, code clientpb.ErrorCode) {
	t.Helper()
	select {
	case e := <-c.Errors():
		if e.GetCode() != code {
			t.Fatalf("error %v, want %v", e, code)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v error", code)
	}
}

func requireClosed(t *testing.T, c *client.Conn, code int) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("connection not closed (want close code %d)", code)
	}
	if got, reason, _ := c.CloseStatus(); got != code {
		t.Fatalf("close code %d (%q), want %d", got, reason, code)
	}
}

func forge(t *testing.T, user string) string {
	t.Helper()
	other, _ := newTokens("another-secret-0123456789abcdef0123")
	tok, _, err := other.Issue(user, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func expired(t *testing.T, n *testNode, user string) string {
	t.Helper()
	tok, _, err := n.tokens.IssueFor(user, false, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
