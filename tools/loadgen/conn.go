package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"actorim/auth"
	"actorim/client"
	"actorim/protos/clientpb"
)

// dialer opens logged-in connections. A connection's global index picks its
// target and source address round robin, the same way in every process.
type dialer struct {
	targets []string
	ips     []netip.Addr
	tokens  *auth.Tokens
	app     string // empty: the default app
	json    bool
	timeout time.Duration
	st      *stats
}

func newDialer(cfg *Config, st *stats) (*dialer, error) {
	tokens, err := auth.NewTokens([]byte(cfg.Secret), 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("loadgen: secret: %w", err)
	}
	return &dialer{targets: cfg.Targets, ips: cfg.SourceIPs, tokens: tokens, app: cfg.App, json: cfg.JSON, timeout: cfg.Timeout, st: st}, nil
}

// token mints a token for user of the run's app, as its app server would.
func (d *dialer) token(user string) (string, error) {
	if d.app == "" {
		tok, _, err := d.tokens.Issue(user, false)
		return tok, err
	}
	tok, _, err := d.tokens.IssueApp(d.app, user, 24*time.Hour)
	return tok, err
}

func ignorePush(*clientpb.Push) {}

// connect dials connection idx and logs user in as device; lastSeq nil starts
// the push stream at the end of the timeline. Pushes go to onPush (nil:
// ignored) and are acknowledged automatically after ackDelay. Failures are
// counted under op ("connect" or "reconnect").
func (d *dialer) connect(ctx context.Context, op string, idx int, user, device string, lastSeq *uint64,
	onPush func(*clientpb.Push), ackDelay time.Duration) (*client.Conn, error) {
	if onPush == nil {
		onPush = ignorePush
	}
	opts := client.Options{JSON: d.json, OnPush: onPush, AutoAck: true, AckDelay: ackDelay,
		PushBuffer: 1} // pushes go to onPush; the channel stays empty
	if len(d.ips) > 0 {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: d.ips[idx%len(d.ips)].AsSlice()}}
		opts.NetDial = nd.DialContext
	}
	tok, err := d.token(user)
	if err != nil {
		return nil, err
	}
	// Each connection has its own target; when it does not answer (a node
	// died or is draining), the next ones are tried, as a client with a list
	// of nodes would.
	var lastErr error
	for i := range len(d.targets) {
		c, err := d.login(ctx, d.targets[(idx+i)%len(d.targets)], opts, tok, device, lastSeq)
		if err == nil {
			d.st.open.Add(1)
			return c, nil
		}
		lastErr = err
		d.st.connFailed.Add(1)
		d.st.fail(op, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// login dials one target and logs in.
func (d *dialer) login(ctx context.Context, target string, opts client.Options, tok, device string, lastSeq *uint64) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := client.Dial(ctx, target, opts)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if _, err := c.Login(ctx, tok, device, clientpb.Platform_PLATFORM_DESKTOP, lastSeq); err != nil {
		c.Abort()
		return nil, fmt.Errorf("login: %w", err)
	}
	return c, nil
}

// parallel runs fn(0) ... fn(n-1) on at most workers goroutines and stops
// starting new calls once ctx ends.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, max(workers, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// closeAll closes the connections politely (a close handshake each), many at once.
func closeAll(st *stats, conns []*client.Conn) {
	parallel(context.Background(), len(conns), 256, func(i int) {
		if conns[i] != nil {
			_ = conns[i].Close()
			st.open.Add(-1)
		}
	})
}

// ParseSourceIPs parses a comma-separated list of addresses and ranges
// ("127.0.0.2-127.0.0.9") into the addresses client sockets bind to.
func ParseSourceIPs(s string) ([]netip.Addr, error) {
	var ips []netip.Addr
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("loadgen: source address %q: %w", item, err)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("loadgen: source address %q: %w", item, err)
			}
			if last.BitLen() != first.BitLen() || last.Less(first) {
				return nil, fmt.Errorf("loadgen: source range %q is empty", item)
			}
		}
		for a := first; ; a = a.Next() {
			if len(ips) >= 4096 {
				return nil, fmt.Errorf("loadgen: more than 4096 source addresses in %q", s)
			}
			ips = append(ips, a)
			if a == last {
				break
			}
		}
	}
	return ips, nil
}

// portsPerAddress is about how many client sockets one source address can
// hold towards one node before its ephemeral ports run out (about 28,000).
const portsPerAddress = 20_000

// autoSourceIPs spreads sockets over 127.0.0.2, .3, ... when every target is
// on loopback and one address has too few ephemeral ports for them.
func autoSourceIPs(targets []string, sockets int) []netip.Addr {
	if sockets <= portsPerAddress {
		return nil
	}
	for _, t := range targets {
		u, err := url.Parse(t)
		if err != nil {
			return nil
		}
		host := u.Hostname()
		if host == "localhost" {
			continue
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() || !a.Is4() {
			return nil
		}
	}
	n := (sockets + portsPerAddress - 1) / portsPerAddress
	ips := make([]netip.Addr, n)
	a := netip.AddrFrom4([4]byte{127, 0, 0, 2})
	for i := range ips {
		ips[i], a = a, a.Next()
	}
	return ips
}
