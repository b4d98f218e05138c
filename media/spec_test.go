package media

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"actorim/internal/apispec"
)

// TestRoutesMatchSpec: the media API's routes and docs/openapi.yaml agree
// both ways. The mux's method routes must be documented (GET serves HEAD
// too); under the tus prefix, which routes by itself, every method on the
// collection and on an upload is tried: it must be served (not 405) exactly
// when the spec documents it. Every answer is validated against the spec.
func TestRoutesMatchSpec(t *testing.T) {
	spec, err := apispec.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[apispec.Operation]bool{}
	for _, op := range spec.Operations() {
		if strings.HasPrefix(op.Path, "/v1/media") || strings.HasPrefix(op.Path, uploadsPath) {
			documented[op] = false
		}
	}

	e := newTestService(t)
	var patterns []string
	e.svc.register(func(pattern string, _ http.Handler) { patterns = append(patterns, pattern) })
	tusMounted := false
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			if p != uploadsPath {
				t.Errorf("route %q mounts a prefix the test does not probe", p)
			}
			tusMounted = true
			continue
		}
		found := false
		for op := range documented {
			if op.Path == path && (op.Method == method || method == http.MethodGet && op.Method == http.MethodHead) {
				documented[op], found = true, true
			}
		}
		if !found {
			t.Errorf("route %q is registered but not in docs/openapi.yaml", p)
		}
	}
	if !tusMounted {
		t.Fatalf("no %s mount among %v", uploadsPath, patterns)
	}

	validator := apispec.NewRecorder(spec)
	client := e.srv.Client()
	client.Transport = validator.Transport(client.Transport)
	loc := e.tusCreate(t, "alice", "a.bin", 10)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("b.bin"))
	// DELETE last: it ends the upload the other methods are tried on.
	methods := []string{"GET", "POST", "PUT", "PATCH", "HEAD", "OPTIONS", "DELETE"}
	for _, target := range []struct{ url, specPath string }{
		{uploadsPath, uploadsPath},
		{u.Path, uploadsPath + "{id}"},
	} {
		for _, m := range methods {
			header := []string{"Tus-Resumable", "1.0.0"}
			switch m {
			case "POST":
				header = append(header, "Upload-Length", "1", "Upload-Metadata", meta)
			case "PATCH":
				header = append(header, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
			}
			res, body := e.request(t, m, target.url, "alice", strings.NewReader(""), header...)
			served := res.StatusCode != http.StatusMethodNotAllowed
			op := apispec.Operation{Method: m, Path: target.specPath}
			_, isDoc := documented[op]
			if served != isDoc {
				t.Errorf("%s %s: answered %d %s; documented: %v", m, target.url, res.StatusCode, body, isDoc)
			}
			if isDoc {
				documented[op] = true
			}
		}
	}
	for op, seen := range documented {
		if !seen {
			t.Errorf("docs/openapi.yaml documents %s, which no route serves", op)
		}
	}
	for _, f := range validator.Failures() {
		t.Errorf("answer not as documented: %s", f)
	}
}
