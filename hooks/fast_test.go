package hooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func allowed(t *testing.T, c *Caller, app string) {
	t.Helper()
	if d := c.BeforeSend(context.Background(), app, textMessage("alice", "bob", "c1", "hello")); d.Action != Allow || d.Failed {
		t.Fatalf("%s: %+v", app, d)
	}
}

// The before-send client reads every shape of answer net/http's would, and
// keeps or closes the connection as the answer says; it sends the request
// net/http's would (method, content type, the webhook headers), with no
// Accept-Encoding; an answer longer than Config.MaxResponseBytes fails.
func TestFastClientAnswers(t *testing.T) {
	answers := map[string]func(http.ResponseWriter, *http.Request, int){
		// Flushed before the body: Transfer-Encoding: chunked.
		"chunked": func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(`{"action":`))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(`"refuse","reason":"chunks"}`))
		},
		"close": func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte(`{"action":"refuse","reason":"closing"}`))
		},
		"no content": func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) },
		"large": func(w http.ResponseWriter, _ *http.Request, _ int) {
			_, _ = w.Write([]byte(`{"action":"refuse","reason":"` + strings.Repeat("x", 100<<10) + `"}`))
		},
		// Longer than MaxResponseBytes: a failure, not a cut answer.
		"oversize": func(w http.ResponseWriter, _ *http.Request, _ int) {
			_, _ = w.Write([]byte(`{"action":"refuse","reason":"` + strings.Repeat("x", 300<<10) + `"}`))
		},
		"oversize chunked": func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(`{"action":"refuse","reason":"` + strings.Repeat("x", 300<<10) + `"}`))
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int64
			var badRequest atomic.Value
			rc := newReceiverConnState(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
					r.Header.Get("User-Agent") != "actorim" || r.Header.Get("Accept-Encoding") != "" || r.Proto != "HTTP/1.1" {
					badRequest.Store(fmt.Sprintf("%s %s %v", r.Method, r.Proto, r.Header))
				}
				answer(w, r, n)
			}, func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			})
			target := rc.target()
			target.Events = []string{EventBeforeSend}
			c := NewCaller(StaticTargets{"a": target}, nil, nil, Config{MaxResponseBytes: 200 << 10})
			for range 3 {
				d := c.BeforeSend(context.Background(), "a", textMessage("alice", "bob", "c1", "hello"))
				switch name {
				case "no content":
					if d.Action != Allow || d.Failed {
						t.Fatalf("%+v", d)
					}
				case "large":
					if d.Action != Refuse || d.Failed || len(d.Reason) != 100<<10 {
						t.Fatalf("%v %v %d", d.Action, d.Err, len(d.Reason))
					}
				case "oversize", "oversize chunked":
					if d.Action != Refuse || !d.Failed || d.Code != CodeUnavailable || !errors.Is(d.Err, fasthttp.ErrBodyTooLarge) {
						t.Fatalf("%v %v %v", d.Action, d.Code, d.Err)
					}
				default:
					if d.Action != Refuse || d.Failed || d.Reason != map[string]string{"chunked": "chunks", "close": "closing"}[name] {
						t.Fatalf("%+v", d)
					}
				}
			}
			if b := badRequest.Load(); b != nil {
				t.Fatalf("request %v", b)
			}
			if n := len(rc.requests()); n != 3 {
				t.Fatalf("%d requests, want 3", n)
			}
			for _, r := range rc.requests() {
				if r.sigErr != nil || r.event != EventBeforeSend || r.id != "bs-a-alice-c1" {
					t.Fatalf("request %+v", r)
				}
			}
			// An answer left unread closes its connection.
			closes := name == "close" || strings.HasPrefix(name, "oversize")
			if want := map[bool]int64{true: 3, false: 1}[closes]; conns.Load() != want {
				t.Fatalf("%d connections, want %d", conns.Load(), want)
			}
		})
	}
}

// A kept connection the receiver closed meanwhile is replaced: the call
// is made again on a new one, not failed.
func TestFastClientStaleConnection(t *testing.T) {
	rc := newReceiver(t, answerJSON(`{"action":"allow"}`))
	target := rc.target()
	target.Events = []string{EventBeforeSend}
	c := NewCaller(StaticTargets{"a": target}, nil, nil, Config{})
	allowed(t, c, "a")
	rc.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	allowed(t, c, "a")
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// Every kept connection closed by the receiver (it restarted, or closes
// idle connections sooner than the client): a call goes through the dead
// ones, closing each, to a new connection, and is answered.
func TestFastClientStaleConnections(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`{"action":"allow"}`))
	})
	target := rc.target()
	target.Events = []string{EventBeforeSend}
	c := NewCaller(StaticTargets{"a": target}, nil, nil, Config{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { allowed(t, c, "a") })
	}
	wg.Wait()
	h, _ := c.fast.hosts.Load(target.URL)
	kept := h.(*fastHost).hc.ConnsCount()
	if kept < 2 {
		t.Fatalf("%d kept connections, want several", kept)
	}
	rc.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	allowed(t, c, "a")
	if n := len(rc.requests()); n != 9 {
		t.Fatalf("%d requests, want 9", n)
	}
}

// A new connection that the receiver closes without answering fails the
// call: only a kept connection's failure is taken for a stale connection.
func TestFastClientNewConnectionClosed(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	target := rc.target()
	target.Events = []string{EventBeforeSend}
	c := NewCaller(StaticTargets{"a": target}, nil, nil, Config{})
	if d := c.BeforeSend(context.Background(), "a", textMessage("alice", "bob", "c1", "hello")); !d.Failed || d.Action != Refuse {
		t.Fatalf("%+v", d)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A call that waits for a connection (all BeforeSendConns busy) past its
// timeout fails like any timeout: fail-open allows.
func TestFastClientWaitTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		<-release
		_, _ = w.Write([]byte(`{"action":"refuse"}`))
	})
	defer close(release)
	target := rc.target()
	target.Events = []string{EventBeforeSend}
	target.Timeout = 2 * time.Second
	quick := target
	quick.Timeout, quick.FailOpen = 100*time.Millisecond, true
	c := NewCaller(StaticTargets{"a": target, "b": quick}, nil, nil, Config{BeforeSendConns: 1})
	go c.BeforeSend(context.Background(), "a", textMessage("alice", "bob", "c1", "hello"))
	eventually(t, time.Second, "the first call received", func() bool { return len(rc.requests()) == 1 })
	start := time.Now()
	d := c.BeforeSend(context.Background(), "b", textMessage("alice", "bob", "c2", "hello"))
	if took := time.Since(start); d.Action != Allow || !d.Failed || d.Code != CodeUnavailable || took < 90*time.Millisecond || took > time.Second {
		t.Fatalf("%+v after %v", d, took)
	}
}

// At most Config.BeforeSendConns connections to a receiver: the calls beyond
// wait for one and all are answered.
func TestFastClientConnectionCap(t *testing.T) {
	var open, peak atomic.Int64
	rc := newReceiverConnState(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`{"action":"allow"}`))
	}, func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			if n := open.Add(1); n > peak.Load() {
				peak.Store(n)
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	})
	target := rc.target()
	target.Events = []string{EventBeforeSend}
	const maxConns = 64
	c := NewCaller(StaticTargets{"a": target}, nil, nil, Config{BeforeSendConns: maxConns})
	var wg sync.WaitGroup
	for range 4 * maxConns {
		wg.Go(func() { allowed(t, c, "a") })
	}
	wg.Wait()
	if p := peak.Load(); p > maxConns || p < maxConns/2 {
		t.Fatalf("peak %d connections, want at most %d (and many)", p, maxConns)
	}
}

// https: TLS, HTTP/1.1.
func TestFastClientTLS(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		_, _ = w.Write([]byte(`{"action":"allow"}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := NewCaller(StaticTargets{"a": {URL: srv.URL, Secrets: []string{"s"}, Events: []string{EventBeforeSend}}}, nil, nil, Config{})
	c.fast.tls = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	allowed(t, c, "a")
	if p, _ := proto.Load().(string); p != "HTTP/1.1" {
		t.Fatalf("proto %q", p)
	}
	// Without the test CA the handshake fails: a failure, not an allow.
	c2 := NewCaller(StaticTargets{"a": {URL: srv.URL, Secrets: []string{"s"}, Events: []string{EventBeforeSend}}}, nil, nil, Config{})
	if d := c2.BeforeSend(context.Background(), "a", textMessage("alice", "bob", "c1", "hello")); !d.Failed {
		t.Fatalf("untrusted certificate: %+v", d)
	}
}

// Kept connections idle too long are closed (by each HostClient's
// cleaner), those of a URL no longer called too.
func TestFastClientReapsIdle(t *testing.T) {
	var closed atomic.Int64
	old := newReceiverConnState(t, answerJSON(`{"action":"allow"}`), func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	})
	other := newReceiver(t, answerJSON(`{"action":"allow"}`))
	c := NewCaller(StaticTargets{
		"old":   {URL: old.URL, Secrets: []string{testSecret}, Events: []string{EventBeforeSend}},
		"other": {URL: other.URL, Secrets: []string{testSecret}, Events: []string{EventBeforeSend}},
	}, nil, nil, Config{})
	c.fast.idleFor = 50 * time.Millisecond
	allowed(t, c, "old")
	allowed(t, c, "other")
	eventually(t, 2*time.Second, "the idle connection closed", func() bool { return closed.Load() == 1 })
}
