// Package gateway is actorim's edge: the WebSocket endpoint (framing, codecs,
// login, heartbeats, frame limits, send rate limits) and the HTTP API
// (register, login, history, server-side sending, media mounted from package
// media, health and metrics) with
// its limits (connections, timeouts, bodies, password hashing, login rates).
// It talks to actors, never to the stores.
package gateway

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/actors"
	"actorim/auth"
	"actorim/protos/clientpb"
)

// Backend is what the gateway needs from the actors. Its errors reach the
// client as they are: a code (and its HTTP status, clientpb.HTTPStatus) and a
// message. A Backend that also broadcasts (see broadcaster) serves
// POST /v1/admin/broadcast; without it that answers 501.
type Backend interface {
	// Connect starts the connection of a verified login: out writes to its
	// socket, and the Inbound returned takes its frames.
	Connect(s actors.Session, out actors.Outbound) actors.Inbound
	// CreateAccount registers userID with a password hash (empty: none, the
	// user logs in with minted tokens only). With ifMissing an existing
	// account is left as it is, without error.
	CreateAccount(ctx context.Context, userID, passwordHash string, ifMissing bool) *clientpb.Error
	// Account reports whether userID has an account, and its password hash.
	Account(ctx context.Context, userID string) (found bool, passwordHash string, e *clientpb.Error)
	// History pages one of userID's conversations backwards, newest first.
	History(ctx context.Context, userID string, req *clientpb.HistoryRequest) (*clientpb.HistoryResult, *clientpb.Error)
	// Send sends a message as userID from deviceID (the admin API sends
	// from device "server").
	Send(ctx context.Context, userID, deviceID string, s *clientpb.Send) (*clientpb.SendAck, *clientpb.Error)
	// TokensRevokedBefore returns when userID's tokens were last revoked
	// (zero: never); RevokeTokens revokes those issued before a time.
	TokensRevokedBefore(ctx context.Context, userID string) (time.Time, *clientpb.Error)
	RevokeTokens(ctx context.Context, userID string, before time.Time) (revokedBefore time.Time, kicked int, e *clientpb.Error)
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
	// MaxConnections bounds the connections of the public listener,
	// WebSocket and plain HTTP alike (see Listener). Beyond it a new
	// connection gets HTTP 503 with Retry-After, and beyond it plus a small
	// headroom it is closed at once. Default: the open-files limit minus 512.
	MaxConnections int
	// TokenTTL is the lifetime of tokens issued by POST /v1/login. Default 24h.
	TokenTTL time.Duration

	// HTTPReadTimeout bounds reading a whole request, body included;
	// HTTPWriteTimeout bounds writing its answer (long admin calls extend
	// their own); HTTPIdleTimeout closes a kept-alive connection with no
	// request. WebSocket connections leave these behind when they upgrade.
	// Defaults 20s, 30s and 60s.
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration

	// Hashing bounds password hashing (argon2id, 19 MiB each): how many at
	// once, how many wait, how long. Beyond it, register and login answer 503
	// with Retry-After. See auth.HasherConfig for the defaults.
	Hashing auth.HasherConfig
	// LoginRate and LoginBurst bound register and login requests per client
	// address (token bucket; IPv6 addresses by /64). Defaults 10/s and 40;
	// a negative LoginRate lifts the limit. Beyond it: 429 with Retry-After.
	LoginRate  float64
	LoginBurst int
	// LoginFreeFailures is how many failed logins in a row an account may
	// have; each further failure locks its logins for a backoff that starts
	// at 1s and doubles up to LoginBackoffMax (429 with Retry-After). A
	// successful login, or 15 minutes without a failure, clears it.
	// Defaults 5 and 5m.
	LoginFreeFailures int
	LoginBackoffMax   time.Duration
	// TrustedProxies are the networks of the reverse proxies in front of
	// the node. From a peer in them, the client's address is taken from
	// X-Forwarded-For (the last address not in them); from anyone else the
	// header is ignored. Default none.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins of web pages allowed to call the public
	// HTTP API from another origin (cors.go): "https://app.example.com",
	// a wildcard "https://*.example.com", or "*" for any. Default none: only
	// pages of the node's own origin call it.
	CORSOrigins []string
	// WebApp, when set, holds the web app's built files (index.html at its
	// root), served at / of the public listener (webapp.go). Nil: none.
	WebApp fs.FS
}

func (c *Config) setDefaults() {
	orDefault(&c.MaxFrameBytes, 64<<10)
	orDefault(&c.IdleTimeout, 60*time.Second)
	orDefault(&c.PingInterval, 25*time.Second)
	c.PingInterval = min(c.PingInterval, c.IdleTimeout/2)
	orDefault(&c.LoginTimeout, 10*time.Second)
	orDefault(&c.WriteTimeout, 10*time.Second)
	orDefault(&c.SendRate, 100)
	orDefault(&c.SendBurst, 200)
	orDefault(&c.RequestRate, 200)
	orDefault(&c.RequestBurst, 400)
	orDefault(&c.MaxInflightBytes, 256<<10)
	// One frame of the largest size must always fit.
	c.MaxInflightBytes = max(c.MaxInflightBytes, c.MaxFrameBytes+frameOverhead)
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	orDefault(&c.TokenTTL, auth.DefaultTTL)
	orDefault(&c.HTTPReadTimeout, 20*time.Second)
	orDefault(&c.HTTPWriteTimeout, 30*time.Second)
	orDefault(&c.HTTPIdleTimeout, 60*time.Second)
	if c.LoginRate == 0 { // negative lifts the limit
		c.LoginRate = 10
	}
	orDefault(&c.LoginBurst, 40)
	orDefault(&c.LoginFreeFailures, 5)
	orDefault(&c.LoginBackoffMax, 5*time.Minute)
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Server serves the WebSocket endpoint and the HTTP API.
type Server struct {
	cfg      Config
	backend  Backend
	tokens   *auth.Keyring // user tokens (the app-server secret, or each app's)
	admin    *auth.Tokens  // admin tokens (the admin secret)
	hasher   *auth.Hasher
	logins   *loginLimiter
	log      *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	ready    func() bool
	open     atomic.Int64 // sockets currently open
	lconns   atomic.Int64 // connections of the public listener (Listener)
	all      http.Handler // public and admin routes
	public   http.Handler // without the admin routes, /metrics
	adminMux http.Handler // admin routes, /metrics, health

	connsMu  sync.Mutex
	conns    map[*wsConn]struct{}
	draining bool

	analytics atomic.Pointer[analyticsHolder] // see SetAnalytics
	apps      atomic.Pointer[appsHolder]      // see SetApps
	sweepOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}                // closed by Shutdown: ends the app sweep
	media     atomic.Pointer[mediaHolder]  // see SetMedia
	tester    atomic.Pointer[testerHolder] // see SetWebhookTester
}

// New returns a Server. tokens verifies user tokens (of every app) and
// admin verifies admin tokens (signed with a secret of their own). reg and gatherer serve
// /metrics (nil: none); ready reports readiness for /readyz (nil: always
// ready).
func New(cfg Config, backend Backend, tokens *auth.Keyring, admin *auth.Tokens, reg prometheus.Registerer, gatherer prometheus.Gatherer, ready func() bool, logger *slog.Logger) *Server {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func() bool { return true }
	}
	s := &Server{cfg: cfg, backend: backend, tokens: tokens, admin: admin, log: logger, gatherer: gatherer, ready: ready,
		hasher: auth.NewHasher(cfg.Hashing), conns: map[*wsConn]struct{}{}, stop: make(chan struct{})}
	s.logins = newLoginLimiter(cfg)
	s.metrics = newMetrics(reg, &s.open, &s.lconns)
	s.routes()
	return s
}

// Handler returns the HTTP handler of every endpoint, the admin API and
// /metrics included: for a node with one listener.
func (s *Server) Handler() http.Handler { return s.all }

// PublicHandler returns the handler of the public endpoints only (WebSocket,
// register, login, history, health): for a node whose admin API is served on
// a listener of its own (AdminHandler).
func (s *Server) PublicHandler() http.Handler { return s.public }

// AdminHandler returns the handler of the admin API, /metrics and health.
func (s *Server) AdminHandler() http.Handler { return s.adminMux }

// Shutdown refuses new sockets, closes every open one with code (1001 going
// away, or CloseReconnectElsewhere when draining a cluster node) and waits
// until they are gone or ctx ends.
func (s *Server) Shutdown(ctx context.Context, code int, reason string) error {
	s.stopOnce.Do(func() { close(s.stop) })
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
	framesIn     *prometheus.CounterVec
	badFrames    *prometheus.CounterVec
	rateLimited  prometheus.Counter
	refused      prometheus.Counter
	throttled    prometheus.Counter
	stalls       prometheus.Counter
	hashes       *prometheus.CounterVec
	loginRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, open, conns *atomic.Int64) *metrics {
	m := &metrics{
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_frames_in_total", Help: "Client frames received, by codec."}, []string{"codec"}),
		badFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_frames_refused_total", Help: "Client frames refused, by error code."}, []string{"code"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_sends_rate_limited_total", Help: "Send frames refused by the per-connection rate limit."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_sockets_refused_total", Help: "Connections (WebSocket or HTTP) refused at the connection limit."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_frames_rate_limited_total", Help: "Frames refused by the per-connection request rate limit."}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_socket_read_stalls_total", Help: "Times a socket was not read because its unanswered frames reached MaxInflightBytes."}),
		hashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_password_hashes_total", Help: "Password hashes computed (hash: register and provision; check: login)."}, []string{"op"}),
		loginRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_login_refused_total", Help: "Register and login requests refused before hashing, by reason (address_rate, account_backoff, busy)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.framesIn, m.badFrames, m.rateLimited, m.refused, m.throttled, m.stalls, m.hashes, m.loginRefused,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "actorim_sockets_open", Help: "WebSocket connections open on this node, logged in or not."},
				func() float64 { return float64(open.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "actorim_connections_open", Help: "Connections of the public listener (HTTP and WebSocket) open on this node."},
				func() float64 { return float64(conns.Load()) }))
	}
	return m
}
