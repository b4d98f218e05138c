package gateway

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"actorim/protos/clientpb"
	"actorim/wire"
)

// codecs are the subprotocols a client may ask for; none means JSON.
var codecs = []struct{ name, subprotocol string }{
	{"proto", wire.SubprotocolProto},
	{"json", wire.SubprotocolJSON},
	{"none", ""},
}

// TestCodecs: each subprotocol decodes what the client sends into the frame
// the backend gets, and encodes what the backend writes in its own message
// type (binary protobuf, or JSON text when none was asked for).
func TestCodecs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			c, conn := h.login(t, cc.subprotocol, "alice")
			wantType := websocket.TextMessage
			if cc.subprotocol == wire.SubprotocolProto {
				wantType = websocket.BinaryMessage
			}
			if c.codec.MessageType() != wantType || c.ws.Subprotocol() != cc.subprotocol {
				t.Fatalf("negotiated %q, message type %d", c.ws.Subprotocol(), c.codec.MessageType())
			}
			sent := sendFrame(7, "héllo 👋")
			c.send(sent)
			if got := conn.next(t).f; !proto.Equal(got, sent) {
				t.Fatalf("backend got %v, want %v", got, sent)
			}
			push := &clientpb.Frame{Body: &clientpb.Frame_SendAck{SendAck: &clientpb.SendAck{ClientMsgId: "x", Seq: 1 << 60}}}
			if err := conn.out.WriteFrame(push); err != nil {
				t.Fatal(err)
			}
			if got := c.read(); !proto.Equal(got, push) {
				t.Fatalf("client got %v, want %v", got, push)
			}
		})
	}
}

// TestLogin: the first frame must be a Login with an acceptable token; a
// refused token closes with 4001, silence with 4002; a bad device id or
// platform is answered and the socket stays for a corrected Login.
func TestLogin(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.LoginTimeout = 300 * time.Millisecond
	cfg.IdleTimeout = 4 * time.Second
	h := newHarness(t, cfg)

	t.Run("session", func(t *testing.T) {
		c := h.dial(t, wire.SubprotocolJSON)
		seq := uint64(41)
		f := loginFrame(9, h.userToken(t, "alice"), "phone-1")
		f.GetLogin().LastSeq = &seq
		f.GetLogin().Platform = clientpb.Platform_PLATFORM_IOS
		c.send(f)
		if ok := c.read(); ok.GetLoginOk() == nil || ok.GetId() != 9 {
			t.Fatalf("got %v, want LoginOK 9", ok)
		}
		s := h.nextConn(t).sess
		if s.UserID != "alice" || s.DeviceID != "phone-1" || s.Platform != clientpb.Platform_PLATFORM_IOS ||
			s.LoginID != 9 || s.LastSeq == nil || *s.LastSeq != 41 || s.TokenIssuedAt.IsZero() ||
			s.HeartbeatMs != 2000 || s.MaxFrameBytes != 1<<10 || len(s.SessionID) != 24 {
			t.Fatalf("session %+v", s)
		}
	})

	t.Run("first frame must be login", func(t *testing.T) {
		c := h.dial(t, wire.SubprotocolProto)
		c.send(pingFrame(3))
		c.readError(3, clientpb.ErrorCode_ERR_NOT_LOGGED_IN)
		c.send(loginFrame(4, h.userToken(t, "alice"), "dev1"))
		if f := c.read(); f.GetLoginOk() == nil {
			t.Fatalf("login after a refused frame: %v", f)
		}
		h.nextConn(t)
	})

	for _, tc := range []struct{ name, token string }{
		{"malformed token", "not-a-token"},
		{"token of another secret", h.adminToken(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t, wire.SubprotocolJSON)
			c.send(loginFrame(5, tc.token, "dev1"))
			c.readError(5, clientpb.ErrorCode_ERR_UNAUTHENTICATED)
			c.closed(clientpb.CloseUnauthenticated)
		})
	}

	for _, tc := range []struct {
		name     string
		device   string
		platform clientpb.Platform
	}{
		{"bad device id", "no spaces", clientpb.Platform_PLATFORM_WEB},
		{"empty device id", "", clientpb.Platform_PLATFORM_WEB},
		{"device id too long", strings.Repeat("d", 65), clientpb.Platform_PLATFORM_WEB},
		{"no platform", "dev1", clientpb.Platform_PLATFORM_UNSPECIFIED},
		{"unknown platform", "dev1", clientpb.Platform(99)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t, wire.SubprotocolProto)
			f := loginFrame(6, h.userToken(t, "alice"), tc.device)
			f.GetLogin().Platform = tc.platform
			c.send(f)
			c.readError(6, clientpb.ErrorCode_ERR_BAD_REQUEST)
			c.send(loginFrame(7, h.userToken(t, "alice"), "dev1"))
			if f := c.read(); f.GetLoginOk() == nil || f.GetId() != 7 {
				t.Fatalf("corrected login: %v", f)
			}
			h.nextConn(t)
		})
	}

	t.Run("timeout", func(t *testing.T) {
		c := h.dial(t, wire.SubprotocolJSON)
		start := time.Now()
		c.closed(clientpb.CloseLoginTimeout)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v, login timeout is %v", d, cfg.LoginTimeout)
		}
	})

	t.Run("too many frames before login", func(t *testing.T) {
		c := h.dial(t, wire.SubprotocolProto)
		for i := range maxBadFrames - 1 {
			c.send(pingFrame(uint32(i + 1)))
			c.readError(uint32(i+1), clientpb.ErrorCode_ERR_NOT_LOGGED_IN)
		}
		c.sendRaw([]byte{0x0a, 0xff}) // undecodable counts too
		c.closed(clientpb.CloseProtocol)
	})
}

// sizedFrame returns a Send frame whose encoding is exactly n bytes.
func sizedFrame(t *testing.T, codec wire.Codec, n int) []byte {
	t.Helper()
	for pad := max(n-100, 0); pad <= n; pad++ {
		f := sendFrame(1, strings.Repeat("x", pad))
		f.GetSend().ClientMsgId = "m1"
		data, err := codec.Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == n {
			return data
		}
	}
	t.Fatalf("no frame of %d bytes", n)
	return nil
}

// TestFrameSizeLimits: a frame up to MaxFrameBytes is served; a larger one
// is answered ERR_FRAME_TOO_LARGE (id 0) and the socket lives on; one over
// four times the limit closes the socket with 1009.
func TestFrameSizeLimits(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	h := newHarness(t, cfg)
	max := cfg.MaxFrameBytes
	for _, cc := range codecs[:2] {
		t.Run(cc.name, func(t *testing.T) {
			c, conn := h.login(t, cc.subprotocol, "alice")
			c.sendRaw(sizedFrame(t, c.codec, max))
			if f := conn.next(t).f; f.GetSend() == nil {
				t.Fatalf("frame of the limit: backend got %v", f)
			}
			for _, n := range []int{max + 1, 4 * max} {
				c.sendRaw(bytes.Repeat([]byte{'x'}, n))
				e := c.readError(0, clientpb.ErrorCode_ERR_FRAME_TOO_LARGE)
				if !strings.Contains(e.GetMessage(), "1024") {
					t.Fatalf("message %q does not name the limit", e.GetMessage())
				}
			}
			conn.none(t, 50*time.Millisecond)
			c.alive(2)
			c.sendRaw(bytes.Repeat([]byte{'x'}, 4*max+1))
			c.closed(websocket.CloseMessageTooBig)
		})
	}
}

// TestBadFrames: an undecodable frame is answered ERR_BAD_FRAME (id 0); 16
// in a row close the socket with 4005, and a good frame resets the count.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	for _, tc := range []struct {
		name, subprotocol string
		junk              []byte
	}{
		{"proto", wire.SubprotocolProto, []byte{0x0a, 0xff}},
		{"json", wire.SubprotocolJSON, []byte(`{"ping": `)},
		{"json of the wrong shape", wire.SubprotocolJSON, []byte(`{"id": "x"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, conn := h.login(t, tc.subprotocol, "alice")
			for range maxBadFrames - 1 {
				c.sendRaw(tc.junk)
				c.readError(0, clientpb.ErrorCode_ERR_BAD_FRAME)
			}
			c.alive(1)
			conn.next(t) // the ping
			for range maxBadFrames - 1 {
				c.sendRaw(tc.junk)
				c.readError(0, clientpb.ErrorCode_ERR_BAD_FRAME)
			}
			conn.none(t, 20*time.Millisecond)
			c.sendRaw(tc.junk)
			c.closed(clientpb.CloseProtocol)
			select {
			case <-conn.closed:
			case <-time.After(2 * time.Second):
				t.Fatal("the backend was not told the socket closed")
			}
		})
	}
}

// TestSendRate: Sends beyond SendBurst are refused with ERR_RATE_LIMITED
// and the time a token takes to come back; other frames still pass.
func TestSendRate(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.SendRate, cfg.SendBurst = 0.25, 3
	h := newHarness(t, cfg)
	c, conn := h.login(t, wire.SubprotocolProto, "alice")
	for i := range uint32(3) {
		c.send(sendFrame(10+i, "hi"))
		if f := conn.next(t).f; f.GetId() != 10+i {
			t.Fatalf("send %d: backend got %v", i, f)
		}
	}
	c.send(sendFrame(13, "one too many"))
	if e := c.readError(13, clientpb.ErrorCode_ERR_RATE_LIMITED); e.GetRetryAfterMs() != 4000 {
		t.Fatalf("retry after %d ms, want 4000", e.GetRetryAfterMs())
	}
	conn.none(t, 20*time.Millisecond)
	c.alive(14)
}

// TestRequestRate: frames beyond RequestBurst are refused with
// ERR_RATE_LIMITED; a client that sends RequestBurst more while refused is
// closed with 4007.
func TestRequestRate(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RequestRate, cfg.RequestBurst = 0.2, 3
	h := newHarness(t, cfg)
	c, conn := h.login(t, wire.SubprotocolJSON, "alice")
	for i := range uint32(3) {
		c.alive(1 + i)
		conn.next(t)
	}
	for i := range uint32(3) {
		c.send(pingFrame(4 + i))
		if e := c.readError(4+i, clientpb.ErrorCode_ERR_RATE_LIMITED); e.GetRetryAfterMs() != 5000 {
			t.Fatalf("retry after %d ms, want 5000", e.GetRetryAfterMs())
		}
	}
	conn.none(t, 20*time.Millisecond)
	c.send(pingFrame(7))
	c.closed(clientpb.CloseRateLimited)
}

// TestBackpressure: frames the backend has not answered hold at most
// MaxInflightBytes (each its size plus 1 KiB); beyond it the socket is not
// read until an answer frees room.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxInflightBytes = 4 << 10 // three pings of a few bytes each
	h := newHarness(t, cfg)
	h.be.mu.Lock()
	h.be.hold = true
	h.be.mu.Unlock()
	c, conn := h.login(t, wire.SubprotocolProto, "alice")
	for i := range uint32(6) {
		c.send(pingFrame(1 + i))
	}
	var held []heldFrame
	for range 3 {
		held = append(held, conn.next(t))
	}
	conn.none(t, 100*time.Millisecond)
	held[0].done()
	if f := conn.next(t).f; f.GetId() != 4 {
		t.Fatalf("after one answer: frame %d", f.GetId())
	}
	conn.none(t, 50*time.Millisecond)
	held[1].done()
	held[2].done()
	for _, want := range []uint32{5, 6} {
		if f := conn.next(t).f; f.GetId() != want {
			t.Fatalf("frame %d, want %d", f.GetId(), want)
		}
	}
}

// TestIdleTimeout: a client that answers the server's pings stays
// connected past the idle timeout; one that answers nothing is closed
// with 4004.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	h := newHarness(t, cfg)
	for _, tc := range []struct {
		name    string
		pongs   bool
		closeAt int // close code, 0 for none
	}{
		{"pongs keep it open", true, 0},
		{"silence closes", false, clientpb.CloseIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := h.login(t, wire.SubprotocolJSON, "alice")
			if !tc.pongs {
				c.ws.SetPingHandler(func(string) error { return nil })
			}
			ended := make(chan error, 1)
			go func() {
				for {
					if _, _, err := c.ws.ReadMessage(); err != nil {
						ended <- err
						return
					}
				}
			}()
			select {
			case err := <-ended:
				ce, ok := err.(*websocket.CloseError)
				if tc.closeAt == 0 || !ok || ce.Code != tc.closeAt {
					t.Fatalf("socket ended with %v, want close %d", err, tc.closeAt)
				}
			case <-time.After(3 * cfg.IdleTimeout):
				if tc.closeAt != 0 {
					t.Fatalf("still open after %v", 3*cfg.IdleTimeout)
				}
			}
		})
	}
}

// TestConnectionLimit: beyond MaxConnections a new connection is answered
// 503 with Retry-After (healthz still answers), far beyond it closed at once,
// and a closed connection gives its slot back.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxConnections = 1
	h := newHarness(t, cfg)
	first, _ := h.login(t, wire.SubprotocolProto, "alice")

	refused := func(t *testing.T, url string) {
		t.Helper()
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
		if err == nil || resp == nil {
			t.Fatalf("dial over the limit: %v", err)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "5" {
			t.Fatalf("Retry-After %q", ra)
		}
		wantError(t, resp, http.StatusServiceUnavailable, clientpb.ErrorCode_ERR_UNAVAILABLE)
	}
	t.Run("listener", func(t *testing.T) { refused(t, h.ts.URL) })
	t.Run("sockets", func(t *testing.T) {
		// A server without Listener counts only sockets.
		plain := httptest.NewServer(h.srv.Handler())
		defer plain.Close()
		refused(t, plain.URL)
	})
	// Plain HTTP over the limit: a connection of its own each.
	plainHTTP := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	t.Run("plain HTTP", func(t *testing.T) {
		resp, err := plainHTTP.Get(h.ts.URL + "/v1/conversations/p:alice:bob/messages")
		if err != nil {
			t.Fatal(err)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "5" {
			t.Fatalf("Retry-After %q", ra)
		}
		wantError(t, resp, http.StatusServiceUnavailable, clientpb.ErrorCode_ERR_UNAVAILABLE)
	})
	t.Run("healthz answers", func(t *testing.T) {
		resp, err := plainHTTP.Get(h.ts.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz over the limit: %v %v", resp, err)
		}
		resp.Body.Close()
	})
	t.Run("far beyond closed at once", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		addr := strings.TrimPrefix(h.ts.URL, "http://")
		for range refuseHeadroom {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		// Accepts run in order: once the last one is closed, all before it
		// were counted.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("connection beyond the headroom: read %d, %v", n, err)
		}
	})
	t.Run("slot given back", func(t *testing.T) {
		_ = first.ws.Close()
		deadline := time.Now().Add(3 * time.Second)
		for {
			ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.ts.URL, "http")+"/ws", nil)
			if err == nil {
				ws.Close()
				return
			}
			if resp != nil {
				resp.Body.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("no slot after the first socket closed: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestShutdown: RefuseNew closes new sockets with 4009 and keeps the open
// ones; Shutdown closes them with its code and tells the backend.
func TestShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	c, conn := h.login(t, wire.SubprotocolProto, "alice")
	h.srv.RefuseNew()
	h.dial(t, wire.SubprotocolProto).closed(clientpb.CloseReconnectElsewhere)
	c.alive(1)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx, clientpb.CloseReconnectElsewhere, "draining")
	}()
	c.closed(clientpb.CloseReconnectElsewhere)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-conn.closed:
	case <-time.After(time.Second):
		t.Fatal("the backend was not told the socket closed")
	}
}
