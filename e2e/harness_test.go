// Package e2e holds end-to-end tests: real nodes (in-process, or the imnode
// binary where a process must die), real sockets, and the Go client. Nothing
// takes a shortcut past the WebSocket.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"actorim/actors"
	"actorim/auth"
	"actorim/client"
	"actorim/gateway"
	"actorim/internal/nodeproc"
	"actorim/node"
	"actorim/protos/clientpb"
)

const (
	testSecret      = "e2e-secret-0123456789abcdef0123456789"
	testAdminSecret = "e2e-admin-secret-0123456789abcdef0123"
)

// shared is one node used by the tests that need no special configuration;
// sharedLog is its log file.
var (
	shared    *testNode
	sharedLog string
)

func TestMain(m *testing.M) {
	var code int
	func() {
		defer func() { _ = os.RemoveAll(imnodeDir) }()
		if err := startSpecCheck(); err != nil {
			fmt.Fprintln(os.Stderr, "load docs/openapi.yaml:", err)
			code = 1
			return
		}
		n, stop, err := startShared()
		if err != nil {
			fmt.Fprintln(os.Stderr, "start shared node:", err)
			code = 1
			return
		}
		shared = n
		defer func() {
			if err := stop(); err != nil && code == 0 {
				fmt.Fprintln(os.Stderr, "FAIL: shared node:", err)
				code = 1
			}
		}()
		defer stopInfra()
		code = m.Run()
		if !reportSpecCheck() && code == 0 {
			code = 1
		}
		if n := panics.Load(); n > 0 && code == 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d actor panic(s) in the nodes under test\n", n)
			code = 1
		}
	}()
	os.Exit(code)
}

// startShared runs the shared node as a child process. In-process nodes of
// protoactor share globals (gRPC's logger, which every node's start writes)
// that the race detector rightly reports when two nodes live at once; the
// tests' private in-process nodes live one at a time.
func startShared() (*testNode, func() error, error) {
	bin, err := imnodeBinary()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "actorim-e2e-shared-*")
	if err != nil {
		return nil, nil, err
	}
	addr, err := nodeproc.FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	// The suite logs in hundreds of users from one address: no per-address
	// login rate on the shared node (the limit has tests of its own).
	p, err := launch(bin, filepath.Join(dir, "data"), addr, filepath.Join(dir, "imnode.log"),
		"--push-retry", "500ms", "--push-retry-max", "2s", "--login-rate", "-1")
	stop := func() error {
		if p == nil {
			return nil
		}
		err := p.stop()
		if os.Getenv("E2E_NODE_LOGS") != "" {
			if b, rerr := os.ReadFile(p.LogFile()); rerr == nil {
				fmt.Fprintf(os.Stderr, "shared imnode log:\n%s", b)
			}
		}
		_ = os.RemoveAll(dir)
		return err
	}
	if err != nil {
		_ = stop()
		return nil, nil, err
	}
	sharedLog = p.LogFile()
	return p.node(), stop, nil
}

type testNode struct {
	n      *node.Node
	ws     string // ws://host:port/ws
	http   string // http://host:port
	tokens *auth.Tokens
	admin  *auth.Tokens // admin tokens (testAdminSecret)
	dir    string
}

// panics counts actors that panicked in in-process nodes: TestMain fails
// the run if any did, whatever the tests concluded.
var panics atomic.Int64

// panicCounter passes records on and counts protoactor's "[ACTOR]
// Recovering" (an actor panicked and was restarted).
type panicCounter struct{ slog.Handler }

func (p panicCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "[ACTOR] Recovering" {
		panics.Add(1)
		fmt.Fprintf(os.Stderr, "actor panicked: %v\n", r)
	}
	return p.Handler.Handle(ctx, r)
}
func (p panicCounter) WithAttrs(a []slog.Attr) slog.Handler {
	return panicCounter{p.Handler.WithAttrs(a)}
}
func (p panicCounter) WithGroup(n string) slog.Handler { return panicCounter{p.Handler.WithGroup(n)} }

func testLogger() *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})
	if os.Getenv("E2E_LOG") != "" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(panicCounter{h})
}

func newNode(mutate func(*node.Config)) (*testNode, error) {
	dir, err := os.MkdirTemp("", "actorim-e2e-*")
	if err != nil {
		return nil, err
	}
	cfg := node.Config{
		Listen:      "127.0.0.1:0",
		DataDir:     dir,
		AuthSecret:  testSecret,
		AdminSecret: testAdminSecret,
		Actors:      actors.Config{PushRetryMin: 500 * time.Millisecond, PushRetryMax: 2 * time.Second},
		Gateway:     gateway.Config{LoginRate: -1}, // as on the shared node
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := node.Start(context.Background(), cfg, testLogger())
	if err != nil {
		return nil, err
	}
	tokens, _ := auth.NewTokens([]byte(testSecret), time.Hour)
	admin, _ := auth.NewTokens([]byte(testAdminSecret), time.Hour)
	addr := n.Addr().String()
	return &testNode{n: n, ws: "ws://" + addr + "/ws", http: "http://" + addr, tokens: tokens, admin: admin, dir: dir}, nil
}

// startNode starts a node private to the test.
func startNode(t *testing.T, mutate func(*node.Config)) *testNode {
	t.Helper()
	n, err := newNode(mutate)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.n.Shutdown(ctx)
	_ = os.RemoveAll(n.dir)
}

var userSeq atomic.Int64

// newUser returns a fresh user id registered over HTTP, unique in the run.
func (n *testNode) newUser(t *testing.T, prefix string) string {
	t.Helper()
	id := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
	h := &client.HTTP{BaseURL: n.http}
	if err := h.Register(ctx(t), id, "password-"+id); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	return id
}

// token logs a user in over HTTP with the password newUser chose.
func (n *testNode) token(t *testing.T, user string) string {
	t.Helper()
	h := &client.HTTP{BaseURL: n.http}
	tok, err := h.Login(ctx(t), user, "password-"+user)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tok.Token
}

func (n *testNode) dial(t *testing.T, opts client.Options) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), n.ws, specDial(opts))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type device struct {
	*client.Conn
	user, id string
	login    *clientpb.LoginOK
}

// connect dials and logs user in as device dev (platform web unless given).
func (n *testNode) connect(t *testing.T, user, dev string, lastSeq *uint64, opts ...func(*connectOpts)) *device {
	t.Helper()
	o := connectOpts{platform: clientpb.Platform_PLATFORM_WEB}
	for _, f := range opts {
		f(&o)
	}
	c := n.dial(t, o.client)
	ok, err := c.Login(ctx(t), n.token(t, user), dev, o.platform, lastSeq)
	if err != nil {
		t.Fatalf("login %s/%s: %v", user, dev, err)
	}
	return &device{Conn: c, user: user, id: dev, login: ok}
}

type connectOpts struct {
	platform clientpb.Platform
	client   client.Options
}

func platform(p clientpb.Platform) func(*connectOpts) { return func(o *connectOpts) { o.platform = p } }
func jsonCodec(o *connectOpts)                        { o.client.JSON = true }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var cmidSeq atomic.Int64

func cmid() string { return fmt.Sprintf("c%d", cmidSeq.Add(1)) }

// send sends text and requires an ack. Like a real client it waits and
// retries with the same client message id when rate limited.
func (d *device) send(t *testing.T, to, text string) *clientpb.SendAck {
	t.Helper()
	id := cmid()
	for {
		ack, err := d.SendText(ctx(t), to, id, text)
		var e *client.Error
		if errors.As(err, &e) && e.Code == clientpb.ErrorCode_ERR_RATE_LIMITED {
			time.Sleep(e.RetryAfter)
			continue
		}
		if err != nil {
			t.Fatalf("%s sends to %s: %v", d.user, to, err)
		}
		return ack
	}
}

// next waits for the next Push and returns its entries.
func (d *device) next(t *testing.T, within time.Duration) []*clientpb.Entry {
	t.Helper()
	select {
	case p, ok := <-d.Pushes():
		if !ok {
			t.Fatalf("%s/%s: connection closed while waiting for a push", d.user, d.id)
		}
		return p.GetEntries()
	case <-time.After(within):
		t.Fatalf("%s/%s: no push within %v", d.user, d.id, within)
	}
	return nil
}

// collect reads pushes, acking them, until n entries arrived.
func (d *device) collect(t *testing.T, n int, within time.Duration) []*clientpb.Entry {
	t.Helper()
	var got []*clientpb.Entry
	deadline := time.After(within)
	for len(got) < n {
		select {
		case p, ok := <-d.Pushes():
			if !ok {
				t.Fatalf("%s/%s: closed after %d of %d entries", d.user, d.id, len(got), n)
			}
			got = append(got, p.GetEntries()...)
			if err := d.Ack(got[len(got)-1].GetSeq()); err != nil {
				t.Fatalf("ack: %v", err)
			}
		case <-deadline:
			t.Fatalf("%s/%s: %d of %d entries within %v", d.user, d.id, len(got), n, within)
		}
	}
	return got
}

// quiet asserts that no push arrives for a while.
func (d *device) quiet(t *testing.T, for_ time.Duration) {
	t.Helper()
	select {
	case p, ok := <-d.Pushes():
		if ok {
			t.Fatalf("%s/%s: unexpected push %v", d.user, d.id, p)
		}
	case <-time.After(for_):
	}
}

func texts(es []*clientpb.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.GetMessage().GetContent().GetText()
	}
	return out
}

func seqs(es []*clientpb.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.GetSeq()
	}
	return out
}

// requireConsecutive fails unless entries have seqs from, from+1, ...
func requireConsecutive(t *testing.T, es []*clientpb.Entry, from uint64) {
	t.Helper()
	for i, e := range es {
		if e.GetSeq() != from+uint64(i) {
			t.Fatalf("entry %d has seq %d, want %d (seqs %v)", i, e.GetSeq(), from+uint64(i), seqs(es))
		}
	}
}

func eq(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func u64(v uint64) *uint64 { return &v }

func newTokens(secret string) (*auth.Tokens, error) { return auth.NewTokens([]byte(secret), time.Hour) }
