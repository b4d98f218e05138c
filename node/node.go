// Package node assembles a running actorim node from its configuration: the
// store, the cluster member with its grains, and the gateway's listener.
package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"actorim/actors"
	"actorim/apps"
	"actorim/auth"
	"actorim/cluster"
	"actorim/gateway"
	"actorim/media"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Config is a node's whole configuration. Zero values are the defaults.
type Config struct {
	// Listen is the address of the WebSocket and HTTP listener.
	// Default "127.0.0.1:8080".
	Listen string
	// DataDir holds the embedded store (and the generated auth secret).
	// Default "./data".
	DataDir string
	// TLSCert and TLSKey, both set, serve wss:// and https://.
	TLSCert, TLSKey string
	// AuthSecret signs user tokens; application servers mint tokens with it.
	// AuthSecretFile names a file holding it instead (preferred: a secret on
	// a command line shows in ps). When both are empty, a standalone node
	// generates one and keeps it in DataDir/auth.secret (mode 0600); a
	// cluster node refuses to start.
	AuthSecret, AuthSecretFile string
	// AdminSecret signs admin tokens, the only tokens the admin API accepts;
	// it must differ from AuthSecret, so that the app-server secret grants
	// no admin access. AdminSecretFile names a file holding it. Generated
	// into DataDir/admin.secret like the auth secret.
	AdminSecret, AdminSecretFile string
	// AdminListen, when set, serves the admin API, /metrics and pprof on
	// this address, and Listen no longer serves them. Default: Listen
	// serves everything.
	AdminListen string
	// TokenMaxLifetime refuses tokens (user and admin) whose expiry is
	// further away than this. Default 30 days (auth.DefaultMaxLifetime).
	TokenMaxLifetime time.Duration
	// TokenIssuer and TokenAudience, when set, must be the "iss" and among
	// the "aud" of user tokens; tokens the node issues carry them.
	TokenIssuer, TokenAudience string
	// Pprof serves Go's profiler at /debug/pprof/ (on AdminListen when set).
	// Off by default: profiles reveal internals and cost CPU while they run.
	Pprof bool

	// WebApp is what the public listener serves at /: WebAppEmbedded (the
	// chat web app built into the binary, package web), WebAppOff, or the
	// path of a directory holding a built app, index.html at its root (for
	// working on the app). Default WebAppEmbedded.
	WebApp string

	// DrainSettle is how long a draining node waits, after leaving the
	// cluster's membership, for the other members to notice before it
	// closes its sockets. Default 500ms.
	DrainSettle time.Duration

	// RetentionInterval is the time between the passes that delete the
	// messages past their app's retention (apps.Settings.RetentionMs).
	// Default 10m.
	RetentionInterval time.Duration

	Store   StoreConfig
	Archive ArchiveConfig
	Media   MediaConfig
	Cluster cluster.Config
	Actors  actors.Config
	Gateway gateway.Config
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.DrainSettle <= 0 {
		c.DrainSettle = 500 * time.Millisecond
	}
	if c.TokenMaxLifetime <= 0 {
		c.TokenMaxLifetime = auth.DefaultMaxLifetime
	}
	if c.WebApp == "" {
		c.WebApp = WebAppEmbedded
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = 10 * time.Minute
	}
}

// Node is a running actorim node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    persistence.Store
	member   *cluster.Member
	actors   *actors.Service
	gateway  *gateway.Server
	http     *http.Server
	listener net.Listener
	admin    *http.Server // nil without AdminListen
	adminLn  net.Listener
	served   chan error
	ready    atomic.Bool
	archive  *archive       // nil when archiving is off
	media    *media.Service // nil when media is off
	webhooks webhooks
	retain   *retention
}

// Start opens the store, joins the cluster and starts serving. It returns
// once the listener is bound and the node is ready.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Node, err error) {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: logger, served: make(chan error, 1)}
	// Undo what was started if a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if err := prepareClusterTLS(&cfg, logger); err != nil {
		return nil, err
	}
	tokens, admin, userSecret, err := loadTokens(cfg, logger)
	if err != nil {
		return nil, err
	}

	st, err := openStore(ctx, cfg, logger.With("component", "store"))
	if err != nil {
		return nil, err
	}
	n.store = st
	undo = append(undo, func() { _ = st.Close() })

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hist, arch, err := openArchive(ctx, cfg.Archive, st, reg, logger.With("component", "archive"))
	if err != nil {
		return nil, err
	}
	if arch != nil {
		n.archive = arch
		undo = append(undo, func() { _ = arch.shutdown(context.Background()) })
		cfg.Actors.Deliveries = arch
	}
	stores := actors.Stores{Accounts: hist, Timelines: hist, Sessions: hist, Records: hist, Sets: hist, Directory: hist, Eraser: hist}
	if cfg.mediaOn() {
		stores.Media = hist
	}
	if arch != nil {
		stores.Archive = arch.db
	}
	// The apps' records sit in the store as it is, beside every app's keys
	// (never through the archive's decorator: they are no messages).
	registry := apps.New(apps.Config{}, st)
	svc := actors.NewServiceApps(cfg.Actors, stores, registry, actors.NewMetrics(reg), logger.With("component", "actors"))
	n.webhooks = openWebhooks(st, registry, reg, logger.With("component", "webhooks"))
	undo = append(undo, func() { _ = n.webhooks.shutdown(context.Background()) })
	svc.SetWebhooks(n.webhooks)
	if rs, ok := st.(retentionStore); ok {
		n.retain = newRetention(rs, registry, cfg.RetentionInterval, reg, logger.With("component", "retention"))
		n.retain.start()
		undo = append(undo, func() { _ = n.retain.shutdown(context.Background()) })
	}
	n.actors = svc
	undo = append(undo, func() { _ = svc.Shutdown(context.Background()) })

	ccfg := cfg.Cluster
	ccfg.Kinds = append(ccfg.Kinds, svc.Kinds()...)
	member, err := cluster.New(ccfg, logger.With("component", "cluster"))
	if err != nil {
		return nil, err
	}
	svc.Bind(member) // before Start: grains may be activated while joining
	if err := member.Start(ctx); err != nil {
		return nil, err
	}
	n.member = member
	undo = append(undo, func() { _ = member.Shutdown(context.Background()) })

	if cfg.Gateway.WebApp, err = webApp(cfg.WebApp); err != nil {
		return nil, err
	}
	keyring := auth.NewKeyring(tokens, registry, auth.WithMaxLifetime(cfg.TokenMaxLifetime),
		auth.WithIssuer(cfg.TokenIssuer), auth.WithAudience(cfg.TokenAudience))
	n.gateway = gateway.New(cfg.Gateway, svc, keyring, admin, reg, reg, n.ready.Load, logger.With("component", "gateway"))
	n.gateway.SetApps(registry)
	n.gateway.SetWebhookTester(n.webhooks)
	med, err := openMedia(ctx, cfg, userSecret, hist, svc, reg, logger.With("component", "media"))
	if err != nil {
		return nil, err
	}
	if med != nil {
		n.media = med
		undo = append(undo, func() { _ = med.Shutdown(context.Background()) })
		n.gateway.SetMedia(mediaHandler{med.Handler()})
	}
	if arch != nil {
		n.gateway.SetAnalytics(arch)
		arch.start()
	}

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("node: tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
	public, adminH := n.gateway.Handler(), http.Handler(nil)
	if cfg.AdminListen != "" {
		public, adminH = n.gateway.PublicHandler(), withPprof(n.gateway.AdminHandler(), cfg.Pprof)
	} else {
		public = withPprof(public, cfg.Pprof)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	n.listener = n.gateway.Listener(ln)
	n.http = n.gateway.HTTPServer(public, errLog)
	scheme := "ws"
	if tlsCfg != nil {
		n.http.TLSConfig = tlsCfg
		n.listener = tls.NewListener(n.listener, tlsCfg)
		scheme = "wss"
	}
	if adminH != nil {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("node: admin listen: %w", err)
		}
		n.adminLn = netutil.LimitListener(aln, maxAdminConnections)
		n.admin = n.gateway.HTTPServer(adminH, errLog)
		if tlsCfg != nil {
			n.admin.TLSConfig = tlsCfg
			n.adminLn = tls.NewListener(n.adminLn, tlsCfg)
		}
		go func() {
			if err := n.admin.Serve(n.adminLn); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("admin listener failed", "err", err)
			}
		}()
	}
	go func() { n.served <- n.http.Serve(n.listener) }()
	n.ready.Store(true)
	if n.adminLn != nil {
		logger.Info("admin API, /metrics and pprof on their own listener", "admin_listen", n.adminLn.Addr().String())
	}
	logger.Info("actorim node ready", "listen", ln.Addr().String(), "ws", scheme+"://"+ln.Addr().String()+"/ws",
		"data", cfg.DataDir, "cluster", member.Address(), "device_policy", svc.Config().DevicePolicy)
	return n, nil
}

// maxAdminConnections bounds the admin listener's connections.
const maxAdminConnections = 128

// withPprof adds Go's profiler at /debug/pprof/ to h when on.
func withPprof(h http.Handler, on bool) http.Handler {
	if !on {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}

// Addr is the bound listener address.
func (n *Node) Addr() net.Addr { return n.listener.Addr() }

// AdminAddr is the bound admin listener address, nil without AdminListen.
func (n *Node) AdminAddr() net.Addr {
	if n.adminLn == nil {
		return nil
	}
	return n.adminLn.Addr()
}

// Done reports the listener's end (nil after Shutdown).
func (n *Node) Done() <-chan error { return n.served }

// Shutdown stops serving. A standalone node closes its sockets with 1001
// (going away). A cluster node drains: it leaves the membership first, so
// that the other members stop placing grains here, waits DrainSettle for
// them to notice, then closes its sockets with 4009 (reconnect elsewhere) so
// that clients resume on another node at once; grains living here stop with
// the member (then the actors' worker goroutines end) and connections
// elsewhere re-attach to their new homes. The store is flushed and closed
// last.
func (n *Node) Shutdown(ctx context.Context) error {
	n.ready.Store(false)
	var errs []error
	code, reason := 1001, "server shutting down"
	if n.cfg.clustered() {
		code, reason = clientpb.CloseReconnectElsewhere, "node draining, reconnect"
		n.gateway.RefuseNew()
		if err := n.member.Leave(); err != nil {
			errs = append(errs, fmt.Errorf("leave: %w", err))
		}
		select {
		case <-time.After(n.cfg.DrainSettle):
		case <-ctx.Done():
		}
	}
	if err := n.gateway.Shutdown(ctx, code, reason); err != nil {
		errs = append(errs, fmt.Errorf("sockets: %w", err))
	}
	if err := n.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	if n.admin != nil {
		if err := n.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin http: %w", err))
		}
	}
	if n.media != nil {
		if err := n.media.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("media: %w", err))
		}
	}
	if err := n.member.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := n.actors.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("actors: %w", err))
	}
	if n.retain != nil {
		if err := n.retain.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("retention: %w", err))
		}
	}
	if err := n.webhooks.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("webhooks: %w", err))
	}
	if n.archive != nil {
		if err := n.archive.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("archive: %w", err))
		}
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	return errors.Join(errs...)
}

// loadTokens builds the verifiers of user tokens and of admin tokens from
// their secrets.
// loadTokens returns the user and admin token signers, and the user (auth)
// secret that other keys are derived from.
func loadTokens(cfg Config, logger *slog.Logger) (users, admin *auth.Tokens, userSecret []byte, err error) {
	userSecret, err = loadSecret(cfg, "auth", cfg.AuthSecret, cfg.AuthSecretFile, logger,
		"generated auth secret; application servers mint user tokens with it")
	if err != nil {
		return nil, nil, nil, err
	}
	adminSecret, err := loadSecret(cfg, "admin", cfg.AdminSecret, cfg.AdminSecretFile, logger,
		"generated admin secret; admin tokens (imctl token --admin) are minted with it")
	if err != nil {
		return nil, nil, nil, err
	}
	if string(userSecret) == string(adminSecret) {
		return nil, nil, nil, errors.New("node: the admin secret must differ from the auth secret (app servers hold the auth secret)")
	}
	life := auth.WithMaxLifetime(cfg.TokenMaxLifetime)
	users, err = auth.NewTokens(userSecret, cfg.Gateway.TokenTTL, life, auth.WithIssuer(cfg.TokenIssuer), auth.WithAudience(cfg.TokenAudience))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node: auth secret: %w", err)
	}
	admin, err = auth.NewTokens(adminSecret, time.Hour, life)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node: admin secret: %w", err)
	}
	return users, admin, userSecret, nil
}

// loadSecret returns a secret given by value or by file or, failing that,
// the one kept in <data>/<name>.secret, generating it (mode 0600) on the
// first start of a standalone node.
func loadSecret(cfg Config, name, value, file string, logger *slog.Logger, generated string) ([]byte, error) {
	switch {
	case value != "" && file != "":
		return nil, fmt.Errorf("node: give the %s secret or its file, not both", name)
	case value != "":
		return []byte(value), nil
	case file != "":
		return readSecretFile(file, logger)
	}
	if cfg.clustered() {
		return nil, fmt.Errorf("node: a cluster needs --%s-secret-file (the same on every node)", name)
	}
	path := filepath.Join(cfg.DataDir, name+".secret")
	if _, err := os.Stat(path); err == nil {
		return readSecretFile(path, logger)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("node: write %s: %w", path, err)
	}
	logger.Info(generated, "file", path)
	return []byte(secret), nil
}

// readSecretFile reads a secret (surrounding white space trimmed), warning
// when others than the owner may read the file.
func readSecretFile(path string, logger *slog.Logger) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node: secret: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		logger.Warn("secret file is readable by others than its owner: chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: secret: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// The gateway finds the broadcast endpoint's backend by a type check at run
// time; this makes losing it a compile error.
var _ interface {
	gateway.Backend
	Broadcast(context.Context, actors.BroadcastRequest) (actors.BroadcastResult, *clientpb.Error)
} = (*actors.Service)(nil)
