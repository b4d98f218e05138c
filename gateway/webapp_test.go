package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
)

// TestWebApp: the app's index at /, its hashed assets cached for good; a
// missing file, a directory and any /v1/ path not the app's; other methods
// refused; the API unchanged beside it.
func TestWebApp(t *testing.T) {
	cfg := testConfig()
	cfg.WebApp = fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><title>actorim</title>")},
		"assets/app-1a2b.js":  {Data: []byte("console.log(1)")},
		"assets/app-1a2b.css": {Data: []byte("body{}")},
	}
	h := newHarness(t, cfg)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp := h.request(t, http.MethodGet, path, "", "", "", false)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"/", "/index.html"} {
		resp, body := get(p)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>actorim</title>") ||
			resp.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %q %v", p, resp.StatusCode, body, resp.Header)
		}
	}
	resp, body := get("/assets/app-1a2b.js")
	if resp.StatusCode != http.StatusOK || body != "console.log(1)" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET an asset: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, p := range []string{"/assets/missing.js", "/v1/nothing", "/v1/", "/settings", "/metrics", "/debug/pprof/", "/assets/"} {
		if resp, body := get(p); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "<title>") {
			t.Errorf("GET %s: %d %q, want the 404 of no file", p, resp.StatusCode, body)
		}
	}
	if resp := h.post(t, "/", "", `{}`); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
	if resp, body := get("/healthz"); resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz beside the app: %d %q", resp.StatusCode, body)
	}
	if resp := h.post(t, "/v1/login", "", `{"user_id":"nobody","password":"password"}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/login beside the app: %d, want 401", resp.StatusCode)
	}
}

// TestWebAppOff: without WebApp, / is a 404.
func TestWebAppOff(t *testing.T) {
	h := newHarness(t, testConfig())
	resp := h.request(t, http.MethodGet, "/", "", "", "", false)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET / without an app: %d, want 404", resp.StatusCode)
	}
}
