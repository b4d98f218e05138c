package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// corsRequest sends method to path with an Origin and, for a preflight,
// the method and headers it asks for (lower case and sorted, as browsers
// send them).
func (h *harness) corsRequest(t *testing.T, method, path, origin, askMethod, askHeaders string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	if askMethod != "" {
		req.Header.Set("Access-Control-Request-Method", askMethod)
	}
	if askHeaders != "" {
		req.Header.Set("Access-Control-Request-Headers", askHeaders)
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCORS: a page of an allowed origin gets its preflight answered and
// may read the answers of the public API (never with credentials); a page
// of another origin gets no CORS header (its browser keeps the answer from
// it); the admin API never answers cross-origin.
func TestCORS(t *testing.T) {
	const app, evil = "https://chat.example.com", "https://evil.example.net"
	cfg := testConfig()
	cfg.CORSOrigins = []string{app, "https://*.example.org"}
	h := newHarness(t, cfg)

	pre := h.corsRequest(t, http.MethodOptions, "/v1/login", app, http.MethodPost, "authorization,content-type")
	if pre.StatusCode/100 != 2 || pre.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), http.MethodPost) ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "authorization") ||
		pre.Header.Get("Access-Control-Max-Age") != "600" || pre.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight of an allowed origin: %d %v", pre.StatusCode, pre.Header)
	}
	// tus's headers, for uploads from a page.
	if pre := h.corsRequest(t, http.MethodOptions, "/v1/uploads/", app, http.MethodPatch, "content-type,tus-resumable,upload-offset"); pre.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("preflight of a tus PATCH: %d %v", pre.StatusCode, pre.Header)
	}
	if pre := h.corsRequest(t, http.MethodOptions, "/v1/login", "https://a.b.example.org", http.MethodPost, "content-type"); pre.Header.Get("Access-Control-Allow-Origin") != "https://a.b.example.org" {
		t.Fatalf("preflight of a wildcard origin: %d %v", pre.StatusCode, pre.Header)
	}

	// The answer itself carries the origin, and exposes what a client reads.
	resp := h.corsRequest(t, http.MethodGet, "/healthz", app, "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Fatalf("GET from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}

	// Refusals: another origin, a method the API does not take, and the
	// admin API from an allowed origin.
	for _, c := range []struct{ name, path, origin, method, headers string }{
		{"another origin", "/v1/login", evil, http.MethodPost, "content-type"},
		{"a look-alike of the wildcard", "/v1/login", "https://example.org.evil.net", http.MethodPost, "content-type"},
		{"a method the API does not take", "/v1/login", app, http.MethodPut, ""},
		{"a header the API does not take", "/v1/login", app, http.MethodPost, "x-session-cookie"},
		{"the admin API", "/v1/admin/users", app, http.MethodPost, "authorization"},
	} {
		if pre := h.corsRequest(t, http.MethodOptions, c.path, c.origin, c.method, c.headers); pre.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: preflight allowed: %d %v", c.name, pre.StatusCode, pre.Header)
		}
	}
	if resp := h.corsRequest(t, http.MethodGet, "/healthz", evil, "", ""); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin carries %v", resp.Header)
	}
}

// TestCORSOffByDefault: without CORSOrigins no origin is allowed, and a
// preflight gets no CORS header.
func TestCORSOffByDefault(t *testing.T) {
	h := newHarness(t, testConfig())
	pre := h.corsRequest(t, http.MethodOptions, "/v1/login", "https://chat.example.com", http.MethodPost, "content-type")
	if pre.Header.Get("Access-Control-Allow-Origin") != "" || pre.StatusCode/100 == 2 {
		t.Fatalf("preflight without CORSOrigins: %d %v", pre.StatusCode, pre.Header)
	}
}

func TestCheckCORSOrigin(t *testing.T) {
	for _, o := range []string{"*", "https://chat.example.com", "http://127.0.0.1:5173", "https://*.example.com", "http://[::1]:8080"} {
		if err := CheckCORSOrigin(o); err != nil {
			t.Errorf("%q refused: %v", o, err)
		}
	}
	for _, o := range []string{"", "chat.example.com", "ftp://x.com", "https://x.com/", "https://x.com/path", "https://*", "https://a.*.com", "https://x.com?q", "https://user@x.com", "null"} {
		if err := CheckCORSOrigin(o); err == nil {
			t.Errorf("%q accepted", o)
		}
	}
}
