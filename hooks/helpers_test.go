package hooks

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const testSecret = "whsec-test"

// received is one request a receiver got, its signature checked.
type received struct {
	id, event string
	body      []byte
	sigErr    error
}

// receiver is a real HTTP server standing in for an app server: it checks
// every request's signature with testSecret, records it and answers with
// answer.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	seen chan received // every request, in arrival order, when not full
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	return newReceiverConnState(t, answer, nil)
}

// newReceiverConnState is newReceiver whose server reports its
// connections' states to connState.
func newReceiverConnState(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int), connState func(net.Conn, http.ConnState)) *receiver {
	t.Helper()
	rc := &receiver{seen: make(chan received, 1024)}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := received{
			id: r.Header.Get(HeaderID), event: r.Header.Get(HeaderEvent), body: body,
			sigErr: Verify(r.Header.Get(HeaderSignature), body, testSecret, 0, time.Now()),
		}
		rc.mu.Lock()
		rc.got = append(rc.got, g)
		n := len(rc.got)
		rc.mu.Unlock()
		select {
		case rc.seen <- g:
		default:
		}
		answer(w, r, n)
	}))
	rc.Config.ConnState = connState
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) target() Target {
	return Target{URL: rc.URL, Secrets: []string{testSecret}}
}

// ok answers 200 with no body.
func ok(http.ResponseWriter, *http.Request, int) {}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
