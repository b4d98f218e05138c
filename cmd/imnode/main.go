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
	fs := flag.NewFlagSet("imnode", flag.ContinueOnError)
	var cfg node.Config
	var (
		logLevel  = fs.String("log-level", "info", "log level: debug, info, warn or error")
		logFormat = fs.String("log-format", "text", "log format: text or json")
		policy    = fs.String("device-policy", "multi", "multi-device policy: multi (any number), per-platform (one per platform) or single (one in all)")
		_         = fs.String("config", "", "optional config file: one \"flag value\" pair per line")
	)
	bindFlags(fs, &cfg)
	proxies := bindPerimeterFlags(fs, &cfg)
	security := bindSecurityFlags(fs, &cfg)
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("ACTORIM"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
	)
	if err != nil {
		return cfg, nil, err
	}
	if err := security.apply(&cfg); err != nil {
		return cfg, nil, err
	}
	if cfg.Actors.DevicePolicy, err = actors.ParseDevicePolicy(*policy); err != nil {
		return cfg, nil, err
	}
	if cfg.Gateway.TrustedProxies, err = parsePrefixes(*proxies); err != nil {
		return cfg, nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	logger, err := newLogger(*logLevel, *logFormat)
	return cfg, logger, err
}

func bindFlags(fs *flag.FlagSet, c *node.Config) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address of the WebSocket (/ws) and HTTP listener")
	fs.StringVar(&c.DataDir, "data", "./data", "data directory of the embedded store")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves wss:// and https://")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ (for diagnosis; off in production)")
	fs.StringVar(&c.AuthSecret, "auth-secret", "", "user token signing secret, at least 32 bytes, shared with application servers; give it by $ACTORIM_AUTH_SECRET or --auth-secret-file, not here: a command line shows in ps (default: generated into <data>/auth.secret)")

	fs.IntVar(&c.Gateway.MaxFrameBytes, "max-frame-bytes", 64<<10, "largest client frame accepted")
	fs.DurationVar(&c.Gateway.IdleTimeout, "idle-timeout", 60*time.Second, "close a connection that sends nothing for this long")
	fs.DurationVar(&c.Gateway.PingInterval, "ping-interval", 25*time.Second, "interval of server WebSocket pings")
	fs.DurationVar(&c.Gateway.LoginTimeout, "login-timeout", 10*time.Second, "time a new connection has to log in")
	fs.DurationVar(&c.Gateway.WriteTimeout, "write-timeout", 10*time.Second, "disconnect a client that cannot take a frame within this time")
	fs.Float64Var(&c.Gateway.SendRate, "send-rate", 100, "sends per second allowed per connection")
	fs.IntVar(&c.Gateway.SendBurst, "send-burst", 200, "burst of sends allowed per connection")
	fs.Float64Var(&c.Gateway.RequestRate, "request-rate", 200, "frames per second allowed per connection, all kinds (sends also count against --send-rate)")
	fs.IntVar(&c.Gateway.RequestBurst, "request-burst", 400, "burst of frames allowed per connection; a client that sends this many more while refused is closed with 4007")
	fs.IntVar(&c.Gateway.MaxInflightBytes, "max-inflight-bytes", 256<<10, "bytes of a connection's unanswered frames (each counts its size plus 1 KiB) before its socket is no longer read")
	fs.IntVar(&c.Gateway.MaxConnections, "max-connections", 0, "refuse sockets beyond this many (0: open-files limit minus 512)")
	fs.DurationVar(&c.Gateway.TokenTTL, "token-ttl", 24*time.Hour, "lifetime of tokens issued by POST /v1/login")

	fs.IntVar(&c.Actors.MaxContentBytes, "max-content-bytes", 16<<10, "largest message content (text, emoji or custom JSON)")
	fs.DurationVar(&c.Actors.PushRetryMin, "push-retry", 2*time.Second, "first resend delay of an unacknowledged push (doubles up to --push-retry-max)")
	fs.DurationVar(&c.Actors.PushRetryMax, "push-retry-max", 30*time.Second, "longest resend delay of an unacknowledged push")
	fs.IntVar(&c.Actors.PushWindow, "push-window", 512, "unacknowledged entries allowed per device")
	fs.DurationVar(&c.Actors.GrainIdle, "grain-idle", 2*time.Minute, "passivate a user grain without devices after this long idle")
	fs.IntVar(&c.Actors.MaxGroupMembers, "max-group-members", 2000, "largest group")
	fs.DurationVar(&c.Actors.RecallWindow, "recall-window", 2*time.Minute, "how long after sending a message may be recalled")
	fs.IntVar(&c.Actors.WriteBudget, "write-budget", 2<<20, "bytes per second one connection's sends may make the store write (content plus 256 bytes, per recipient timeline)")
	fs.IntVar(&c.Actors.WriteBurst, "write-burst", 32<<20, "burst of --write-budget, in bytes")

	fs.StringVar(&c.Cluster.Provider, "cluster", "standalone", "cluster provider: standalone (one node) or consul")
	fs.StringVar(&c.Cluster.Bind, "cluster-bind", "127.0.0.1:0", "host:port of the actor remote listener")
	fs.StringVar(&c.Cluster.Advertise, "advertise", "", "host:port other nodes reach this node's actor remote at (default: the bound address)")
	fs.StringVar(&c.Cluster.Name, "cluster-name", "actorim", "cluster name: nodes join only nodes of the same name")
	fs.StringVar(&c.Cluster.Consul.Addr, "consul", "127.0.0.1:8500", "Consul agent HTTP address (with --cluster consul)")
	fs.DurationVar(&c.Cluster.Consul.TTL, "consul-ttl", time.Second, "membership health TTL: how soon a crashed node is noticed")
	fs.DurationVar(&c.Cluster.RequestTimeout, "grain-timeout", 5*time.Second, "bound of one grain call including retries")
	fs.DurationVar(&c.DrainSettle, "drain-settle", 500*time.Millisecond, "on SIGTERM in a cluster: wait after leaving the membership before closing sockets")

	fs.StringVar(&c.Store.Backend, "store", "embedded", "hot store: embedded (Pebble in --data, one node) or redis (shared by a cluster)")
	fs.StringVar(&c.Store.Redis.Addr, "redis", "127.0.0.1:6379", "Redis primary host:port (with --store redis)")
	fs.StringVar(&c.Store.Redis.Password, "redis-password", "", "Redis password")
	fs.IntVar(&c.Store.Redis.DB, "redis-db", 0, "Redis database number")
	fs.StringVar(&c.Store.Redis.Prefix, "redis-prefix", "actorim:", "prefix of every Redis key")
	bindArchiveFlags(fs, c)
}

// bindPerimeterFlags binds the flags of credentials, HTTP limits and login
// limits; it returns the raw --trusted-proxies list.
func bindPerimeterFlags(fs *flag.FlagSet, c *node.Config) *string {
	fs.StringVar(&c.AuthSecretFile, "auth-secret-file", "", "file holding the user token signing secret (mode 0600)")
	fs.StringVar(&c.AdminSecret, "admin-secret", "", "admin token signing secret, at least 32 bytes, different from the auth secret; give it by $ACTORIM_ADMIN_SECRET or --admin-secret-file (default: generated into <data>/admin.secret)")
	fs.StringVar(&c.AdminSecretFile, "admin-secret-file", "", "file holding the admin token signing secret (mode 0600)")
	fs.StringVar(&c.AdminListen, "admin-listen", "", "serve the admin API, /metrics and pprof on this address instead of --listen (e.g. 127.0.0.1:9090)")
	fs.DurationVar(&c.TokenMaxLifetime, "token-max-lifetime", 30*24*time.Hour, "refuse tokens whose expiry is further away than this")
	fs.StringVar(&c.TokenIssuer, "token-issuer", "", "when set, user tokens must carry this iss (and issued ones do)")
	fs.StringVar(&c.TokenAudience, "token-audience", "", "when set, user tokens must carry this aud (and issued ones do)")
	fs.DurationVar(&c.Gateway.HTTPReadTimeout, "http-read-timeout", 20*time.Second, "time to read a whole HTTP request, body included")
	fs.DurationVar(&c.Gateway.HTTPWriteTimeout, "http-write-timeout", 30*time.Second, "time to write an HTTP answer")
	fs.DurationVar(&c.Gateway.HTTPIdleTimeout, "http-idle-timeout", 60*time.Second, "close a kept-alive HTTP connection idle for this long")
	fs.IntVar(&c.Gateway.Hashing.Concurrency, "hash-concurrency", 0, "password hashes (argon2id, 19 MiB each) at once (0: GOMAXPROCS, at least 2, at most 16)")
	fs.IntVar(&c.Gateway.Hashing.Queue, "hash-queue", 64, "register and login requests that may wait for a hashing slot; beyond, 503")
	fs.DurationVar(&c.Gateway.Hashing.Wait, "hash-wait", 2*time.Second, "longest wait for a hashing slot before 503")
	fs.Float64Var(&c.Gateway.LoginRate, "login-rate", 10, "register and login requests per second per client address (negative: no limit)")
	fs.IntVar(&c.Gateway.LoginBurst, "login-burst", 40, "burst of register and login requests per client address")
	fs.IntVar(&c.Gateway.LoginFreeFailures, "login-free-failures", 5, "failed logins in a row before an account's logins back off (1s, doubling)")
	fs.DurationVar(&c.Gateway.LoginBackoffMax, "login-backoff-max", 5*time.Minute, "longest lockout of an account's logins after failures")
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
