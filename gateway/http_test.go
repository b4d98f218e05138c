package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/auth"
	"actorim/protos/clientpb"
)

// request sends an HTTP request to h; token "" sends no Authorization and
// contentType "" sends no Content-Type. A chunked body has no length.
func (h *harness) request(t *testing.T, method, path, token, contentType, body string, chunked bool) *http.Response {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	if chunked {
		r = io.MultiReader(r)
	}
	if body == "" && !chunked {
		r = nil
	}
	req, err := http.NewRequest(method, h.ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// post sends a JSON body.
func (h *harness) post(t *testing.T, path, token, body string) *http.Response {
	t.Helper()
	return h.request(t, http.MethodPost, path, token, "application/json", body, false)
}

// decode reads a JSON answer with status into v.
func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d %s, want %d", resp.StatusCode, body, status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
}

// fakeAnalytics answers "messages", refuses "bad", fails "down" and knows
// nothing else.
type fakeAnalytics struct{}

func (fakeAnalytics) Analyze(_ context.Context, q AnalyticsQuery) (any, error) {
	switch q.Name {
	case "messages":
		return []int{1, 2}, nil
	case "bad":
		return nil, fmt.Errorf("%w: bucket must be hour or day", ErrBadAnalytics)
	case "down":
		return nil, errors.New("connection refused")
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownAnalytics, q.Name)
}

// TestHTTPEndpoints walks the API's successful answers, so that the error
// cases below fail for the reason they name.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, testConfig(), broadcastBackend{newFakeBackend()})
	h.srv.SetAnalytics(fakeAnalytics{})
	admin := h.adminToken(t)

	var reg map[string]string
	decode(t, h.post(t, "/v1/register", "", `{"user_id": "bob", "password": "bob-pw-1"}`), http.StatusCreated, &reg)
	if reg["user_id"] != "bob" {
		t.Fatalf("register: %v", reg)
	}
	var tok tokenResponse
	decode(t, h.post(t, "/v1/login", "", `{"user_id": "bob", "password": "bob-pw-1"}`), http.StatusOK, &tok)
	if c, err := h.tokens.Verify(tok.Token); err != nil || c.UserID != "bob" || tok.UserID != "bob" {
		t.Fatalf("login: %+v, %v", tok, err)
	}
	if left := time.Until(time.UnixMilli(tok.ExpiresAtMs)); left < 23*time.Hour || left > 25*time.Hour {
		t.Fatalf("token expires in %v, want the 24h default", left)
	}
	var hist map[string]any
	decode(t, h.request(t, http.MethodGet, "/v1/conversations/p:alice:bob/messages?before_seq=5&limit=2", tok.Token, "", "", false), http.StatusOK, &hist)
	if hist["hasMore"] != true {
		t.Fatalf("history: %v", hist)
	}

	for _, body := range []string{`{"user_id": "carol"}`, `{"user_id": "carol"}`, `{"user_id": "dave", "password": "dave-pw-1"}`} {
		var p map[string]string
		decode(t, h.post(t, "/v1/admin/users", admin, body), http.StatusOK, &p)
	}
	decode(t, h.post(t, "/v1/login", "", `{"user_id": "dave", "password": "dave-pw-1"}`), http.StatusOK, &tok)

	var ack map[string]any
	decode(t, h.post(t, "/v1/admin/users/bob/messages", admin, `{"clientMsgId": "order-42", "to": "alice", "content": {"text": "shipped"}}`), http.StatusOK, &ack)
	if ack["clientMsgId"] != "order-42" {
		t.Fatalf("admin send: %v", ack)
	}
	var rev map[string]any
	decode(t, h.request(t, http.MethodPost, "/v1/admin/users/dave/revoke-tokens", admin, "", "", false), http.StatusOK, &rev)
	if rev["user_id"] != "dave" || rev["kicked"] != float64(0) {
		t.Fatalf("revoke: %v", rev)
	}
	var bc map[string]any
	decode(t, h.post(t, "/v1/admin/broadcast", admin, `{"channel": "news", "content": {"text": "hi"}}`), http.StatusOK, &bc)
	if bc["conversation_id"] != "s:news" {
		t.Fatalf("broadcast: %v", bc)
	}
	var an map[string]any
	decode(t, h.request(t, http.MethodGet, "/v1/admin/analytics/messages?from=2026-01-01&limit=5", admin, "", "", false), http.StatusOK, &an)
	if an["query"] != "messages" || an["result"] == nil {
		t.Fatalf("analytics: %v", an)
	}
}

// TestHTTPErrors: every refusal is {"error": {"code", "message"}} with the
// status of its code (clientpb.HTTPStatus), 415 for a wrong content type and 501 for
// an unsupported endpoint.
func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	aliceHash, err := auth.HashPassword("alice-pw-1")
	if err != nil {
		t.Fatal(err)
	}
	h.be.accounts["alice"] = aliceHash
	h.be.revoked["carol"] = time.Now().Add(time.Hour)
	user := h.userToken(t, "alice")
	admin := h.adminToken(t)
	forged, _, _ := h.tokens.Issue("ops", true) // role admin, but the user secret
	roleless, _, _ := h.admin.Issue("ops", false)
	unavailable := &clientpb.Error{Code: clientpb.ErrorCode_ERR_UNAVAILABLE, Message: "store unavailable"}

	type tc struct {
		name         string
		method, path string
		token        string
		contentType  string
		body         string
		chunked      bool
		fail         *clientpb.Error // every backend call answers this
		status       int
		code         clientpb.ErrorCode
	}
	cases := []tc{
		{name: "register: text/plain", path: "/v1/register", contentType: "text/plain", body: `{}`, status: 415, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: no content type", path: "/v1/register", contentType: "none", body: `{}`, status: 415, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: declared too large", path: "/v1/register", body: strings.Repeat(" ", maxCredentialsBody+1), status: 413, code: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{name: "register: chunked too large", path: "/v1/register", body: strings.Repeat(" ", maxCredentialsBody+1), chunked: true, status: 413, code: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{name: "register: not JSON", path: "/v1/register", body: `user_id=bob`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: unknown field", path: "/v1/register", body: `{"user_id": "bob", "password": "bob-pw-1", "admin": true}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: bad user id", path: "/v1/register", body: `{"user_id": "b b", "password": "bob-pw-1"}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: short password", path: "/v1/register", body: `{"user_id": "bob", "password": "pw"}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "register: taken", path: "/v1/register", body: `{"user_id": "alice", "password": "alice-pw-2"}`, status: 409, code: clientpb.ErrorCode_ERR_CONFLICT},
		{name: "register: store down", path: "/v1/register", body: `{"user_id": "bob", "password": "bob-pw-1"}`, fail: unavailable, status: 503, code: clientpb.ErrorCode_ERR_UNAVAILABLE},
		{name: "login: wrong password", path: "/v1/login", body: `{"user_id": "alice", "password": "wrong-pw"}`, status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "login: unknown user", path: "/v1/login", body: `{"user_id": "zed", "password": "zed-pw-1"}`, status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "login: bad user id", path: "/v1/login", body: `{"user_id": "", "password": "zed-pw-1"}`, status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "login: store down", path: "/v1/login", body: `{"user_id": "alice", "password": "alice-pw-1"}`, fail: unavailable, status: 503, code: clientpb.ErrorCode_ERR_UNAVAILABLE},

		{name: "history: no token", method: "GET", path: "/v1/conversations/p:alice:bob/messages", status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "history: garbage token", method: "GET", path: "/v1/conversations/p:alice:bob/messages", token: "garbage", status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "history: admin token", method: "GET", path: "/v1/conversations/p:alice:bob/messages", token: admin, status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "history: revoked token", method: "GET", path: "/v1/conversations/p:carol:bob/messages", token: h.userToken(t, "carol"), status: 401, code: clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{name: "history: bad before_seq", method: "GET", path: "/v1/conversations/p:alice:bob/messages?before_seq=-1", token: user, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "history: bad limit", method: "GET", path: "/v1/conversations/p:alice:bob/messages?limit=x", token: user, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "history: not a member", method: "GET", path: "/v1/conversations/g:g1/messages", token: user, fail: &clientpb.Error{Code: clientpb.ErrorCode_ERR_NOT_MEMBER, Message: "no"}, status: 403, code: clientpb.ErrorCode_ERR_NOT_MEMBER},

		{name: "admin send: bad user in path", path: "/v1/admin/users/b%20b/messages", token: admin, body: `{}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "admin send: not a Send", path: "/v1/admin/users/bob/messages", token: admin, body: `{"to": 5}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "admin send: too large", path: "/v1/admin/users/bob/messages", token: admin, body: strings.Repeat(" ", maxSendBody+1), status: 413, code: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{name: "admin send: unknown sender", path: "/v1/admin/users/bob/messages", token: admin, body: `{"to": "alice"}`, fail: &clientpb.Error{Code: clientpb.ErrorCode_ERR_NOT_FOUND, Message: "no"}, status: 404, code: clientpb.ErrorCode_ERR_NOT_FOUND},
		{name: "admin send: blocked", path: "/v1/admin/users/bob/messages", token: admin, body: `{"to": "alice"}`, fail: &clientpb.Error{Code: clientpb.ErrorCode_ERR_BLOCKED, Message: "no"}, status: 403, code: clientpb.ErrorCode_ERR_BLOCKED},
		{name: "provision: bad user id", path: "/v1/admin/users", token: admin, body: `{"user_id": "b b"}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "provision: short password", path: "/v1/admin/users", token: admin, body: `{"user_id": "bob", "password": "pw"}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "revoke: bad user in path", path: "/v1/admin/users/b%20b/revoke-tokens", token: admin, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "revoke: future time", path: "/v1/admin/users/bob/revoke-tokens", token: admin, body: fmt.Sprintf(`{"before_ms": %d}`, time.Now().Add(time.Hour).UnixMilli()), status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "revoke: negative time", path: "/v1/admin/users/bob/revoke-tokens", token: admin, body: `{"before_ms": -1}`, status: 400, code: clientpb.ErrorCode_ERR_BAD_REQUEST},
		{name: "revoke: too large", path: "/v1/admin/users/bob/revoke-tokens", token: admin, body: strings.Repeat(" ", maxRevokeBody+1), status: 413, code: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE},
		{name: "broadcast: unsupported", path: "/v1/admin/broadcast", token: admin, body: `{"content": {"text": "hi"}}`, status: 501, code: clientpb.ErrorCode_ERR_UNSUPPORTED},
		{name: "analytics: no archive", method: "GET", path: "/v1/admin/analytics/messages", token: admin, status: 503, code: clientpb.ErrorCode_ERR_UNAVAILABLE},
	}
	// Every admin endpoint: 401 without a valid token, 403 with a valid one
	// that is not an admin token signed with the admin secret.
	for _, ep := range []struct{ method, path string }{
		{"POST", "/v1/admin/users"}, {"POST", "/v1/admin/users/bob/messages"}, {"POST", "/v1/admin/users/bob/revoke-tokens"},
		{"GET", "/v1/admin/analytics/messages"}, {"POST", "/v1/admin/broadcast"},
	} {
		for _, a := range []struct {
			who    string
			token  string
			status int
			code   clientpb.ErrorCode
		}{
			{"no token", "", 401, clientpb.ErrorCode_ERR_UNAUTHENTICATED},
			{"garbage token", "garbage", 401, clientpb.ErrorCode_ERR_UNAUTHENTICATED},
			{"user token", user, 403, clientpb.ErrorCode_ERR_FORBIDDEN},
			{"admin role under the user secret", forged, 403, clientpb.ErrorCode_ERR_FORBIDDEN},
			{"admin secret without the role", roleless, 403, clientpb.ErrorCode_ERR_FORBIDDEN},
		} {
			cases = append(cases, tc{name: ep.path + ": " + a.who, method: ep.method, path: ep.path, token: a.token, body: `{}`, status: a.status, code: a.code})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "" {
				c.method = http.MethodPost
			}
			switch c.contentType {
			case "":
				if c.body != "" {
					c.contentType = "application/json"
				}
			case "none":
				c.contentType = ""
			}
			h.be.setErr(c.fail)
			defer h.be.setErr(nil)
			wantError(t, h.request(t, c.method, c.path, c.token, c.contentType, c.body, c.chunked), c.status, c.code)
		})
	}
}

// TestAnalyticsErrors: an unknown query is 404, a refused one 400, a failed
// one 503, and bad parameters 400.
func TestAnalyticsErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	h.srv.SetAnalytics(fakeAnalytics{})
	admin := h.adminToken(t)
	for _, c := range []struct {
		query  string
		status int
		code   clientpb.ErrorCode
	}{
		{"nonsense", 404, clientpb.ErrorCode_ERR_NOT_FOUND},
		{"bad", 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"down", 503, clientpb.ErrorCode_ERR_UNAVAILABLE},
		{"messages?to=yesterday", 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"messages?from=2026-13-01", 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"messages?limit=0", 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"messages?limit=10001", 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		t.Run(c.query, func(t *testing.T) {
			wantError(t, h.request(t, http.MethodGet, "/v1/admin/analytics/"+c.query, admin, "", "", false), c.status, c.code)
		})
	}
}

// TestBroadcastErrors: a broadcast needs a Content; the backend's refusal
// keeps its code.
func TestBroadcastErrors(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, testConfig(), broadcastBackend{newFakeBackend()})
	admin := h.adminToken(t)
	for _, c := range []struct {
		name, body string
		fail       *clientpb.Error
		status     int
		code       clientpb.ErrorCode
	}{
		{"no content", `{"channel": "news"}`, nil, 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"not a Content", `{"content": {"text": 5}}`, nil, 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"refused", `{"id": "x", "content": {"text": "hi"}}`, &clientpb.Error{Code: clientpb.ErrorCode_ERR_BAD_REQUEST, Message: "bad id"}, 400, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"store down", `{"content": {"text": "hi"}}`, &clientpb.Error{Code: clientpb.ErrorCode_ERR_UNAVAILABLE, Message: "down"}, 503, clientpb.ErrorCode_ERR_UNAVAILABLE},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.be.setErr(c.fail)
			defer h.be.setErr(nil)
			wantError(t, h.post(t, "/v1/admin/broadcast", admin, c.body), c.status, c.code)
		})
	}
}

// wantRetryAfter checks a refusal carries Retry-After of whole seconds
// within [lo, hi].
func wantRetryAfter(t *testing.T, resp *http.Response, lo, hi int) {
	t.Helper()
	n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || n < lo || n > hi {
		t.Fatalf("Retry-After %q, want %d to %d", resp.Header.Get("Retry-After"), lo, hi)
	}
}

// TestLoginLimits: register and login beyond the address's rate, logins of
// an account locked by failures, and logins beyond the hashing bounds are
// refused with 429 or 503 and Retry-After.
func TestLoginLimits(t *testing.T) {
	t.Parallel()
	t.Run("address rate", func(t *testing.T) {
		cfg := testConfig()
		cfg.LoginRate, cfg.LoginBurst = 0.1, 2
		h := newHarness(t, cfg)
		for range 2 { // a bad user id: counted, refused before any hashing
			wantError(t, h.post(t, "/v1/register", "", `{"user_id": "b b", "password": "pw-pw-pw"}`), 400, clientpb.ErrorCode_ERR_BAD_REQUEST)
		}
		for _, path := range []string{"/v1/register", "/v1/login"} {
			resp := h.post(t, path, "", `{"user_id": "bob", "password": "bob-pw-1"}`)
			wantRetryAfter(t, resp, 9, 10)
			wantError(t, resp, 429, clientpb.ErrorCode_ERR_RATE_LIMITED)
		}
	})

	t.Run("account backoff", func(t *testing.T) {
		cfg := testConfig()
		cfg.LoginFreeFailures = 1
		h := newHarness(t, cfg)
		hash, err := auth.HashPassword("alice-pw-1")
		if err != nil {
			t.Fatal(err)
		}
		h.be.accounts["alice"] = hash
		for range 2 {
			wantError(t, h.post(t, "/v1/login", "", `{"user_id": "alice", "password": "wrong-pw"}`), 401, clientpb.ErrorCode_ERR_UNAUTHENTICATED)
		}
		resp := h.post(t, "/v1/login", "", `{"user_id": "alice", "password": "alice-pw-1"}`)
		wantRetryAfter(t, resp, 1, 1)
		wantError(t, resp, 429, clientpb.ErrorCode_ERR_RATE_LIMITED)
	})

	t.Run("hashing busy", func(t *testing.T) {
		cfg := testConfig()
		cfg.Hashing = auth.HasherConfig{Concurrency: 1, Wait: time.Millisecond}
		h := newHarness(t, cfg)
		var wg sync.WaitGroup
		resps := make([]*http.Response, 6)
		errs := make([]error, len(resps))
		for i := range resps {
			wg.Go(func() {
				body := fmt.Sprintf(`{"user_id": "u%d", "password": "pw-pw-pw"}`, i)
				resps[i], errs[i] = h.ts.Client().Post(h.ts.URL+"/v1/login", "application/json", strings.NewReader(body))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, resp := range resps {
			if resp.StatusCode == http.StatusServiceUnavailable {
				busy++
				wantRetryAfter(t, resp, 1, 1)
				wantError(t, resp, 503, clientpb.ErrorCode_ERR_UNAVAILABLE)
			} else {
				wantError(t, resp, 401, clientpb.ErrorCode_ERR_UNAUTHENTICATED)
			}
		}
		if busy == 0 {
			t.Fatal("six logins at once with one hashing slot: none refused")
		}
	})
}

// TestBodyDeclaredTooLarge: a body declared over the limit is refused with
// 413 before it is sent, and the connection is closed.
func TestBodyDeclaredTooLarge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	c, err := net.Dial("tcp", strings.TrimPrefix(h.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	if !resp.Close {
		t.Fatal("connection kept open after a refused body")
	}
	wantError(t, resp, http.StatusRequestEntityTooLarge, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE)
}
