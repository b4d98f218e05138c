// Package gateway is actorim's edge: the WebSocket endpoint (framing, codecs,
// login, heartbeats, frame limits, send rate limits) and the HTTP API
// (register, login, history, server-side sending, health and metrics). It
// talks to actors, never to the stores.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/actors"
	"actorim/auth"
	"actorim/protos/clientpb"
)

// Backend is what the gateway needs from the actors.
type Backend interface {
	Connect(s actors.Session, out actors.Outbound) *actors.Conn
	CreateAccount(ctx context.Context, userID, passwordHash string, ifMissing bool) *clientpb.Error
	Account(ctx context.Context, userID string) (found bool, passwordHash string, e *clientpb.Error)
	History(userID string, req *clientpb.HistoryRequest) (*clientpb.HistoryResult, *clientpb.Error)
	Send(ctx context.Context, userID, deviceID string, s *clientpb.Send) (*clientpb.SendAck, *clientpb.Error)
}

// Config tunes the gateway. Zero values are the defaults.
type Config struct {
	// MaxFrameBytes is the largest frame accepted. A larger frame is answered
	// with ERR_FRAME_TOO_LARGE; one over four times this closes the socket
	// with 1009. Default 64 KiB.
	MaxFrameBytes int
	// IdleTimeout closes a connection that sent nothing (not even a pong to
	// the server's pings) for this long. Default 60s.
	IdleTimeout time.Duration
	// PingInterval is how often the server pings each socket. Default 25s.
	PingInterval time.Duration
	// LoginTimeout is how long a new socket may wait before sending Login.
	// Default 10s.
	LoginTimeout time.Duration
	// WriteTimeout bounds one socket write; a client that cannot take a frame
	// in time is disconnected as a slow consumer. Default 10s.
	WriteTimeout time.Duration
	// SendRate and SendBurst bound each connection's Send frames (token
	// bucket, frames per second). Defaults 100/s and 200.
	SendRate  float64
	SendBurst int
	// RequestRate and RequestBurst bound all of a connection's frames
	// together, Send included (token bucket, frames per second). A frame
	// over the rate is answered ERR_RATE_LIMITED; a client that sends
	// RequestBurst more frames while refused is closed with 4007.
	// Defaults 200/s and 400.
	RequestRate  float64
	RequestBurst int
	// MaxInflightBytes bounds what a connection's frames that are read but
	// not yet answered may hold: each counts its size plus 1 KiB. Beyond it
	// the socket is not read (backpressure) until answers free room, so a
	// client cannot make the node buffer more than this for it, whatever it
	// sends. Default 256 KiB.
	MaxInflightBytes int
	// MaxConnections refuses new sockets with HTTP 503 beyond this many.
	// Default: the open-files limit minus 512.
	MaxConnections int
	// TokenTTL is the lifetime of tokens issued by POST /v1/login. Default 24h.
	TokenTTL time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	c.PingInterval = min(c.PingInterval, c.IdleTimeout/2)
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SendRate <= 0 {
		c.SendRate = 100
	}
	if c.SendBurst <= 0 {
		c.SendBurst = 200
	}
	if c.RequestRate <= 0 {
		c.RequestRate = 200
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = 400
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = 256 << 10
	}
	// One frame of the largest size must always fit.
	c.MaxInflightBytes = max(c.MaxInflightBytes, c.MaxFrameBytes+frameOverhead)
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 24 * time.Hour
	}
}

// Server serves the WebSocket endpoint and the HTTP API.
type Server struct {
	cfg      Config
	backend  Backend
	tokens   *auth.Tokens
	log      *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	ready    func() bool
	open     atomic.Int64 // sockets currently open
	mux      *http.ServeMux

	connsMu  sync.Mutex
	conns    map[*wsConn]struct{}
	draining bool

	analytics atomic.Pointer[analyticsHolder] // see SetAnalytics
}

// New returns a Server. reg and gatherer serve /metrics (nil: none); ready
// reports readiness for /readyz (nil: always ready).
func New(cfg Config, backend Backend, tokens *auth.Tokens, reg prometheus.Registerer, gatherer prometheus.Gatherer, ready func() bool, logger *slog.Logger) *Server {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func() bool { return true }
	}
	s := &Server{cfg: cfg, backend: backend, tokens: tokens, log: logger, gatherer: gatherer, ready: ready,
		conns: map[*wsConn]struct{}{}}
	s.metrics = newMetrics(reg, &s.open)
	s.routes()
	return s
}

// Handler returns the HTTP handler for every endpoint.
func (s *Server) Handler() http.Handler { return s.mux }

// Shutdown refuses new sockets, closes every open one with code (1001 going
// away, or CloseReconnectElsewhere when draining a cluster node) and waits
// until they are gone or ctx ends.
func (s *Server) Shutdown(ctx context.Context, code int, reason string) error {
	s.connsMu.Lock()
	s.draining = true
	open := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.connsMu.Unlock()
	for _, c := range open {
		c.Close(code, reason)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// RefuseNew makes the server refuse new sockets (HTTP 503) while the open
// ones keep working, the first step of draining a node.
func (s *Server) RefuseNew() {
	s.connsMu.Lock()
	s.draining = true
	s.connsMu.Unlock()
}

// track registers an open socket; false when the server is shutting down.
func (s *Server) track(c *wsConn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.draining {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
}

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

type metrics struct {
	framesIn    *prometheus.CounterVec
	badFrames   *prometheus.CounterVec
	rateLimited prometheus.Counter
	refused     prometheus.Counter
	throttled   prometheus.Counter
	stalls      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, open *atomic.Int64) *metrics {
	m := &metrics{
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_frames_in_total", Help: "Client frames received, by codec."}, []string{"codec"}),
		badFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_frames_refused_total", Help: "Client frames refused, by error code."}, []string{"code"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_sends_rate_limited_total", Help: "Send frames refused by the per-connection rate limit."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_sockets_refused_total", Help: "WebSocket upgrades refused at the connection limit."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_frames_rate_limited_total", Help: "Frames refused by the per-connection request rate limit."}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_socket_read_stalls_total", Help: "Times a socket was not read because its unanswered frames reached MaxInflightBytes."}),
	}
	if reg != nil {
		reg.MustRegister(m.framesIn, m.badFrames, m.rateLimited, m.refused, m.throttled, m.stalls,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "actorim_sockets_open", Help: "WebSocket connections open on this node, logged in or not."},
				func() float64 { return float64(open.Load()) }))
	}
	return m
}
