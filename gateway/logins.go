package gateway

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Bounds of the login limiter's memory: the least recently seen addresses
// and accounts are forgotten first (about 200 bytes each).
const (
	maxTrackedAddrs    = 1 << 16
	maxTrackedAccounts = 1 << 16
	// failureMemory is how long an account's failed logins are remembered
	// after the last one.
	failureMemory = 15 * time.Minute
	// firstBackoff is the lockout after the first failure beyond the free ones.
	firstBackoff = time.Second
)

// loginLimiter rate-limits register and login per client address and backs
// off an account's logins after repeated failures. Both maps are bounded
// LRUs: a flood of made-up addresses or user ids evicts entries, it does not
// grow memory.
type loginLimiter struct {
	rate     rate.Limit
	burst    int
	free     int
	maxLock  time.Duration
	trusted  []netip.Prefix
	addrs    *lru.Cache[netip.Prefix, *rate.Limiter] // nil: no address limit
	mu       sync.Mutex                              // guards the failures entries
	failures *lru.Cache[string, *failures]
}

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

func newLoginLimiter(cfg Config) *loginLimiter {
	l := &loginLimiter{rate: rate.Limit(cfg.LoginRate), burst: cfg.LoginBurst, free: cfg.LoginFreeFailures,
		maxLock: cfg.LoginBackoffMax, trusted: cfg.TrustedProxies}
	if cfg.LoginRate > 0 {
		l.addrs, _ = lru.New[netip.Prefix, *rate.Limiter](maxTrackedAddrs)
	}
	l.failures, _ = lru.New[string, *failures](maxTrackedAccounts)
	return l
}

// allowAddr takes a token from addr's bucket, or tells how long to wait.
func (l *loginLimiter) allowAddr(addr netip.Addr) (retryAfter time.Duration, ok bool) {
	if l.addrs == nil || !addr.IsValid() {
		return 0, true
	}
	key := addrKey(addr)
	lim, found := l.addrs.Get(key)
	if !found {
		// Two first requests racing may each create a limiter; one wins the
		// cache and the other's token is lost: harmless.
		lim = rate.NewLimiter(l.rate, l.burst)
		l.addrs.Add(key, lim)
	}
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, false
	}
	return 0, true
}

// addrKey is the unit a client controls: one IPv4 address, or an IPv6 /64
// (a host is usually given a whole /64).
func addrKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// locked returns how long user's logins are still locked out (0: not).
func (l *loginLimiter) locked(user string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.failures.Peek(user)
	if !ok {
		return 0
	}
	return time.Until(f.until)
}

// failed records a failed login of user and returns the lockout it starts.
func (l *loginLimiter) failed(user string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	f, ok := l.failures.Get(user)
	if !ok || now.Sub(f.last) > failureMemory {
		f = &failures{}
		l.failures.Add(user, f)
	}
	f.n++
	f.last = now
	if over := f.n - l.free; over > 0 {
		d := l.maxLock
		if over <= 32 {
			d = min(firstBackoff<<(over-1), l.maxLock)
		}
		f.until = now.Add(d)
		return d
	}
	return 0
}

// succeeded forgets user's failures.
func (l *loginLimiter) succeeded(user string) {
	l.mu.Lock()
	l.failures.Remove(user)
	l.mu.Unlock()
}

// clientAddr is the address of the client that sent r: the peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not a trusted proxy (the ones before it could be forged by the client).
func (l *loginLimiter) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !l.isTrusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a malformed hop: trust nothing before it
		}
		a = a.Unmap()
		if !l.isTrusted(a) {
			return a
		}
		addr = a
	}
	return addr
}

func (l *loginLimiter) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// retryAfterSeconds is a Retry-After header value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
