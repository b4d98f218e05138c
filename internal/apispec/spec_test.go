package apispec

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"actorim/protos/clientpb"
)

var (
	specOnce sync.Once
	spec     *Spec
	specErr  error
)

func loadSpec(t *testing.T) *Spec {
	t.Helper()
	specOnce.Do(func() { spec, specErr = LoadDefault() })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return spec
}

// TestSpecIsValid loads docs/openapi.yaml, which validates it as OpenAPI 3.
func TestSpecIsValid(t *testing.T) {
	if n := len(loadSpec(t).Operations()); n < 20 {
		t.Fatalf("%d operations documented", n)
	}
}

// TestErrorCodesMatchProtocol keeps the spec's ErrorCode enum equal to the
// protocol's ErrorCode (protos/clientpb).
func TestErrorCodesMatchProtocol(t *testing.T) {
	got := loadSpec(t).Enum("ErrorCode")
	var want []string
	for _, name := range clientpb.ErrorCode_name {
		want = append(want, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("spec ErrorCode enum %v\nprotocol ErrorCode     %v", got, want)
	}
}

const (
	jsonCT  = "application/json"
	errBody = `{"error":{"code":"ERR_BAD_REQUEST","message":"no"}}`
	token   = `{"user_id":"alice","token":"t","expires_at_ms":1}`
	fileID  = "abcdefghijklmnopqrstuvwxyz"
	sha     = `"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
)

// exchange builds an exchange; hdr holds request headers ("req:Name",
// value) and answer headers ("Name", value) in pairs.
func exchange(method, target, reqBody string, status int, resBody string, hdr ...string) Exchange {
	var body io.Reader
	if reqBody != "" {
		body = strings.NewReader(reqBody)
	}
	req := httptest.NewRequest(method, target, body)
	if reqBody != "" {
		req.Header.Set("Content-Type", jsonCT)
	}
	res := &http.Response{StatusCode: status, Header: http.Header{}, Request: req}
	if resBody != "" {
		res.Header.Set("Content-Type", jsonCT)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if name, ok := strings.CutPrefix(hdr[i], "req:"); ok {
			req.Header.Set(name, hdr[i+1])
		} else {
			res.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return Exchange{Request: req, RequestBody: []byte(reqBody), Response: res, ResponseBody: []byte(resBody)}
}

func TestValidate(t *testing.T) {
	s := loadSpec(t)
	creds := `{"user_id":"alice","password":"secret-1"}`
	bearer := []string{"req:Authorization", "Bearer x"}
	fileHeaders := []string{"Content-Type", "image/png", "ETag", sha, "Cache-Control", "private, max-age=31536000, immutable",
		"Content-Disposition", "inline; filename*=UTF-8''cat.png", "Content-Security-Policy", "sandbox; default-src 'none'",
		"X-Content-Type-Options", "nosniff", "Accept-Ranges", "bytes", "req:Authorization", "Bearer x"}
	cases := []struct {
		name    string
		x       Exchange
		wantErr string // "" for none
		target  error  // errors.Is, when set
	}{
		{name: "login ok", x: exchange("POST", "/v1/login", creds, 200, token)},
		{name: "refusal ok", x: exchange("POST", "/v1/login", `{}`, 400, errBody)},
		{name: "register ok", x: exchange("POST", "/v1/register", creds, 201, `{"user_id":"alice"}`)},
		{name: "undocumented path", x: exchange("GET", "/v1/nothing", "", 200, `{}`), wantErr: "path not in the spec", target: ErrUndocumentedPath},
		{name: "undocumented method", x: exchange("GET", "/v1/login", "", 200, token), wantErr: "method not in the spec", target: ErrUndocumentedMethod},
		{name: "wrong status", x: exchange("POST", "/v1/login", creds, 201, token), wantErr: "status 201 is not documented"},
		{name: "missing required field", x: exchange("POST", "/v1/login", creds, 200, `{"user_id":"alice","expires_at_ms":1}`), wantErr: `"token"`},
		{name: "extra field", x: exchange("POST", "/v1/login", creds, 200, `{"user_id":"alice","token":"t","expires_at_ms":1,"role":"x"}`), wantErr: "role"},
		{name: "wrong type", x: exchange("POST", "/v1/login", creds, 200, `{"user_id":"alice","token":"t","expires_at_ms":"1"}`), wantErr: "expires_at_ms"},
		{name: "wrong content type", x: exchange("POST", "/v1/login", creds, 200, token, "Content-Type", "text/plain"), wantErr: "Content-Type"},
		{name: "unknown error code", x: exchange("POST", "/v1/login", `{}`, 400, `{"error":{"code":"ERR_NOPE","message":"no"}}`), wantErr: "ERR_NOPE"},
		{name: "flat error body", x: exchange("POST", "/v1/login", `{}`, 400, `{"code":"ERR_BAD_REQUEST","message":"no"}`), wantErr: "error"},
		{name: "missing Retry-After on 429", x: exchange("POST", "/v1/login", creds, 429, errBody), wantErr: "Retry-After"},
		{name: "429 with Retry-After", x: exchange("POST", "/v1/login", creds, 429, errBody, "Retry-After", "3")},
		{name: "accepted request with an undocumented field", x: exchange("POST", "/v1/register", `{"user_id":"alice","password":"secret-1","admin":true}`, 201, `{"user_id":"alice"}`), wantErr: "request"},
		{name: "accepted request with a bad path user", x: exchange("POST", "/v1/admin/users/a%20b/revoke-tokens", "", 200, `{"user_id":"a b","revoked_before_ms":1,"kicked":0}`, "req:Authorization", "Bearer x"), wantErr: "request"},
		{name: "history ok", x: exchange("GET", "/v1/conversations/p:a:b/messages?limit=2", "", 200,
			`{"entries":[{"seq":"3","message":{"id":"9","conversationId":"p:a:b","from":"a","to":"b","sentAtMs":"17","content":{"text":"hi"}}}],"hasMore":true}`, bearer...)},
		{name: "history uint64 as number", x: exchange("GET", "/v1/conversations/p:a:b/messages", "", 200, `{"entries":[{"seq":3}]}`, bearer...), wantErr: "seq"},
		{name: "history content of two kinds", x: exchange("GET", "/v1/conversations/p:a:b/messages", "", 200, `{"entries":[{"seq":"3","message":{"content":{"text":"a","emoji":"b"}}}]}`, bearer...), wantErr: "content"},
		{name: "history without a token answered 200", x: exchange("GET", "/v1/conversations/p:a:b/messages", "", 200, `{}`), wantErr: "security"},
		{name: "history bad limit answered 200", x: exchange("GET", "/v1/conversations/p:a:b/messages?limit=x", "", 200, `{}`, bearer...), wantErr: "limit"},
		{name: "download ok", x: func() Exchange {
			x := exchange("GET", "/v1/media/"+fileID, "", 200, "", fileHeaders...)
			x.ResponseBodyUnknown = true
			return x
		}()},
		{name: "download without ETag", x: func() Exchange {
			x := exchange("GET", "/v1/media/"+fileID, "", 200, "", fileHeaders...)
			x.Response.Header.Del("ETag")
			x.ResponseBodyUnknown = true
			return x
		}(), wantErr: "ETag"},
		{name: "media info extra field", x: exchange("GET", "/v1/media/"+fileID+"/info", "", 200, `{"file_id":"`+fileID+`","owner":"alice"}`,
			"Cache-Control", "no-store", "req:Authorization", "Bearer x"), wantErr: "owner"},
		{name: "tus HEAD without Upload-Offset", x: exchange("HEAD", "/v1/uploads/"+fileID, "", 200, "",
			"Tus-Resumable", "1.0.0", "Upload-Length", "5", "Cache-Control", "no-store", "req:Authorization", "Bearer x"), wantErr: "Upload-Offset"},
		{name: "tus HEAD ok", x: exchange("HEAD", "/v1/uploads/"+fileID, "", 200, "",
			"Tus-Resumable", "1.0.0", "Upload-Offset", "2", "Upload-Length", "5", "Cache-Control", "no-store", "req:Authorization", "Bearer x")},
		{name: "tus plain-text error", x: exchange("PATCH", "/v1/uploads/"+fileID, "", 409, "", "Content-Type", "text/plain; charset=utf-8", "Tus-Resumable", "1.0.0")},
		{name: "websocket handshake", x: exchange("GET", "/ws", "", 101, "", "req:Upgrade", "websocket", "req:Connection", "Upgrade",
			"req:Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "req:Sec-WebSocket-Version", "13",
			"Upgrade", "websocket", "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")},
		{name: "websocket unknown subprotocol", x: exchange("GET", "/ws", "", 101, "", "req:Upgrade", "websocket", "req:Connection", "Upgrade",
			"req:Sec-WebSocket-Key", "k", "req:Sec-WebSocket-Version", "13",
			"Upgrade", "websocket", "Sec-WebSocket-Accept", "a", "Sec-WebSocket-Protocol", "mqtt"), wantErr: "Sec-WebSocket-Protocol"},
		{name: "healthz text", x: exchange("GET", "/healthz", "", 200, "ok\n", "Content-Type", "text/plain; charset=utf-8")},
		{name: "analytics empty series", x: exchange("GET", "/v1/admin/analytics/messages", "", 200,
			`{"query":"messages","from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","bucket":"","elapsed_ms":3,"result":null}`, bearer...)},
		{name: "analytics unknown row", x: exchange("GET", "/v1/admin/analytics/messages", "", 200,
			`{"query":"messages","from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","bucket":"","elapsed_ms":3,"result":[{"when":1}]}`, bearer...), wantErr: "result"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Validate(c.x)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("no error, want one about %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q does not mention %q", err, c.wantErr)
			case c.target != nil && !errors.Is(err, c.target):
				t.Fatalf("error %v is not %v", err, c.target)
			}
		})
	}
}

// TestRecorder drives a fake server through the Recorder's transport and
// proxy: documented answers pass, drift is reported, an undocumented path
// answered 404 is a probe, and an exempt prefix is not checked.
func TestRecorder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = io.WriteString(w, "ok\n")
		case "/v1/login":
			w.Header().Set("Content-Type", jsonCT)
			_, _ = io.WriteString(w, `{"user_id":"alice","token":"t"}`) // no expires_at_ms
		case "/debug/pprof/":
			_, _ = io.WriteString(w, "<html>")
		case "/v1/secret":
			_, _ = io.WriteString(w, "undocumented")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	rec := NewRecorder(loadSpec(t))
	rec.Exempt = []string{"/debug/pprof/"}
	hc := &http.Client{Transport: rec.Transport(nil)}
	u, _ := url.Parse(srv.URL)
	proxy := httptest.NewServer(rec.Proxy(u))
	defer proxy.Close()

	for _, base := range []string{srv.URL, proxy.URL} {
		for _, call := range []struct{ method, path, body string }{
			{"GET", "/healthz", ""}, {"POST", "/v1/login", `{"user_id":"alice","password":"secret-1"}`},
			{"GET", "/debug/pprof/", ""}, {"GET", "/nowhere", ""}, {"GET", "/v1/secret", ""},
		} {
			req, _ := http.NewRequest(call.method, base+call.path, strings.NewReader(call.body))
			req.Header.Set("Content-Type", jsonCT)
			client := hc
			if base == proxy.URL {
				client = http.DefaultClient
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if call.path == "/healthz" && string(b) != "ok\n" {
				t.Fatalf("the recorder changed the body: %q", b)
			}
		}
	}
	var got []string
	for _, f := range rec.Failures() {
		got = append(got, f.Method+" "+f.Path)
	}
	sort.Strings(got)
	want := []string{"GET /v1/secret", "GET /v1/secret", "POST /v1/login", "POST /v1/login"}
	if !slices.Equal(got, want) {
		t.Fatalf("failures %v, want %v\n%v", got, want, rec.Failures())
	}
	sum := rec.Summary()
	if !strings.Contains(sum, "6 responses validated (4 failed), 2 distinct operations") ||
		!strings.Contains(sum, "2 answers to undocumented paths") || !strings.Contains(sum, "2 exempt") {
		t.Fatalf("summary:\n%s", sum)
	}
}
