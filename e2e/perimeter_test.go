package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"actorim/auth"
	"actorim/client"
	"actorim/ids"
	"actorim/node"
	"actorim/protos/clientpb"
)

// The perimeter: password hashing and login limits, HTTP timeouts and
// limits, admin credentials, token lifetime and revocation (issue 10,
// items 2, 7 and 8).

// httpAnswer is a raw HTTP answer.
type httpAnswer struct {
	status int
	header http.Header
	body   string
}

// call sends a request with an optional bearer token, JSON body and content
// type (default application/json when there is a body), and headers.
func call(t *testing.T, method, url, token string, body any, header ...string) httpAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.(string)
		if !ok {
			data, _ := json.Marshal(body)
			b = string(data)
		}
		rd = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// procMemory reads a process's resident memory and its peak, in bytes.
func procMemory(t *testing.T, pid int) (rss, hwm int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

const mib = 1 << 20

// loginFloodRSSBound is the stated bound of a node's peak RSS (VmHWM) under
// the login flood below, with two hashes at once (the default on 2 cores).
// Without a bound on hashing, concurrent argon2id hashes of 19 MiB each took
// a node past 1.7 GB; with it, a node idle at about 105 MiB peaks near
// 180 MiB. The bound leaves room for a noisy machine.
const loginFloodRSSBound = 300 * mib

// TestLoginFloodBounded: 200 concurrent wrong-password logins for 6 s.
// From one address, all but a burst are refused with 429 and Retry-After
// before any hashing. From 200 addresses (X-Forwarded-For through a trusted
// proxy), hashing runs at most a few at once: the node's peak RSS stays
// under loginFloodRSSBound, the excess is refused with 503 and Retry-After,
// nothing else goes wrong, and the node serves a real login right after.
func TestLoginFloodBounded(t *testing.T) {
	p := startProcess(t, t.TempDir(), freeAddr(t), "--trusted-proxies", "127.0.0.1", "--hash-concurrency", "2")
	n := p.node()
	known := []string{n.newUser(t, "flood"), n.newUser(t, "flood"), n.newUser(t, "flood")}
	pid := p.Pid()
	baseRSS, _ := procMemory(t, pid)

	flood := func(t *testing.T, workers int, d time.Duration, xff func(w int) string) map[int]int {
		t.Helper()
		var mu sync.Mutex
		statuses := map[int]int{}
		var badRetry atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					user := fmt.Sprintf("nobody-%d-%d", w, i)
					if i%4 == 0 {
						user = known[w%len(known)]
					}
					body := fmt.Sprintf(`{"user_id":%q,"password":"wrong-password"}`, user)
					req, _ := http.NewRequest("POST", n.http+"/v1/login", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if xff != nil {
						req.Header.Set("X-Forwarded-For", xff(w))
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						mu.Lock()
						statuses[-1]++
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 429 || resp.StatusCode == 503 {
						if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
							badRetry.Add(1)
						}
					}
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if badRetry.Load() > 0 {
			t.Errorf("%d refusals without a Retry-After of whole seconds", badRetry.Load())
		}
		for s, c := range statuses {
			if s != 401 && s != 429 && s != 503 {
				t.Errorf("%d answers with status %d (statuses %v)", c, s, statuses)
			}
		}
		return statuses
	}

	t.Run("one address", func(t *testing.T) {
		st := flood(t, 200, 2*time.Second, nil)
		t.Logf("statuses from one address: %v", st)
		// A burst of 40 plus 10/s: the rest is 429.
		if st[401] > 40+10*4 || st[429] < 200 {
			t.Fatalf("one address: statuses %v, want at most about 60 hashed and the rest 429", st)
		}
	})

	t.Run("many addresses", func(t *testing.T) {
		var peak atomic.Int64
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				if rss, _ := procMemory(t, pid); rss > peak.Load() {
					peak.Store(rss)
				}
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		st := flood(t, 200, 6*time.Second, func(w int) string { return fmt.Sprintf("10.7.%d.%d", w/250, w%250+1) })
		close(done)
		<-sampled
		_, hwm := procMemory(t, pid)
		t.Logf("statuses from 200 addresses: %v; node RSS before %d MiB, peak sampled %d MiB, VmHWM %d MiB (bound %d MiB)",
			st, baseRSS/mib, peak.Load()/mib, hwm/mib, loginFloodRSSBound/mib)
		if hwm > loginFloodRSSBound {
			t.Fatalf("node VmHWM %d MiB under the login flood, bound %d MiB", hwm/mib, loginFloodRSSBound/mib)
		}
		if st[503] == 0 {
			t.Fatalf("no 503 under 200 concurrent logins: statuses %v", st)
		}
	})

	// Served again at once (the known users' lockouts are their own).
	user := n.newUser(t, "after")
	if a := call(t, "POST", n.http+"/v1/login", "", map[string]string{"user_id": user, "password": "password-" + user}); a.status != 200 {
		t.Fatalf("login after the flood: %d %s", a.status, a.body)
	}
}

// TestLoginUnknownUserTakesAsLong: a login for a user who does not exist
// costs the same password check as a wrong password for one who does, so
// its timing does not tell who has an account.
func TestLoginUnknownUserTakesAsLong(t *testing.T) {
	n := shared
	var known []string
	for range 6 {
		known = append(known, n.newUser(t, "timing"))
	}
	login := func(user string) time.Duration {
		start := time.Now()
		a := call(t, "POST", n.http+"/v1/login", "", map[string]string{"user_id": user, "password": "not-the-password"})
		if a.status != http.StatusUnauthorized {
			t.Fatalf("login %s: %d %s", user, a.status, a.body)
		}
		return time.Since(start)
	}
	// Interleaved, and the median of each: the machine is shared and noisy,
	// and the difference to catch is 100-fold (0.5 ms against 50 ms).
	var k, u []time.Duration
	for i, user := range known {
		k = append(k, login(user))
		u = append(u, login(fmt.Sprintf("nobody-%d-%d", time.Now().UnixNano(), i)))
	}
	mk, mu := median(k), median(u)
	t.Logf("wrong password: known user %v, unknown user %v (medians of %d)", mk, mu, len(k))
	if mu < mk/3 || mu > mk*3 {
		t.Fatalf("an unknown user's login takes %v, a known user's %v: the timing tells who exists", mu, mk)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// TestLoginBackoffPerAccount: after five failed logins in a row, an
// account's logins are refused with 429 and Retry-After, even with the
// right password, for a backoff that doubles with each further failure;
// once it passes, the right password works and clears the failures.
func TestLoginBackoffPerAccount(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	try := func(user, pw string) httpAnswer {
		return call(t, "POST", n.http+"/v1/login", "", map[string]string{"user_id": user, "password": pw})
	}
	for i := range 6 {
		if a := try(alice, "wrong-password"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i+1, a.status, a.body)
		}
	}
	a := try(alice, "password-"+alice)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || !strings.Contains(a.body, "ERR_RATE_LIMITED") {
		t.Fatalf("right password during the lockout: %d %q %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	if a := try(bob, "password-"+bob); a.status != http.StatusOK {
		t.Fatalf("another account: %d %s", a.status, a.body)
	}
	time.Sleep(1100 * time.Millisecond)
	if a := try(alice, "wrong-password"); a.status != http.StatusUnauthorized {
		t.Fatalf("failure after the lockout: %d %s", a.status, a.body)
	}
	if a := try(alice, "password-"+alice); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "2" {
		t.Fatalf("second lockout: %d %q, want 429 with Retry-After 2", a.status, a.header.Get("Retry-After"))
	}
	time.Sleep(2100 * time.Millisecond)
	if a := try(alice, "password-"+alice); a.status != http.StatusOK {
		t.Fatalf("right password after the lockout: %d %s", a.status, a.body)
	}
	if a := try(alice, "wrong-password"); a.status != http.StatusUnauthorized {
		t.Fatalf("a failure after a success is a first failure again: %d %s", a.status, a.body)
	}
}

// TestRegisterAndLoginSpareWork: registering a taken id hashes nothing, and
// logins for made-up user ids activate no grain.
func TestRegisterAndLoginSpareWork(t *testing.T) {
	p := startProcess(t, t.TempDir(), freeAddr(t))
	n := p.node()
	alice := n.newUser(t, "alice")
	const hashes = `actorim_password_hashes_total{op="hash"}`
	before := metric(t, p, hashes)
	if before < 1 {
		t.Fatalf("%s = %v after a registration", hashes, before)
	}
	if a := call(t, "POST", n.http+"/v1/register", "", map[string]string{"user_id": alice, "password": "another-password"}); a.status != http.StatusConflict {
		t.Fatalf("register a taken id: %d %s", a.status, a.body)
	}
	if after := metric(t, p, hashes); after != before {
		t.Fatalf("registering a taken id hashed a password (%v -> %v)", before, after)
	}

	const grains = "actorim_user_grains_activated_total"
	g0 := metric(t, p, grains)
	for i := range 30 {
		a := call(t, "POST", n.http+"/v1/login", "", map[string]string{"user_id": fmt.Sprintf("ghost-%d", i), "password": "whatever-pw"})
		if a.status != http.StatusUnauthorized {
			t.Fatalf("login of an unknown user: %d %s", a.status, a.body)
		}
	}
	if g := metric(t, p, grains); g != g0 {
		t.Fatalf("30 logins of unknown users activated %v user grains", g-g0)
	}
}

// TestJSONEndpointsRefuseOtherContentTypes: a web page may POST text/plain
// or a form to any origin without a CORS preflight, so JSON endpoints
// refuse every other content type with 415, and nothing happens.
func TestJSONEndpointsRefuseOtherContentTypes(t *testing.T) {
	n := shared
	user := fmt.Sprintf("csrf-%d", time.Now().UnixNano()%1e9)
	body := fmt.Sprintf(`{"user_id":%q,"password":"password-%s"}`, user, user)
	admin, _, _ := n.admin.Issue("ops", true)
	for _, c := range []struct{ path, token, ctype string }{
		{"/v1/register", "", "text/plain"},
		{"/v1/register", "", "application/x-www-form-urlencoded"},
		{"/v1/register", "", "multipart/form-data; boundary=x"},
		{"/v1/register", "", ""},
		{"/v1/login", "", "text/plain;charset=UTF-8"},
		{"/v1/admin/users", admin, "text/plain"},
	} {
		req, _ := http.NewRequestWithContext(ctx(t), "POST", n.http+c.path, strings.NewReader(body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("POST %s as %q: %d, want 415", c.path, c.ctype, resp.StatusCode)
		}
	}
	// No account was created: registering it now works.
	if a := call(t, "POST", n.http+"/v1/register", "", body, "Content-Type", "application/json; charset=utf-8"); a.status != http.StatusCreated {
		t.Fatalf("register as JSON afterwards: %d %s", a.status, a.body)
	}
}

// TestHTTPSlowBodyCutOff: clients that declare a body and trickle it a byte
// at a time are cut off by the read timeout; they count against
// --max-connections with WebSocket connections (beyond it: 503, or closed
// at once), and a body declared over an endpoint's limit is refused before
// it is read.
func TestHTTPSlowBodyCutOff(t *testing.T) {
	const limit, readTimeout = 40, 2 * time.Second
	p := startProcess(t, t.TempDir(), freeAddr(t), "--max-connections", strconv.Itoa(limit),
		"--http-read-timeout", readTimeout.String())
	n := p.node()

	// Declared over the 4 KiB limit of login: 413 before reading.
	conn, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), handWrittenLogin(1000000))
	specCheck.RecordResponse(resp)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("1 MB declared: %v, %v", resp, err)
	}
	conn.Close()

	// 150 slow clients: each declares 1000 bytes and sends one every 500 ms.
	type slow struct {
		opened, ended time.Time
		status        int
	}
	clients := make([]*slow, 150)
	var alive atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		s := &slow{opened: time.Now()}
		clients[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { s.ended = time.Now() }()
			c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			alive.Add(1)
			defer alive.Add(-1)
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(c), handWrittenLogin(1000)); err == nil {
					specCheck.RecordResponse(resp)
					s.status = resp.StatusCode
				}
			}()
			fmt.Fprintf(c, "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
			for {
				select {
				case <-ended:
					return
				case <-time.After(500 * time.Millisecond):
					if _, err := c.Write([]byte(" ")); err != nil {
						<-ended
						return
					}
				}
			}
		}()
	}
	time.Sleep(time.Second)
	held := alive.Load()
	// The slow clients fill the limit (all but the odd slot held by another
	// connection, such as a kept-alive one): WebSockets get what is left,
	// then 503.
	var ws []*client.Conn
	var werr error
	for werr == nil && len(ws) <= limit {
		var c *client.Conn
		if c, werr = client.Dial(ctx(t), n.ws, specDial(client.Options{})); werr == nil {
			ws = append(ws, c)
		}
	}
	for _, c := range ws {
		_ = c.Close()
	}
	wg.Wait()
	var longest time.Duration
	refused := 0
	for _, s := range clients {
		longest = max(longest, s.ended.Sub(s.opened))
		if s.status == http.StatusServiceUnavailable || s.status == 0 {
			refused++
		}
	}
	t.Logf("after 1 s %d of %d slow clients held; %d refused (503 or closed); longest lived %v; then %d WebSocket(s) opened before %v",
		held, len(clients), refused, longest.Round(10*time.Millisecond), len(ws), werr)
	if int(held)+len(ws) > limit {
		t.Errorf("%d slow clients and %d WebSockets held open, limit %d", held, len(ws), limit)
	}
	if werr == nil || !strings.Contains(werr.Error(), "503") {
		t.Errorf("WebSocket while slow HTTP clients fill the limit: %v, want HTTP 503", werr)
	}
	if longest > readTimeout+3*time.Second {
		t.Errorf("a slow client lived %v, read timeout %v", longest, readTimeout)
	}
	// Served again once they are gone.
	user := n.newUser(t, "after")
	if _, err := (&client.HTTP{BaseURL: n.http}).Login(ctx(t), user, "password-"+user); err != nil {
		t.Fatalf("login after the slow clients: %v", err)
	}
}

// TestWebSocketOutlivesHTTPTimeouts: the HTTP server's read, write and idle
// timeouts do not reach a connection that upgraded to a WebSocket.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.Gateway.HTTPReadTimeout, c.Gateway.HTTPWriteTimeout, c.Gateway.HTTPIdleTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	})
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	time.Sleep(2 * time.Second)
	a.send(t, bob, "still here")
	if got := b.collect(t, 1, 5*time.Second); texts(got)[0] != "still here" {
		t.Fatalf("bob got %v", texts(got))
	}
	if _, err := b.Ping(ctx(t)); err != nil {
		t.Fatalf("ping after the HTTP timeouts: %v", err)
	}
}

// adminCall is one admin endpoint with a body that it accepts.
type adminCall struct {
	method, path string
	body         any
}

func adminCalls(alice, bob string) []adminCall {
	return []adminCall{
		{"POST", "/v1/admin/users", map[string]string{"user_id": fmt.Sprintf("prov-%d", time.Now().UnixNano()%1e9)}},
		{"POST", "/v1/admin/users/" + alice + "/messages", `{"clientMsgId":"adm-1","to":"` + bob + `","content":{"text":"hi"}}`},
		{"POST", "/v1/admin/users/" + bob + "/revoke-tokens", map[string]any{}},
		{"GET", "/v1/admin/analytics/messages", nil},
		{"POST", "/v1/admin/broadcast", map[string]any{"content": map[string]string{"text": "notice"}}},
	}
}

// TestAdminNeedsAdminCredential: every admin endpoint refuses no token
// (401), a user token (403), an admin claim signed with the app-server
// secret (403) and an admin-secret token without the admin role (403), and
// accepts a token signed with the admin secret. With --admin-listen, the
// admin API, /metrics and pprof move to that listener and the public one
// no longer serves them. A standalone node generates its admin secret
// (0600), and refuses one equal to the auth secret.
func TestAdminNeedsAdminCredential(t *testing.T) {
	check := func(t *testing.T, n *testNode, base string) {
		t.Helper()
		alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
		user := n.token(t, alice)
		forged, _, _ := n.tokens.Issue("ops", true)
		noRole, _, _ := n.admin.Issue("ops", false)
		admin, _, _ := n.admin.Issue("ops", true)
		for _, c := range adminCalls(alice, bob) {
			for _, r := range []struct {
				name, token string
				want        int
			}{{"no token", "", 401}, {"user token", user, 403}, {"app-secret admin claim", forged, 403}, {"admin secret without role", noRole, 403}} {
				if a := call(t, c.method, base+c.path, r.token, c.body); a.status != r.want {
					t.Errorf("%s %s with %s: %d %s, want %d", c.method, c.path, r.name, a.status, a.body, r.want)
				}
			}
			a := call(t, c.method, base+c.path, admin, c.body)
			ok := a.status/100 == 2 || (strings.Contains(c.path, "analytics") && a.status == http.StatusServiceUnavailable) // no archive here
			if !ok {
				t.Errorf("%s %s with the admin token: %d %s", c.method, c.path, a.status, a.body)
			}
		}
	}

	t.Run("one listener", func(t *testing.T) {
		n := startNode(t, nil)
		check(t, n, n.http)
	})

	t.Run("admin listener", func(t *testing.T) {
		n := startNode(t, func(c *node.Config) { c.AdminListen, c.Pprof = "127.0.0.1:0", true })
		adminURL := "http://" + n.n.AdminAddr().String()
		check(t, n, adminURL)
		admin, _, _ := n.admin.Issue("ops", true)
		for _, c := range adminCalls("alice", "bob") {
			if a := call(t, c.method, n.http+c.path, admin, c.body); a.status != http.StatusNotFound {
				t.Errorf("public listener serves %s %s: %d", c.method, c.path, a.status)
			}
		}
		for _, path := range []string{"/metrics", "/debug/pprof/"} {
			if a := call(t, "GET", n.http+path, "", nil); a.status != http.StatusNotFound {
				t.Errorf("public listener serves %s: %d", path, a.status)
			}
			if a := call(t, "GET", adminURL+path, "", nil); a.status != http.StatusOK {
				t.Errorf("admin listener does not serve %s: %d", path, a.status)
			}
		}
		for _, base := range []string{n.http, adminURL} {
			if a := call(t, "GET", base+"/readyz", "", nil); a.status != http.StatusOK {
				t.Errorf("%s/readyz: %d", base, a.status)
			}
		}
		// The public side still works.
		user := n.newUser(t, "carol")
		n.connect(t, user, "web", nil)
	})

	t.Run("generated admin secret", func(t *testing.T) {
		n := startNode(t, func(c *node.Config) { c.AdminSecret = "" })
		st, err := os.Stat(filepath.Join(n.dir, "admin.secret"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("admin.secret: %v, %v", st, err)
		}
		b, _ := os.ReadFile(filepath.Join(n.dir, "admin.secret"))
		admin, err := auth.NewTokens([]byte(strings.TrimSpace(string(b))), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, _ := admin.Issue("ops", true)
		if a := call(t, "POST", n.http+"/v1/admin/users", tok, map[string]string{"user_id": "gen-admin"}); a.status != http.StatusOK {
			t.Fatalf("generated admin secret: %d %s", a.status, a.body)
		}
		if _, err := newNode(func(c *node.Config) { c.AdminSecret = c.AuthSecret }); err == nil || !strings.Contains(err.Error(), "differ") {
			t.Fatalf("a node started with the admin secret equal to the auth secret: %v", err)
		}
	})
}

// TestTokenRevocation: an admin revokes a user's tokens. The live
// connection gets a Kick with KICK_REASON_REVOKED and close 4001; the old
// token is refused at WebSocket login (ERR_UNAUTHENTICATED, 4001) and over
// HTTP (401); a token issued afterwards works. Revoking an unknown user is
// 404, a time in the future 400.
func TestTokenRevocation(t *testing.T) {
	n := startNode(t, nil)
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	old := n.token(t, alice)
	live := n.dial(t, client.Options{})
	if _, err := live.Login(ctx(t), old, "phone", clientpb.Platform_PLATFORM_IOS, nil); err != nil {
		t.Fatal(err)
	}
	bobDev := n.connect(t, bob, "web", nil)
	admin, _, _ := n.admin.Issue("ops", true)
	hist := func(tok string) httpAnswer {
		return call(t, "GET", n.http+"/v1/conversations/"+ids.Private(alice, bob)+"/messages", tok, nil)
	}
	if a := hist(old); a.status != http.StatusOK {
		t.Fatalf("history before revocation: %d %s", a.status, a.body)
	}

	a := call(t, "POST", n.http+"/v1/admin/users/"+alice+"/revoke-tokens", admin, map[string]any{})
	var res struct {
		RevokedBeforeMs int64 `json:"revoked_before_ms"`
		Kicked          int   `json:"kicked"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &res) != nil || res.Kicked != 1 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	select {
	case <-live.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the live connection was not closed")
	}
	if code, _, kick := live.CloseStatus(); code != clientpb.CloseUnauthenticated || kick.GetReason() != clientpb.KickReason_KICK_REASON_REVOKED {
		t.Fatalf("live connection closed with %d, kick %v; want 4001 after KICK_REASON_REVOKED", code, kick)
	}
	bobDev.quiet(t, 100*time.Millisecond) // bob is not affected
	if _, err := bobDev.Ping(ctx(t)); err != nil {
		t.Fatalf("bob: %v", err)
	}

	c := n.dial(t, client.Options{})
	if _, err := c.Login(ctx(t), old, "laptop", clientpb.Platform_PLATFORM_DESKTOP, nil); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("login with the revoked token: %v", err)
	}
	<-c.Done()
	if code, _, _ := c.CloseStatus(); code != clientpb.CloseUnauthenticated {
		t.Fatalf("login with the revoked token closed with %d, want 4001", code)
	}
	if a := hist(old); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "revoked") {
		t.Fatalf("history with the revoked token: %d %s", a.status, a.body)
	}

	// Tokens issued from the revocation time on (rounded up to the second,
	// the precision of iat) work.
	time.Sleep(time.Until(time.UnixMilli(res.RevokedBeforeMs)))
	fresh := n.token(t, alice)
	c2 := n.dial(t, client.Options{})
	if _, err := c2.Login(ctx(t), fresh, "laptop", clientpb.Platform_PLATFORM_DESKTOP, nil); err != nil {
		t.Fatalf("login with a new token: %v", err)
	}
	if a := hist(fresh); a.status != http.StatusOK {
		t.Fatalf("history with a new token: %d %s", a.status, a.body)
	}

	if a := call(t, "POST", n.http+"/v1/admin/users/nobody-"+alice+"/revoke-tokens", admin, map[string]any{}); a.status != http.StatusNotFound {
		t.Errorf("revoke an unknown user: %d %s", a.status, a.body)
	}
	future := map[string]any{"before_ms": time.Now().Add(time.Hour).UnixMilli()}
	if a := call(t, "POST", n.http+"/v1/admin/users/"+alice+"/revoke-tokens", admin, future); a.status != http.StatusBadRequest {
		t.Errorf("revoke with a future time: %d %s", a.status, a.body)
	}
}

// TestTokenLifetimeIssuerAudience: with a maximum lifetime, an issuer and
// an audience configured, tokens valid for longer, or without the issuer
// or audience, are refused at WebSocket login (4001) and over HTTP (401);
// tokens the node issues carry them and work.
func TestTokenLifetimeIssuerAudience(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.TokenMaxLifetime, c.TokenIssuer, c.TokenAudience = 48*time.Hour, "https://app.example", "actorim"
	})
	alice := n.newUser(t, "alice")
	wide := auth.WithMaxLifetime(365 * 24 * time.Hour)
	mint := func(ttl time.Duration, opts ...auth.Option) string {
		tk, err := auth.NewTokens([]byte(testSecret), time.Hour, append(opts, wide)...)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := tk.IssueFor(alice, false, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	iss, aud := auth.WithIssuer("https://app.example"), auth.WithAudience("actorim")
	for name, tok := range map[string]string{
		"expiry beyond the maximum": mint(72*time.Hour, iss, aud),
		"no issuer":                 mint(time.Hour, aud),
		"another issuer":            mint(time.Hour, auth.WithIssuer("https://evil.example"), aud),
		"no audience":               mint(time.Hour, iss),
		"another audience":          mint(time.Hour, iss, auth.WithAudience("billing")),
	} {
		c := n.dial(t, client.Options{})
		if _, err := c.Login(ctx(t), tok, "web", clientpb.Platform_PLATFORM_WEB, nil); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
			t.Errorf("%s: WebSocket login: %v", name, err)
			continue
		}
		<-c.Done()
		if code, _, _ := c.CloseStatus(); code != clientpb.CloseUnauthenticated {
			t.Errorf("%s: closed with %d, want 4001", name, code)
		}
		if a := call(t, "GET", n.http+"/v1/conversations/"+ids.Private(alice, alice)+"/messages", tok, nil); a.status != http.StatusUnauthorized {
			t.Errorf("%s: history over HTTP: %d", name, a.status)
		}
	}
	good := mint(47*time.Hour, iss, aud)
	c := n.dial(t, client.Options{})
	if _, err := c.Login(ctx(t), good, "web", clientpb.Platform_PLATFORM_WEB, nil); err != nil {
		t.Fatalf("a token within the limits: %v", err)
	}
	n.connect(t, alice, "phone", nil) // /v1/login's token carries iss and aud
}

// handWrittenLogin describes the POST /v1/login the slow-body test writes by hand,
// for checking the answer against docs/openapi.yaml.
func handWrittenLogin(contentLength int64) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "/v1/login", http.NoBody)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = contentLength
	return req
}
