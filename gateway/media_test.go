package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"actorim/protos/clientpb"
)

type userKey struct{}

// echoMedia answers with the user the gateway authenticated and how many
// body bytes it read.
type echoMedia struct{}

func (echoMedia) WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

func (echoMedia) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, _ := r.Context().Value(userKey{}).(string)
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "user=%q bytes=%d", user, n)
}

func TestMediaRoutes(t *testing.T) {
	h := newHarness(t, testConfig())
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	body := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// Not configured: a clear refusal, not a 404.
	wantError(t, get("/v1/media/x", ""), http.StatusBadRequest, clientpb.ErrorCode_ERR_UNSUPPORTED)

	h.srv.SetMedia(echoMedia{})
	for _, path := range []string{"/v1/media", "/v1/media/abc", "/v1/media/abc/thumb", "/v1/uploads/", "/v1/uploads/abc"} {
		if got := body(get(path, h.userToken(t, "alice"))); got != `user="alice" bytes=0` {
			t.Errorf("%s with a token: %s", path, got)
		}
	}
	// No Authorization: the handler runs without a user (signed links).
	if got := body(get("/v1/media/abc", "")); got != `user="" bytes=0` {
		t.Errorf("without a token: %s", got)
	}
	// A bad or revoked token never reaches the handler.
	wantError(t, get("/v1/media/abc", "not-a-token"), http.StatusUnauthorized, clientpb.ErrorCode_ERR_UNAUTHENTICATED)
	tok := h.userToken(t, "bob")
	time.Sleep(time.Second) // token times have second resolution
	if _, _, e := h.be.RevokeTokens(context.Background(), "bob", time.Now()); e != nil {
		t.Fatal(e)
	}
	wantError(t, get("/v1/media/abc", tok), http.StatusUnauthorized, clientpb.ErrorCode_ERR_UNAUTHENTICATED)
}

// An upload may take longer than the HTTP read timeout of other requests.
func TestMediaOutlivesHTTPTimeouts(t *testing.T) {
	cfg := testConfig()
	cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	h := newHarness(t, cfg)
	h.srv.SetMedia(echoMedia{})
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := pw.Write([]byte(strings.Repeat("x", 1000))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/v1/media", pr)
	req.Header.Set("Authorization", "Bearer "+h.userToken(t, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `user="alice" bytes=8000` {
		t.Fatalf("slow upload: %d %s", resp.StatusCode, b)
	}
}
