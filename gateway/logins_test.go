package gateway

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestClientAddrTrustedProxies: X-Forwarded-For counts only from a trusted
// proxy, and then only its last untrusted hop (earlier ones are the
// client's to forge).
func TestClientAddrTrustedProxies(t *testing.T) {
	l := newLoginLimiter(Config{LoginRate: 1, LoginBurst: 1, TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	for _, c := range []struct{ name, peer, xff, want string }{
		{"untrusted peer ignores the header", "203.0.113.9:5000", "198.51.100.1", "203.0.113.9"},
		{"trusted peer without header", "10.1.2.3:5000", "", "10.1.2.3"},
		{"trusted peer names the client", "10.1.2.3:5000", "198.51.100.7", "198.51.100.7"},
		{"a forged hop before the real one", "10.1.2.3:5000", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		{"a chain of trusted proxies", "10.1.2.3:5000", "198.51.100.7, 10.9.9.9", "198.51.100.7"},
		{"garbage stops at the last trusted hop", "10.1.2.3:5000", "nonsense, 10.9.9.9", "10.9.9.9"},
		{"IPv6 proxy, IPv4-mapped client", "[::1]:5000", "::ffff:198.51.100.8", "198.51.100.8"},
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := l.clientAddr(r); got.String() != c.want {
			t.Errorf("%s: client %v, want %s", c.name, got, c.want)
		}
	}
}

func TestLoginLimiterPerAddress(t *testing.T) {
	l := newLoginLimiter(Config{LoginRate: 1, LoginBurst: 2})
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for i := range 2 {
		if _, ok := l.allowAddr(a); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if d, ok := l.allowAddr(a); ok || d <= 0 || d > time.Second {
		t.Fatalf("beyond the burst: ok %v, retry after %v", ok, d)
	}
	if _, ok := l.allowAddr(b); !ok {
		t.Fatal("another address shares the bucket")
	}
	// One IPv6 host is given a /64: its addresses share a bucket.
	v6a, v6b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	l.allowAddr(v6a)
	l.allowAddr(v6a)
	if _, ok := l.allowAddr(v6b); ok {
		t.Fatal("an address of the same /64 has a bucket of its own")
	}
	if off := newLoginLimiter(Config{LoginRate: -1}); off.addrs != nil {
		t.Fatal("a negative rate still limits")
	} else if _, ok := off.allowAddr(a); !ok {
		t.Fatal("no limit refused")
	}
}

// TestLoginLimiterBackoff: free failures, then a lockout doubling up to the
// cap; success clears it.
func TestLoginLimiterBackoff(t *testing.T) {
	l := newLoginLimiter(Config{LoginFreeFailures: 2, LoginBackoffMax: 4 * time.Second})
	var got []time.Duration
	for range 6 {
		got = append(got, l.failed("alice"))
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("lockouts %v, want %v", got, want)
		}
	}
	if d := l.locked("alice"); d <= 3*time.Second {
		t.Fatalf("locked for %v", d)
	}
	if d := l.locked("bob"); d != 0 {
		t.Fatalf("bob locked for %v", d)
	}
	l.succeeded("alice")
	if d := l.locked("alice"); d != 0 {
		t.Fatalf("locked after success for %v", d)
	}
	// The map is bounded: a flood of made-up ids evicts, it does not grow.
	for i := range maxTrackedAccounts + 100 {
		l.failed("u" + strconv.Itoa(i))
	}
	if n := l.failures.Len(); n > maxTrackedAccounts {
		t.Fatalf("%d accounts tracked", n)
	}
}
