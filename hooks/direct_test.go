package hooks

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func allowed(t *testing.T, c *Caller, app string) {
	t.Helper()
	if d := c.BeforeSend(context.Background(), app, textMessage("alice", "bob", "c1", "hello")); d.Action != Allow || d.Failed {
		t.Fatalf("%s: %+v", app, d)
	}
}

// The before-send client's own connections read every shape of answer
// net/http's would, and keep or close the connection as the answer says.
func TestDirectClientAnswers(t *testing.T) {
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
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int64
			rc := newReceiverConnState(t, answer, func(_ net.Conn, s http.ConnState) {
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
				default:
					if d.Action != Refuse || d.Failed || d.Reason != map[string]string{"chunked": "chunks", "close": "closing"}[name] {
						t.Fatalf("%+v", d)
					}
				}
			}
			for _, r := range rc.requests() {
				if r.sigErr != nil || r.event != EventBeforeSend || r.id != "bs-a-alice-c1" {
					t.Fatalf("request %+v", r)
				}
			}
			if want := map[bool]int64{true: 3, false: 1}[name == "close"]; conns.Load() != want {
				t.Fatalf("%d connections, want %d", conns.Load(), want)
			}
		})
	}
}

// A kept connection the receiver closed meanwhile is replaced: the call
// is made again on a new one, not failed.
func TestDirectClientStaleConnection(t *testing.T) {
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

// At most Config.BeforeSendConns connections to a receiver: the calls beyond
// wait for one and all are answered.
func TestDirectClientConnectionCap(t *testing.T) {
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
func TestDirectClientTLS(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		_, _ = w.Write([]byte(`{"action":"allow"}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := NewCaller(StaticTargets{"a": {URL: srv.URL, Secrets: []string{"s"}, Events: []string{EventBeforeSend}}}, nil, nil, Config{})
	c.direct.tls = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c.direct.tls.NextProtos = nil
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

// Kept connections idle too long are closed by the sweep of a later call,
// to any URL: those of a URL no longer called too.
func TestDirectClientReapsIdle(t *testing.T) {
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
	c.direct.idleFor = 10 * time.Millisecond
	allowed(t, c, "old")
	time.Sleep(30 * time.Millisecond)
	c.direct.lastReap.Store(0) // due
	allowed(t, c, "other")
	eventually(t, 2*time.Second, "the idle connection closed", func() bool { return closed.Load() == 1 })
}
