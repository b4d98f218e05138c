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

	"actorim/actors"
	"actorim/auth"
	"actorim/cluster"
	"actorim/gateway"
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
	// AuthSecret signs tokens; application servers mint tokens with it. When
	// empty, a standalone node generates one and keeps it in DataDir/auth.secret.
	AuthSecret string
	// Pprof serves Go's profiler at /debug/pprof/ on the listener. Off by
	// default: profiles reveal internals and cost CPU while they run.
	Pprof bool

	// DrainSettle is how long a draining node waits, after leaving the
	// cluster's membership, for the other members to notice before it
	// closes its sockets. Default 500ms.
	DrainSettle time.Duration

	Store   StoreConfig
	Archive ArchiveConfig
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
}

// Node is a running actorim node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    persistence.Store
	member   *cluster.Member
	gateway  *gateway.Server
	http     *http.Server
	listener net.Listener
	served   chan error
	ready    atomic.Bool
	archive  *archive // nil when archiving is off
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
	secret, err := loadSecret(cfg, logger)
	if err != nil {
		return nil, err
	}
	tokens, err := auth.NewTokens(secret, cfg.Gateway.TokenTTL)
	if err != nil {
		return nil, fmt.Errorf("node: auth secret: %w", err)
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
	rt := actors.NewRuntime(cfg.Actors, hist, actors.NewMetrics(reg), logger.With("component", "actors"))

	ccfg := cfg.Cluster
	ccfg.Kinds = append(ccfg.Kinds, rt.Kinds()...)
	member, err := cluster.New(ccfg, logger.With("component", "cluster"))
	if err != nil {
		return nil, err
	}
	rt.Bind(member) // before Start: grains may be activated while joining
	if err := member.Start(ctx); err != nil {
		return nil, err
	}
	n.member = member
	undo = append(undo, func() { _ = member.Shutdown(context.Background()) })

	n.gateway = gateway.New(cfg.Gateway, rt, tokens, reg, reg, n.ready.Load, logger.With("component", "gateway"))
	if arch != nil {
		n.gateway.SetAnalytics(arch)
		arch.start()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	n.listener = ln
	handler := n.gateway.Handler()
	if cfg.Pprof {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		handler = mux
	}
	n.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	scheme := "ws"
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("node: tls: %w", err)
		}
		n.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		n.listener = tls.NewListener(ln, n.http.TLSConfig)
		scheme = "wss"
	}
	go func() { n.served <- n.http.Serve(n.listener) }()
	n.ready.Store(true)
	logger.Info("actorim node ready", "listen", ln.Addr().String(), "ws", scheme+"://"+ln.Addr().String()+"/ws",
		"data", cfg.DataDir, "cluster", member.Address(), "device_policy", rt.Config().DevicePolicy)
	return n, nil
}

// Addr is the bound listener address.
func (n *Node) Addr() net.Addr { return n.listener.Addr() }

// Done reports the listener's end (nil after Shutdown).
func (n *Node) Done() <-chan error { return n.served }

// Shutdown stops serving. A standalone node closes its sockets with 1001
// (going away). A cluster node drains: it leaves the membership first, so
// that the other members stop placing grains here, waits DrainSettle for
// them to notice, then closes its sockets with 4009 (reconnect elsewhere) so
// that clients resume on another node at once; grains living here stop with
// the member and connections elsewhere re-attach to their new homes. The
// store is flushed and closed last.
func (n *Node) Shutdown(ctx context.Context) error {
	n.ready.Store(false)
	var errs []error
	code, reason := 1001, "server shutting down"
	if n.cfg.Cluster.Provider != "" && n.cfg.Cluster.Provider != cluster.ProviderStandalone {
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
	if err := n.member.Shutdown(ctx); err != nil {
		errs = append(errs, err)
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

// loadSecret returns the configured secret or, failing that, the one kept in
// the data directory, generating it on first start.
func loadSecret(cfg Config, logger *slog.Logger) ([]byte, error) {
	if cfg.AuthSecret != "" {
		return []byte(cfg.AuthSecret), nil
	}
	if cfg.Cluster.Provider != "" && cfg.Cluster.Provider != cluster.ProviderStandalone {
		return nil, errors.New("node: a cluster needs --auth-secret (the same on every node)")
	}
	path := filepath.Join(cfg.DataDir, "auth.secret")
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: read %s: %w", path, err)
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
	logger.Info("generated auth secret; application servers mint tokens with it", "file", path)
	return []byte(secret), nil
}
