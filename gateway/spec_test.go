package gateway

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/internal/apispec"
)

// patternRecorder is a routeMux that keeps the patterns registered on it.
type patternRecorder struct{ patterns []string }

func (p *patternRecorder) Handle(pattern string, _ http.Handler) {
	p.patterns = append(p.patterns, pattern)
}

func (p *patternRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	p.patterns = append(p.patterns, pattern)
}

// notInSpec are the patterns that are no endpoint of their own: the web
// app's guard that keeps /v1/ paths the API's (a 404).
var notInSpec = map[string]string{"/v1/": "404 guard of the web app"}

// TestRoutesMatchSpec: every route the listeners register (a node with every
// option on: web app, metrics) is in docs/openapi.yaml, and every path the
// spec documents is registered. A pattern without a method mounts a prefix
// (the media API, package media checks its own routes); a method pattern
// must be documented with that method (GET also serves HEAD).
func TestRoutesMatchSpec(t *testing.T) {
	spec, err := apispec.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.WebApp = fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}
	reg := prometheus.NewRegistry()
	srv := New(cfg, newFakeBackend(), nil, nil, reg, reg, nil, nil)
	rec := &patternRecorder{}
	srv.publicRoutes(rec)
	srv.adminListenerRoutes(rec)

	documented := map[apispec.Operation]bool{}
	for _, op := range spec.Operations() {
		documented[op] = true
	}
	covered := map[apispec.Operation]bool{}
	for _, pattern := range rec.patterns {
		if _, ok := notInSpec[pattern]; ok {
			continue
		}
		method, path, hasMethod := strings.Cut(pattern, " ")
		if !hasMethod {
			method, path = "", pattern
		}
		found := false
		for op := range documented {
			if routeCovers(method, path, op) {
				covered[op], found = true, true
			}
		}
		if !found {
			t.Errorf("route %q is registered but not in docs/openapi.yaml", pattern)
		}
	}
	for op := range documented {
		if !covered[op] {
			t.Errorf("docs/openapi.yaml documents %s, which no route serves", op)
		}
	}
}

// routeCovers reports whether the route method+path (method "" for a mount
// of every method) serves op.
func routeCovers(method, path string, op apispec.Operation) bool {
	if method == "" {
		if path == "/" { // the web app; its files are not enumerated
			return op.Path == "/" && op.Method == http.MethodGet
		}
		return op.Path == path || strings.HasPrefix(op.Path, strings.TrimSuffix(path, "/")+"/")
	}
	return op.Path == path && (op.Method == method || method == http.MethodGet && op.Method == http.MethodHead)
}
