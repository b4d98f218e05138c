// Package cluster turns a Config into a running protoactor cluster member and
// is the only package that knows protoactor's providers and identity lookup.
//
// Standalone (the default) runs protoactor's cluster API with its in-memory
// provider, so grains are addressed the same way in one process as in a
// cluster. The package also hides the framework's rough edges listed in
// ../shared/FACTS.md: every call has an explicit timeout and a real
// retry/backoff, per-call options only (never the mutating RequestFuture),
// Shutdown(true), and our slog logger injected instead of the default one.
// The actor remote speaks mutual TLS only (tls.go): protoactor's insecure
// default would let anyone who reaches the port call any grain.
package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/consul"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashicorp/consul/api"
)

// Provider names accepted in Config.Provider.
const (
	ProviderStandalone = "standalone"
	ProviderConsul     = "consul"
)

// ErrUnavailable reports a grain that could not be reached before the deadline.
var ErrUnavailable = errors.New("cluster: grain unavailable")

// Config describes the member to start. Zero values are the defaults.
type Config struct {
	// Name of the cluster; members join only members of the same name.
	// Default "actorim".
	Name string
	// Provider is "standalone" (default: one process, in-memory membership)
	// or "consul".
	Provider string
	// Bind is the host:port the actor remote listens on. Default
	// "127.0.0.1:0" (any free port on loopback).
	Bind string
	// Advertise is the host:port other members dial; default: the bound address.
	Advertise string
	// RequestTimeout bounds one grain call including its retries. Default 5s.
	RequestTimeout time.Duration
	// TLS secures the actor remote with mutual TLS. It is required: a
	// member without certificates refuses to start, unless TLS.Insecure is
	// set and Bind and Advertise are loopback addresses.
	TLS TLSConfig
	// Consul configures the consul provider.
	Consul ConsulConfig
	// ActorLogLevel filters protoactor's own log lines. Default warn: the
	// framework logs routine events at info.
	ActorLogLevel slog.Level
	// Kinds are the grain kinds this member hosts.
	Kinds []*pcluster.Kind
}

// ConsulConfig is the consul provider's configuration.
type ConsulConfig struct {
	// Addr is the agent's HTTP address, host:port, or a URL
	// "https://host:port" for HTTPS. Default "127.0.0.1:8500".
	Addr string
	// Token is the ACL token presented to the agent. Default none (the
	// agent's anonymous token). The member registers and deregisters its
	// own service and reads the health of the cluster's services.
	Token string
	// TLS configures HTTPS to the agent; setting CAFile switches to https.
	TLS ConsulTLS
	// TTL is how long a member stays healthy without refreshing its check:
	// it bounds how soon a crashed node is noticed. Default 1s (protoactor's
	// 3s would make failover take about 6s).
	TTL time.Duration
	// Refresh is how often a member refreshes its check. Default TTL/4.
	Refresh time.Duration
}

// ConsulTLS configures HTTPS to the Consul agent.
type ConsulTLS struct {
	// CAFile verifies the agent's certificate (PEM). Default: the system's
	// roots.
	CAFile string
	// CertFile and KeyFile are a client certificate, for an agent that
	// verifies incoming HTTPS connections. Default none.
	CertFile, KeyFile string
	// ServerName is the name the agent's certificate must carry. Default:
	// the host of Addr.
	ServerName string
}

// apiConfig returns a fresh client configuration (api.NewClient modifies
// the one it gets). The token rides on the transport, not only in Token:
// protoactor's membership watch reuses this configuration through
// watch.Plan.RunWithConfig, which overwrites Token with the plan's own
// (empty) one, so under ACLs the watch would see no members.
func (c ConsulConfig) apiConfig() (*api.Config, error) {
	tlsCfg := api.TLSConfig{Address: c.TLS.ServerName, CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var err error
	if tr.TLSClientConfig, err = api.SetupTLSConfig(&tlsCfg); err != nil {
		return nil, fmt.Errorf("cluster: consul tls: %w", err)
	}
	hc := &http.Client{Transport: tr}
	if c.Token != "" {
		hc.Transport = tokenTransport{base: tr, token: c.Token}
	}
	cfg := &api.Config{Address: c.Addr, Token: c.Token, TLSConfig: tlsCfg, HttpClient: hc}
	if c.TLS.CAFile != "" || c.TLS.CertFile != "" {
		cfg.Scheme = "https"
	}
	return cfg, nil
}

// tokenTransport adds the ACL token to requests that carry none.
type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Consul-Token") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Consul-Token", t.token)
	}
	return t.base.RoundTrip(r)
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "actorim"
	}
	if c.Provider == "" {
		c.Provider = ProviderStandalone
	}
	if c.Bind == "" {
		c.Bind = "127.0.0.1:0"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.ActorLogLevel == 0 {
		c.ActorLogLevel = slog.LevelWarn
	}
	if c.Consul.Addr == "" {
		c.Consul.Addr = "127.0.0.1:8500"
	}
	if c.Consul.TTL <= 0 {
		c.Consul.TTL = time.Second
	}
	if c.Consul.Refresh <= 0 {
		c.Consul.Refresh = c.Consul.TTL / 4
	}
}

// Member is a running cluster member.
type Member struct {
	cfg     Config
	log     *slog.Logger
	system  *actor.ActorSystem
	cluster *pcluster.Cluster
	consul  *consul.Provider // nil when standalone
	owners  atomic.Pointer[Owners]
}

// New builds the actor system and the cluster member without joining: the
// caller binds whatever its grains need to the member, then calls Start.
// Grains can be activated from the moment Start begins (other members place
// them here while the member is still joining), so nothing they use may be
// set up after it.
func New(cfg Config, logger *slog.Logger) (*Member, error) {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, portStr, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind %q: %w", cfg.Bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind port %q: %w", portStr, err)
	}

	actorLog := slog.New(levelFilter{h: logger.Handler(), min: cfg.ActorLogLevel}).With("component", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog }))

	// Before anything is contacted: an unsafe configuration fails fast.
	remoteOpts, creds, err := remoteSecurity(cfg)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		logger.Warn("actor remote without TLS: every local user can call grains", "bind", cfg.Bind)
	} else {
		logger.Debug("actor remote with mutual TLS", "server_name", TLSServerName, "cert", cfg.TLS.CertFile,
			"not_after", creds.NotAfter())
		if time.Until(creds.NotAfter()) < 30*24*time.Hour {
			logger.Warn("cluster certificate expires soon", "cert", cfg.TLS.CertFile, "not_after", creds.NotAfter())
		}
	}
	if cfg.Advertise != "" {
		remoteOpts = append(remoteOpts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	remoteCfg := remote.Configure(host, port, remoteOpts...)

	var provider pcluster.ClusterProvider
	var consulProvider *consul.Provider
	switch cfg.Provider {
	case ProviderStandalone:
		provider = test.NewTestProvider(test.NewInMemAgent())
	case ProviderConsul:
		apiCfg, err := cfg.Consul.apiConfig()
		if err != nil {
			return nil, err
		}
		if err := consulReachable(cfg.Name, cfg.Consul); err != nil {
			return nil, err
		}
		consulProvider, err = consul.NewWithConfig(apiCfg,
			consul.WithTTL(cfg.Consul.TTL), consul.WithRefreshTTL(cfg.Consul.Refresh))
		if err != nil {
			return nil, fmt.Errorf("cluster: consul: %w", err)
		}
		provider = consulProvider
	default:
		return nil, fmt.Errorf("cluster: unknown provider %q (want standalone or consul)", cfg.Provider)
	}

	clusterCfg := pcluster.Configure(cfg.Name, provider, disthash.New(), remoteCfg,
		pcluster.WithKinds(cfg.Kinds...),
		pcluster.WithRequestTimeout(cfg.RequestTimeout),
	)
	c := pcluster.New(system, clusterCfg)
	m := &Member{cfg: cfg, log: logger, system: system, cluster: c, consul: consulProvider}
	if m.Clustered() {
		m.trackOwners()
	}
	return m, nil
}

// Start joins the cluster.
func (m *Member) Start(ctx context.Context) (err error) {
	// StartMember panics on failure (for example a port in use): turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: start member: %v", r)
		}
	}()
	m.cluster.StartMember()
	m.log.Info("cluster member started", "provider", m.cfg.Provider, "address", m.system.Address())
	return nil
}

// consulReachable fails fast with a clear error when no agent answers or
// its ACLs refuse the member's registration, instead of letting the provider
// retry forever (it retries a refused registration in a tight loop). The
// probe registers and removes a service of the cluster's name whose check
// is critical, so no member ever counts it as a peer.
func consulReachable(name string, c ConsulConfig) error {
	cfg, err := c.apiConfig()
	if err != nil {
		return err
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("cluster: consul: %w", err)
	}
	if _, err := client.Status().Leader(); err != nil {
		return fmt.Errorf("cluster: consul agent at %s: %w", c.Addr, err)
	}
	var b [8]byte
	_, _ = crand.Read(b[:])
	probe := &api.AgentServiceRegistration{
		ID: name + "-probe-" + hex.EncodeToString(b[:]), Name: name,
		Check: &api.AgentServiceCheck{TTL: "1m", Status: api.HealthCritical, DeregisterCriticalServiceAfter: "1m"},
	}
	if err := client.Agent().ServiceRegister(probe); err != nil {
		return fmt.Errorf("cluster: consul agent at %s refuses to register service %q (an ACL token needs service:write on it and node:read): %w",
			c.Addr, name, err)
	}
	if err := client.Agent().ServiceDeregister(probe.ID); err != nil {
		return fmt.Errorf("cluster: consul agent at %s: deregister probe: %w", c.Addr, err)
	}
	return nil
}

// Leave takes this member out of the cluster's membership (Consul
// deregistration) while it keeps running, so that the other members stop
// placing grains here before its actors stop. A standalone member has
// nobody to tell.
func (m *Member) Leave() error {
	if m.consul == nil {
		return nil
	}
	return m.consul.DeregisterMember()
}

// System returns the member's actor system.
func (m *Member) System() *actor.ActorSystem { return m.system }

// Address returns the address other members reach this one at.
func (m *Member) Address() string { return m.system.Address() }

// Clustered reports whether other members may exist (grains can move).
func (m *Member) Clustered() bool { return m.cfg.Provider != ProviderStandalone }

// RequestTimeout is the configured bound of one grain call.
func (m *Member) RequestTimeout() time.Duration { return m.cfg.RequestTimeout }

// Shutdown leaves the cluster and stops every actor. protoactor's graceful
// shutdown sleeps two seconds to hand off grains; it is not interruptible, so
// ctx only bounds how long the caller waits for it.
func (m *Member) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.cluster.Shutdown(true)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: shutdown: %w", ctx.Err())
	}
}

// levelFilter drops records below min: protoactor logs routine events at info
// and would drown the node's own log. One info record always passes, raised
// to error: "[ACTOR] Recovering", which protoactor logs when an actor
// panicked and its supervisor restarts it. That must never go unseen.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

const recovering = "[ACTOR] Recovering"

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return (l >= f.min || l == slog.LevelInfo) && f.h.Enabled(ctx, slog.LevelError)
}

func (f levelFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < f.min {
		if r.Message != recovering {
			return nil
		}
		r.Level = slog.LevelError
	}
	return f.h.Handle(ctx, r)
}
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: f.h.WithAttrs(a), min: f.min}
}
func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h: f.h.WithGroup(n), min: f.min}
}
