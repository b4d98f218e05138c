package gateway

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Connections beyond MaxConnections are still accepted up to this many more,
// so that they can be told 503 (with Retry-After) instead of seeing a reset;
// beyond that they are closed at once.
const refuseHeadroom = 64

// overLimitGrace is how long a connection accepted over the limit may take
// to send its request and read the 503.
const overLimitGrace = 5 * time.Second

// maxHeaderBytes bounds a request's header (tokens are a few hundred bytes).
const maxHeaderBytes = 32 << 10

// Listener wraps the public listener ln so that every connection it accepts
// (plain HTTP, or upgraded to a WebSocket) counts against MaxConnections
// until it is closed. Serve it with HTTPServer.
func (s *Server) Listener(ln net.Listener) net.Listener { return &limitListener{Listener: ln, s: s} }

type limitListener struct {
	net.Listener
	s *Server
}

// Accept counts each connection; beyond MaxConnections plus refuseHeadroom
// it closes them at once.
func (l *limitListener) Accept() (net.Conn, error) {
	max := int64(l.s.cfg.MaxConnections)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		n := l.s.lconns.Add(1)
		cc := &countedConn{Conn: c, n: &l.s.lconns}
		if n > max+refuseHeadroom {
			l.s.metrics.refused.Inc()
			_ = cc.Close()
			continue
		}
		if n > max {
			cc.over = true
			_ = c.SetDeadline(time.Now().Add(overLimitGrace))
		}
		return cc, nil
	}
}

// countedConn gives its slot back when closed, whoever closes it (net/http,
// or the WebSocket that took it over).
type countedConn struct {
	net.Conn
	n      *atomic.Int64
	over   bool // accepted beyond MaxConnections: its requests get 503
	closed atomic.Bool
}

// Close gives the connection's slot back, once.
func (c *countedConn) Close() error {
	if !c.closed.Swap(true) {
		c.n.Add(-1)
	}
	return c.Conn.Close()
}

type connKey struct{}

// connContext remembers a request's connection, for limitConns.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*countedConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// limitConns answers 503 on a connection accepted beyond MaxConnections and
// closes it; /healthz still answers (the process is alive, merely full).
func (s *Server) limitConns(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := r.Context().Value(connKey{}).(*countedConn); c != nil && c.over && r.URL.Path != "/healthz" {
			w.Header().Set("Connection", "close")
			s.refuseConn(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// connLimitRetry is the Retry-After of a connection refused at the limit.
const connLimitRetry = 5 * time.Second

// refuseConn answers a request over the connection limit: 503, Retry-After.
func (s *Server) refuseConn(w http.ResponseWriter) {
	s.metrics.refused.Inc()
	writeRetryable(w, errConnLimit, connLimitRetry)
}

// HTTPServer returns a server of h with the configured timeouts and limits.
// Connections accepted by Listener count against MaxConnections. A
// WebSocket leaves the server's timeouts behind when it upgrades: its own
// read and write deadlines (idle timeout, write timeout) govern it.
func (s *Server) HTTPServer(h http.Handler, errorLog *log.Logger) *http.Server {
	c := s.cfg
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, c.HTTPReadTimeout),
		ReadTimeout:       c.HTTPReadTimeout,
		WriteTimeout:      c.HTTPWriteTimeout,
		IdleTimeout:       c.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       connContext,
		ErrorLog:          errorLog,
	}
}

// extendWrite lets a long admin call (broadcast, analytics) answer after
// the server's write timeout.
func extendWrite(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
