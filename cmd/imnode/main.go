// Command imnode runs an actorim node. With no flags it runs standalone on an
// embedded store in ./data and listens on 127.0.0.1:8080.
//
// Every flag can also be set by an environment variable (ACTORIM_ and the
// flag name in upper case with '-' as '_', e.g. ACTORIM_LISTEN) or in a config
// file named by --config (one "flag value" pair per line, '#' comments).
// Flags win over the environment, which wins over the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/redis/go-redis/v9"

	"actorim/actors"
	"actorim/gateway"
	"actorim/node"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imnode:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(args[1:])
	}
	if len(args) > 0 && args[0] == "cluster-certs" {
		return runClusterCerts(args[1:])
	}
	cfg, logger, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	warnSecretArgs(args, logger)

	// go-redis logs through a process-wide logger; route it to ours.
	redis.SetLogger(redisLogger{logger.With("component", "redis")})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-n.Done():
		logger.Error("listener failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return n.Shutdown(sctx)
}

// parseConfig reads flags, ACTORIM_* environment variables and the optional
// config file, in that order of precedence.
func parseConfig(args []string) (node.Config, *slog.Logger, error) {
	f := newFlags()
	cfg := &f.cfg
	err := ff.Parse(f.fs, args,
		ff.WithEnvVarPrefix("ACTORIM"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	)
	if err != nil {
		return *cfg, nil, err
	}
	if err := f.security.apply(cfg); err != nil {
		return *cfg, nil, err
	}
	if cfg.Actors.DevicePolicy, err = actors.ParseDevicePolicy(*f.policy); err != nil {
		return *cfg, nil, err
	}
	if cfg.Gateway.TrustedProxies, err = parsePrefixes(*f.proxies); err != nil {
		return *cfg, nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	logger, err := newLogger(*f.logLevel, *f.logFormat)
	return *cfg, logger, err
}

// flags is imnode's flag set, bound to cfg, and the flags that need more
// than a field of it.
type flags struct {
	fs                                   *flag.FlagSet
	cfg                                  node.Config
	logLevel, logFormat, policy, proxies *string
	security                             *securityFlags
}

// newFlags binds every flag. A flag of a Config field takes its default
// from node.Config{}.WithDefaults(), the one place that default is written.
func newFlags() *flags {
	fs := flag.NewFlagSet("imnode", flag.ContinueOnError)
	d := node.Config{}.WithDefaults()
	f := &flags{fs: fs}
	f.logLevel = fs.String("log-level", "info", "log level: debug, info, warn or error")
	f.logFormat = fs.String("log-format", "text", "log format: text or json")
	f.policy = fs.String("device-policy", string(d.Actors.DevicePolicy), "multi-device policy: multi (any number), per-platform (one per platform) or single (one in all)")
	_ = fs.String("config", "", "optional config file: one \"flag value\" pair per line")
	bindFlags(fs, &f.cfg, d)
	f.proxies = bindPerimeterFlags(fs, &f.cfg, d)
	f.security = bindSecurityFlags(fs, &f.cfg)
	return f
}

// bindFlags binds the flags of the listener, gateway, actors, cluster and
// store; d holds their defaults.
func bindFlags(fs *flag.FlagSet, c *node.Config, d node.Config) {
	fs.StringVar(&c.Listen, "listen", d.Listen, "address of the WebSocket (/ws) and HTTP listener")
	fs.StringVar(&c.DataDir, "data", d.DataDir, "data directory of the embedded store")
	fs.StringVar(&c.TLSCert, "tls-cert", d.TLSCert, "TLS certificate file (PEM); with --tls-key serves wss:// and https://")
	fs.StringVar(&c.TLSKey, "tls-key", d.TLSKey, "TLS private key file (PEM)")
	fs.BoolVar(&c.Pprof, "pprof", d.Pprof, "serve Go's profiler at /debug/pprof/ (for diagnosis; off in production)")
	fs.StringVar(&c.WebApp, "web-app", d.WebApp, "what the node serves at /: embedded (the chat web app built in), off, or the directory of a built app (index.html at its root)")
	fs.StringVar(&c.AuthSecret, "auth-secret", d.AuthSecret, "user token signing secret, at least 32 bytes, shared with application servers; give it by $ACTORIM_AUTH_SECRET or --auth-secret-file, not here: a command line shows in ps (default: generated into <data>/auth.secret)")

	g, dg := &c.Gateway, d.Gateway
	fs.IntVar(&g.MaxFrameBytes, "max-frame-bytes", dg.MaxFrameBytes, "largest client frame accepted")
	fs.DurationVar(&g.IdleTimeout, "idle-timeout", dg.IdleTimeout, "close a connection that sends nothing for this long")
	fs.DurationVar(&g.PingInterval, "ping-interval", dg.PingInterval, "interval of server WebSocket pings (at most half of --idle-timeout)")
	fs.DurationVar(&g.LoginTimeout, "login-timeout", dg.LoginTimeout, "time a new connection has to log in")
	fs.DurationVar(&g.WriteTimeout, "write-timeout", dg.WriteTimeout, "disconnect a client that cannot take a frame within this time")
	fs.Float64Var(&g.SendRate, "send-rate", dg.SendRate, "sends per second allowed per connection")
	fs.IntVar(&g.SendBurst, "send-burst", dg.SendBurst, "burst of sends allowed per connection")
	fs.Float64Var(&g.RequestRate, "request-rate", dg.RequestRate, "frames per second allowed per connection, all kinds (sends also count against --send-rate)")
	fs.IntVar(&g.RequestBurst, "request-burst", dg.RequestBurst, "burst of frames allowed per connection; a client that sends this many more while refused is closed with 4007")
	fs.IntVar(&g.MaxInflightBytes, "max-inflight-bytes", dg.MaxInflightBytes, "bytes of a connection's unanswered frames (each counts its size plus 1 KiB) before its socket is no longer read")
	fs.IntVar(&g.MaxConnections, "max-connections", dg.MaxConnections, "refuse sockets beyond this many (default and 0: the open-files limit minus 512)")
	fs.DurationVar(&g.TokenTTL, "token-ttl", dg.TokenTTL, "lifetime of tokens issued by POST /v1/login")

	a, da := &c.Actors, d.Actors
	fs.IntVar(&a.MaxContentBytes, "max-content-bytes", da.MaxContentBytes, "largest message content (text, emoji or custom JSON)")
	fs.DurationVar(&a.PushRetryMin, "push-retry", da.PushRetryMin, "first resend delay of an unacknowledged push (doubles up to --push-retry-max)")
	fs.DurationVar(&a.PushRetryMax, "push-retry-max", da.PushRetryMax, "longest resend delay of an unacknowledged push")
	fs.IntVar(&a.PushWindow, "push-window", da.PushWindow, "unacknowledged entries allowed per device")
	fs.DurationVar(&a.GrainIdle, "grain-idle", da.GrainIdle, "passivate a user grain without devices after this long idle")
	fs.IntVar(&a.MaxGroupMembers, "max-group-members", da.MaxGroupMembers, "largest group")
	fs.DurationVar(&a.RecallWindow, "recall-window", da.RecallWindow, "how long after sending a message may be recalled")
	fs.IntVar(&a.WriteBudget, "write-budget", da.WriteBudget, "bytes per second one connection's sends may make the store write (content plus 256 bytes, per recipient timeline)")
	fs.IntVar(&a.WriteBurst, "write-burst", da.WriteBurst, "burst of --write-budget, in bytes")

	cl, dc := &c.Cluster, d.Cluster
	fs.StringVar(&cl.Provider, "cluster", dc.Provider, "cluster provider: standalone (one node) or consul")
	fs.StringVar(&cl.Bind, "cluster-bind", dc.Bind, "host:port of the actor remote listener")
	fs.StringVar(&cl.Advertise, "advertise", dc.Advertise, "host:port other nodes reach this node's actor remote at (default: the bound address)")
	fs.StringVar(&cl.Name, "cluster-name", dc.Name, "cluster name: nodes join only nodes of the same name")
	fs.StringVar(&cl.Consul.Addr, "consul", dc.Consul.Addr, "Consul agent HTTP address (with --cluster consul)")
	fs.DurationVar(&cl.Consul.TTL, "consul-ttl", dc.Consul.TTL, "membership health TTL: how soon a crashed node is noticed")
	fs.DurationVar(&cl.RequestTimeout, "grain-timeout", dc.RequestTimeout, "bound of one grain call including retries")
	fs.DurationVar(&c.DrainSettle, "drain-settle", d.DrainSettle, "on SIGTERM in a cluster: wait after leaving the membership before closing sockets")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", d.RetentionInterval, "time between the passes that delete messages past their app's retention_ms")

	st, ds := &c.Store, d.Store
	fs.StringVar(&st.Backend, "store", ds.Backend, "hot store: embedded (Pebble in --data, one node) or redis (shared by a cluster)")
	fs.StringVar(&st.Redis.Addr, "redis", ds.Redis.Addr, "Redis primary host:port (with --store redis)")
	fs.StringVar(&st.Redis.Password, "redis-password", ds.Redis.Password, "Redis password")
	fs.IntVar(&st.Redis.DB, "redis-db", ds.Redis.DB, "Redis database number")
	fs.StringVar(&st.Redis.Prefix, "redis-prefix", ds.Redis.Prefix, "prefix of every Redis key")
	bindArchiveFlags(fs, c, d)
	bindMediaFlags(fs, c, d)
}

// bindPerimeterFlags binds the flags of credentials, HTTP limits and login
// limits; it returns the raw --trusted-proxies list.
func bindPerimeterFlags(fs *flag.FlagSet, c *node.Config, d node.Config) *string {
	fs.StringVar(&c.AuthSecretFile, "auth-secret-file", d.AuthSecretFile, "file holding the user token signing secret (mode 0600)")
	fs.StringVar(&c.AdminSecret, "admin-secret", d.AdminSecret, "admin token signing secret, at least 32 bytes, different from the auth secret; give it by $ACTORIM_ADMIN_SECRET or --admin-secret-file (default: generated into <data>/admin.secret)")
	fs.StringVar(&c.AdminSecretFile, "admin-secret-file", d.AdminSecretFile, "file holding the admin token signing secret (mode 0600)")
	fs.StringVar(&c.AdminListen, "admin-listen", d.AdminListen, "serve the admin API, /metrics and pprof on this address instead of --listen (e.g. 127.0.0.1:9090)")
	fs.DurationVar(&c.TokenMaxLifetime, "token-max-lifetime", d.TokenMaxLifetime, "refuse tokens whose expiry is further away than this")
	fs.StringVar(&c.TokenIssuer, "token-issuer", d.TokenIssuer, "when set, user tokens must carry this iss (and issued ones do)")
	fs.StringVar(&c.TokenAudience, "token-audience", d.TokenAudience, "when set, user tokens must carry this aud (and issued ones do)")
	g, dg := &c.Gateway, d.Gateway
	fs.DurationVar(&g.HTTPReadTimeout, "http-read-timeout", dg.HTTPReadTimeout, "time to read a whole HTTP request, body included")
	fs.DurationVar(&g.HTTPWriteTimeout, "http-write-timeout", dg.HTTPWriteTimeout, "time to write an HTTP answer")
	fs.DurationVar(&g.HTTPIdleTimeout, "http-idle-timeout", dg.HTTPIdleTimeout, "close a kept-alive HTTP connection idle for this long")
	fs.IntVar(&g.Hashing.Concurrency, "hash-concurrency", dg.Hashing.Concurrency, "password hashes (argon2id, 19 MiB each) at once (default and 0: GOMAXPROCS, at least 2, at most 16)")
	fs.IntVar(&g.Hashing.Queue, "hash-queue", dg.Hashing.Queue, "register and login requests that may wait for a hashing slot; beyond, 503")
	fs.DurationVar(&g.Hashing.Wait, "hash-wait", dg.Hashing.Wait, "longest wait for a hashing slot before 503")
	fs.Float64Var(&g.LoginRate, "login-rate", dg.LoginRate, "register and login requests per second per client address (negative: no limit)")
	fs.IntVar(&g.LoginBurst, "login-burst", dg.LoginBurst, "burst of register and login requests per client address")
	fs.IntVar(&g.LoginFreeFailures, "login-free-failures", dg.LoginFreeFailures, "failed logins in a row before an account's logins back off (1s, doubling)")
	fs.DurationVar(&g.LoginBackoffMax, "login-backoff-max", dg.LoginBackoffMax, "longest lockout of an account's logins after failures")
	fs.Func("cors-origins", "comma-separated origins of web pages allowed to call the HTTP API from another origin: https://app.example.com, https://*.example.com, or * for any (default: none)", func(v string) error {
		g.CORSOrigins = splitList(v)
		for _, o := range g.CORSOrigins {
			if err := gateway.CheckCORSOrigin(o); err != nil {
				return err
			}
		}
		return nil
	})
	return fs.String("trusted-proxies", "", "comma-separated addresses or CIDR networks of reverse proxies whose X-Forwarded-For names the client")
}

// parsePrefixes parses a comma-separated list of addresses and networks.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a network", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// warnSecretArgs warns when a secret was given on the command line, where
// every local user can read it (ps, /proc/PID/cmdline).
func warnSecretArgs(args []string, logger *slog.Logger) {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "auth-secret" || name == "admin-secret") {
			logger.Warn("a secret on the command line is visible to every local user (ps): use --"+name+"-file or $ACTORIM_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")), "flag", name)
		}
	}
}

// redisLogger adapts go-redis's logging (dial failures, pool trouble) to slog.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}
