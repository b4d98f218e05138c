package hooks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// directClient makes before-send calls over HTTP/1.1 keep-alive
// connections it pools itself, on the calling goroutine: it writes the
// request and reads the answer there, where net/http's Transport hands
// each call to a writer and a reader goroutine per connection and back
// (four goroutine switches, a Request, a Response and two header maps per
// call). A before-send call is made for every message, by every sending
// connection at once, so that overhead was most of what the webhook cost
// the node (imbench pairs --webhook-before-send). It keeps at most
// Config.BeforeSendConns connections per receiver (callers beyond wait for
// one, within their timeout), follows no redirect and negotiates no
// compression, like NewClient's transport; unlike it, it speaks HTTP/1.1
// only (https too, without HTTP/2). A URL that goes through a proxy
// (HTTP_PROXY and the like) is called with the fallback client.
type directClient struct {
	maxConns int           // per receiver
	idleFor  time.Duration // directIdleTimeout
	lastReap atomic.Int64  // unix ns of the last sweep
	fallback *http.Client
	hosts    sync.Map // URL string → *directHost
	dialer   net.Dialer
	tls      *tls.Config // for https (nil: the system's roots)
}

// directIdleTimeout is how long a kept connection may stay unused; the
// pools are swept every directReapEvery, during calls (no goroutine of
// their own): an idle connection past it, to any URL, is then closed.
const (
	directIdleTimeout = 90 * time.Second
	directReapEvery   = 30 * time.Second
)

// directHost is the pool of one URL's connections.
type directHost struct {
	u       *url.URL
	target  string // the request target: path and query
	addr    string // host:port to dial
	host    string // the Host header
	tls     bool
	proxied bool // use the fallback client

	idleFor time.Duration
	slots   chan struct{}    // one per open connection, up to maxConns
	idle    chan *directConn // kept connections; never full: one slot each
}

type directConn struct {
	net.Conn
	br       *bufio.Reader
	lastUsed time.Time
	reused   bool
}

func newDirectClient(maxConns int, fallback *http.Client) *directClient {
	return &directClient{maxConns: maxConns, idleFor: directIdleTimeout, fallback: fallback, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
}

func (c *directClient) hostOf(rawURL string) (*directHost, error) {
	if h, ok := c.hosts.Load(rawURL); ok {
		return h.(*directHost), nil
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
	h := &directHost{u: u, target: u.RequestURI(), host: u.Host, tls: u.Scheme == "https", idleFor: c.idleFor, slots: make(chan struct{}, c.maxConns), idle: make(chan *directConn, c.maxConns)}
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "80", true: "443"}[h.tls]
	}
	h.addr = net.JoinHostPort(u.Hostname(), port)
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		h.proxied = true
	}
	actual, _ := c.hosts.LoadOrStore(rawURL, h)
	return actual.(*directHost), nil
}

// post is hooks.post for the before-send call: the same request (method,
// headers, body), answered the same way.
func (c *directClient) post(ctx context.Context, t Target, def time.Duration, id, event string, body []byte, maxBody int64) (int, []byte, error) {
	h, err := c.hostOf(t.URL)
	if err != nil {
		return 0, nil, err
	}
	if h.proxied {
		return post(ctx, c.fallback, t, def, id, event, body, maxBody)
	}
	c.maybeReap()
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = def
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	// One request, written once; a retry (below) writes the same bytes.
	req := make([]byte, 0, 320+len(body))
	req = append(req, "POST "...)
	req = append(req, h.target...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, h.host...)
	req = append(req, "\r\nUser-Agent: actorim\r\nContent-Type: application/json\r\n"+HeaderSignature+": "...)
	req = append(req, Sign(body, t.Secrets, time.Now())...)
	req = append(req, "\r\n"+HeaderID+": "...)
	req = append(req, id...)
	req = append(req, "\r\n"+HeaderEvent+": "...)
	req = append(req, event...)
	req = append(req, "\r\nContent-Length: "...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)

	for {
		conn, err := h.get(ctx, c, deadline)
		if err != nil {
			return 0, nil, err
		}
		status, out, keep, readAny, err := roundTrip(ctx, conn, deadline, req, maxBody)
		if err == nil {
			if keep {
				h.put(conn)
			} else {
				h.drop(conn)
			}
			return status, out, nil
		}
		h.drop(conn)
		// A kept connection the receiver closed while it was idle fails
		// before any byte of an answer: the request is sent again on
		// another one, as net/http does (receivers deduplicate on the
		// id). Each such failure closes a dead connection, so this ends.
		if !conn.reused || readAny || ctx.Err() != nil || !time.Now().Before(deadline) {
			return 0, nil, err
		}
	}
}

// get returns a kept connection or a new one; while maxConns are
// open it waits for one to be put back or closed, until deadline.
func (h *directHost) get(ctx context.Context, c *directClient, deadline time.Time) (*directConn, error) {
	for {
		select { // a kept connection first
		case conn := <-h.idle:
			if conn = h.fresh(conn); conn != nil {
				return conn, nil
			}
			continue
		default:
		}
		select {
		case h.slots <- struct{}{}:
			return h.dial(ctx, c, deadline)
		default:
		}
		wait := time.NewTimer(time.Until(deadline))
		select {
		case conn := <-h.idle:
			wait.Stop()
			if conn = h.fresh(conn); conn != nil {
				return conn, nil
			}
		case h.slots <- struct{}{}:
			wait.Stop()
			return h.dial(ctx, c, deadline)
		case <-wait.C:
			return nil, errors.New("timeout waiting for a connection")
		case <-ctx.Done():
			wait.Stop()
			return nil, fmt.Errorf("waiting for a connection: %w", ctx.Err())
		}
	}
}

// fresh returns a kept connection, or nil after closing it when it was
// idle too long (the receiver may have closed it).
func (h *directHost) fresh(conn *directConn) *directConn {
	if time.Since(conn.lastUsed) >= h.idleFor {
		h.drop(conn)
		return nil
	}
	conn.reused = true
	return conn
}

// dial opens a connection in a slot already taken; it frees the slot when
// it fails.
func (h *directHost) dial(ctx context.Context, c *directClient, deadline time.Time) (*directConn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := c.dialer.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		<-h.slots
		return nil, err
	}
	if h.tls {
		cfg := &tls.Config{}
		if c.tls != nil {
			cfg = c.tls.Clone()
		}
		cfg.ServerName, cfg.NextProtos = h.u.Hostname(), []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			<-h.slots
			return nil, err
		}
		nc = tc
	}
	return &directConn{Conn: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

// maybeReap closes the kept connections idle too long, of every URL (one
// no longer called included), at most once per directReapEvery.
func (c *directClient) maybeReap() {
	now := time.Now().UnixNano()
	last := c.lastReap.Load()
	if now-last < int64(directReapEvery) || !c.lastReap.CompareAndSwap(last, now) {
		return
	}
	c.hosts.Range(func(_, v any) bool {
		v.(*directHost).reap()
		return true
	})
}

// reap closes the host's kept connections idle too long and keeps the
// others.
func (h *directHost) reap() {
	for range len(h.idle) {
		select {
		case conn := <-h.idle:
			if time.Since(conn.lastUsed) >= h.idleFor {
				h.drop(conn)
			} else {
				h.idle <- conn
			}
		default:
			return
		}
	}
}

// put keeps a connection whose answer was read whole.
func (h *directHost) put(conn *directConn) {
	conn.lastUsed = time.Now()
	h.idle <- conn // never blocks: each kept connection holds a slot
}

// drop closes a connection and frees its slot.
func (h *directHost) drop(conn *directConn) {
	_ = conn.Close()
	<-h.slots
}

// roundTrip writes req and reads the answer: its status and up to maxBody
// bytes of its body; the rest is drained (up to 64 KiB) so that the
// connection can be kept, which keep says. readAny: some of an answer was
// read (a failed request is then not sent again).
func roundTrip(ctx context.Context, conn *directConn, deadline time.Time, req []byte, maxBody int64) (status int, out []byte, keep, readAny bool, err error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, nil, false, false, err
	}
	if ctx.Done() != nil {
		// The deadline covers the timeout; this covers a cancellation of
		// the caller's context (the actors' have none).
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if _, err := conn.Write(req); err != nil {
		return 0, nil, false, false, err
	}
	for {
		if _, err := conn.br.Peek(1); err != nil {
			return 0, nil, false, false, err
		}
		status, length, chunked, keep, err := readHead(conn.br)
		if err != nil {
			return status, nil, false, true, err
		}
		if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
			continue // 100 Continue and the like: the answer follows
		}
		var r io.Reader
		switch {
		case status == http.StatusNoContent || status == http.StatusNotModified:
			r = http.NoBody
		case chunked:
			r = httputil.NewChunkedReader(conn.br)
		case length >= 0:
			r = io.LimitReader(conn.br, length)
		default: // until the receiver closes
			r, keep = conn.br, false
		}
		if maxBody > 0 {
			out, err = readUpTo(r, maxBody)
			if err != nil {
				return status, nil, false, true, err
			}
		}
		n, err := io.Copy(io.Discard, io.LimitReader(r, 64<<10))
		if err != nil {
			return status, nil, false, true, err
		}
		if n == 64<<10 {
			keep = false // more left than is worth reading
		} else if chunked {
			// The chunked reader stops at the last chunk: the trailer
			// (usually just the final CRLF) is the connection's still.
			if err := skipTrailer(conn.br); err != nil {
				return status, nil, false, true, err
			}
		}
		return status, out, keep, true, nil
	}
}

// skipTrailer reads the trailer of a chunked body, up to its empty line.
func skipTrailer(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("trailer: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// readUpTo reads up to limit bytes of r into a buffer sized for the usual
// short answer.
func readUpTo(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 64))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

var errMalformed = errors.New("malformed HTTP answer")

// readHead reads a status line and headers: the status, the body's length
// (-1: none given), whether it is chunked and whether the connection may
// be kept.
func readHead(br *bufio.Reader) (status int, length int64, chunked, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, false, fmt.Errorf("status line: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	proto, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(rest) < 3 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return 0, 0, false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(rest[:3]))
	if err != nil || status < 100 || status > 999 {
		return 0, 0, false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = string(proto) == "HTTP/1.1"
	length = -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return status, 0, false, false, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return status, 0, false, false, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return status, 0, false, false, fmt.Errorf("%w: content length %q", errMalformed, v)
			}
			length = n
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(v, []byte("chunked")) {
				return status, 0, false, false, fmt.Errorf("%w: transfer encoding %q", errMalformed, v)
			}
			chunked = true
		case bytes.EqualFold(k, []byte("Connection")):
			for tok := range bytes.SplitSeq(v, []byte{','}) {
				tok = bytes.TrimSpace(tok)
				if bytes.EqualFold(tok, []byte("close")) {
					keep = false
				} else if bytes.EqualFold(tok, []byte("keep-alive")) && string(proto) == "HTTP/1.0" {
					keep = true
				}
			}
		}
	}
	if chunked {
		length = -1
	}
	return status, length, chunked, keep, nil
}
