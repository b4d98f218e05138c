package hooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// fastClient makes the before-send calls with fasthttp's client: pooled
// HTTP/1.1 keep-alive connections, the request written and its answer read
// on the calling goroutine (net/http's Transport hands each call to a
// writer and a reader goroutine per connection and back: four goroutine
// switches, a Request, a Response and two header maps per call). A
// before-send call is made for every message, by every sending connection
// at once, so that overhead was most of what the webhook cost the node
// (imbench pairs --webhook-before-send).
//
// Each URL has a fasthttp.HostClient of its own, with at most
// Config.BeforeSendConns connections (callers beyond wait for one, within
// their timeout), idle ones closed after fastIdleTimeout by the
// HostClient's cleaner. It follows no redirect and negotiates no
// compression, like NewClient's transport; unlike it, it speaks HTTP/1.1
// only (https too, without HTTP/2). A URL that goes through a proxy
// (HTTP_PROXY and the like) is called with the fallback client.
type fastClient struct {
	maxConns int           // per URL
	maxBody  int64         // of an answer
	idleFor  time.Duration // fastIdleTimeout; tests shorten it
	fallback *http.Client
	tls      *tls.Config // for https (nil: the system's roots); tests set it
	hosts    sync.Map    // URL string → *fastHost
}

// fastIdleTimeout is how long a kept connection may stay unused before the
// HostClient's cleaner closes it (net/http's IdleConnTimeout in NewClient).
const fastIdleTimeout = 90 * time.Second

// fastHost is what one URL is called with.
type fastHost struct {
	hc      *fasthttp.HostClient
	proxied bool // use the fallback client
}

func newFastClient(maxConns int, maxBody int64, fallback *http.Client) *fastClient {
	return &fastClient{maxConns: maxConns, maxBody: maxBody, idleFor: fastIdleTimeout, fallback: fallback}
}

func (c *fastClient) hostOf(rawURL string) (*fastHost, error) {
	if h, ok := c.hosts.Load(rawURL); ok {
		return h.(*fastHost), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host in URL")
	}
	h := &fastHost{}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		h.proxied = true
	}
	isTLS := u.Scheme == "https"
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "80", true: "443"}[isTLS]
	}
	h.hc = &fasthttp.HostClient{
		Addr:        net.JoinHostPort(u.Hostname(), port),
		IsTLS:       isTLS,
		Name:        "actorim", // User-Agent
		DialTimeout: c.dialer(u.Hostname(), isTLS),
		MaxConns:    c.maxConns,
		// Callers beyond MaxConns wait for a connection; the call's
		// deadline bounds the wait (the shorter of the two applies).
		MaxConnWaitTimeout:  time.Hour,
		MaxIdleConnDuration: c.idleFor,
		MaxResponseBodySize: int(min(c.maxBody, math.MaxInt)),
		// The answer's headers must fit; 8 KiB where a line could be 4 KiB
		// before (the buffers are pooled across connections).
		ReadBufferSize: 8 << 10,
		// The path is sent as the app wrote it.
		DisablePathNormalizing: true,
		// A call that fails on a connection kept from an earlier call,
		// before any byte of its answer, is sent again (see keptConn); a
		// POST is otherwise never retried. Each such failure closes a dead
		// connection, so at most MaxConns of them, then a new one.
		Transport:                 retryKept{},
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, true },
		MaxIdemponentCallAttempts: c.maxConns + 1,
	}
	actual, _ := c.hosts.LoadOrStore(rawURL, h)
	return actual.(*fastHost), nil
}

// dialer opens the connections of one host: TCP, then TLS for https (with
// the system's roots, HTTP/1.1 offered by ALPN), done here rather than by
// fasthttp so that keptConn sits above TLS and sees the answer's bytes,
// not records such as the receiver's close_notify.
func (c *fastClient) dialer(host string, isTLS bool) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		if timeout <= 0 || timeout > 5*time.Second {
			timeout = 5 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		d := net.Dialer{KeepAlive: 30 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if isTLS {
			cfg := &tls.Config{}
			if c.tls != nil {
				cfg = c.tls.Clone()
			}
			cfg.ServerName, cfg.NextProtos = host, []string{"http/1.1"}
			tc := tls.Client(nc, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = nc.Close()
				return nil, err
			}
			nc = tc
		}
		kc := &keptConn{Conn: nc}
		kc.addr = &keptAddr{Addr: nc.LocalAddr(), c: kc}
		return kc, nil
	}
}

// keptConn is a connection of the pools. It tells whether a call failed on
// a connection kept from an earlier call before any byte of its answer
// came: the receiver closed it while it was idle, and the call is sent
// again on another one, as net/http does (receivers deduplicate on the
// id). fasthttp's client reads no idle connection, so it cannot tell, and
// its error (io.EOF) is the same as for a new connection closed unanswered,
// which is not sent again.
type keptConn struct {
	net.Conn
	addr     *keptAddr
	answered bool // some answer came on it
	waiting  bool // a request was written, no byte of its answer read yet
}

// keptAddr is a keptConn's local address; it finds the connection from
// the fasthttp.Response that recorded it.
type keptAddr struct {
	net.Addr
	c *keptConn
}

func (k *keptConn) LocalAddr() net.Addr { return k.addr }

// Handshake tells fasthttp that the connection is ready (the dialer did
// the TLS handshake of an https one).
func (k *keptConn) Handshake() error { return nil }

func (k *keptConn) Write(p []byte) (int, error) {
	k.waiting = true
	return k.Conn.Write(p)
}

func (k *keptConn) Read(p []byte) (int, error) {
	n, err := k.Conn.Read(p)
	if n > 0 {
		k.answered, k.waiting = true, false
	}
	return n, err
}

// stale: the call failed on a kept connection before any of its answer.
func (k *keptConn) stale() bool { return k.answered && k.waiting }

// retryKept is fasthttp's transport that marks for a retry exactly the
// calls that failed on a stale kept connection.
type retryKept struct{}

func (retryKept) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	_, err := fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
	if err == nil {
		return false, nil
	}
	// After a failure the connection is closed and no longer shared.
	a, _ := resp.LocalAddr().(*keptAddr)
	return a != nil && a.c.stale() && !errors.Is(err, fasthttp.ErrTimeout), err
}

// post is hooks.post for the before-send call: the same request (method,
// headers, body), answered the same way, except that an answer longer
// than the client's maxBody is an error (fasthttp.ErrBodyTooLarge) rather
// than cut.
func (c *fastClient) post(ctx context.Context, t Target, def time.Duration, id, event string, body []byte, maxBody int64) (int, []byte, error) {
	h, err := c.hostOf(t.URL)
	if err != nil {
		return 0, nil, err
	}
	if h.proxied {
		return post(ctx, c.fallback, t, def, id, event, body, maxBody)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = def
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(t.URL)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set(HeaderSignature, Sign(body, t.Secrets, time.Now()))
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderEvent, event)
	req.SetBodyRaw(body)
	if err := h.hc.DoDeadline(req, resp, deadline); err != nil {
		return 0, nil, err
	}
	var out []byte
	if maxBody > 0 {
		out = append([]byte(nil), resp.Body()...)
	}
	return resp.StatusCode(), out, nil
}
