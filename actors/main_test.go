package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"actorim/cluster"
	"actorim/persistence"
	"actorim/persistence/embedded"
)

// The tests share one Service on one standalone member and store, started
// on first use: a member's start sleeps 1 s and its shutdown 2 s
// (protoactor), and two members in one process race on grpc's global
// logger. Each test names its own users (newUsers), so tests sharing the
// member run in parallel and again with -count.
var shared struct {
	once sync.Once
	node *testNode
	err  error
	stop func() error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "actors tests: shutdown:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testNode is a Service with its stores at hand.
type testNode struct {
	*Service
	store persistence.Store
	// media is the store's upload records with a test hook
	// (media_test.go); nil when the Service has media disabled.
	media *hookedMedia
}

// storesOf uses st as every store.
func storesOf(st persistence.Store) Stores {
	return Stores{Accounts: st, Timelines: st, Sessions: st, Records: st, Sets: st}
}

// sharedNode returns the shared Service, starting it on first use.
func sharedNode(t *testing.T) *testNode {
	t.Helper()
	shared.once.Do(func() { shared.node, shared.stop, shared.err = startShared() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.node
}

func startShared() (*testNode, func() error, error) {
	dir, err := os.MkdirTemp("", "actors-test-")
	if err != nil {
		return nil, nil, err
	}
	st, err := embedded.Open(dir+"/store", embedded.Options{})
	if err != nil {
		return nil, nil, err
	}
	media := newHookedMedia(st)
	stores := storesOf(st)
	stores.Media = media
	n := &testNode{Service: NewService(Config{}, stores, nil, nil), store: st, media: media}
	tls, _, err := cluster.LocalTLS(dir + "/tls")
	if err != nil {
		return nil, nil, err
	}
	m, err := cluster.New(cluster.Config{Kinds: n.Kinds(), TLS: tls}, nil)
	if err != nil {
		return nil, nil, err
	}
	n.Bind(m)
	if err := m.Start(context.Background()); err != nil {
		return nil, nil, err
	}
	stop := func() error {
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := m.Shutdown(ctx)
		if serr := n.Shutdown(ctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("service: %w", serr))
		}
		_ = st.Close()
		return err
	}
	return n, stop, nil
}

// startServiceOn returns a Service over st of its own, bound to the shared
// member but with no grain kinds of its own: for what runs without grains
// (a broadcast).
func startServiceOn(t *testing.T, st persistence.Store) *testNode {
	t.Helper()
	n := &testNode{Service: NewService(Config{}, storesOf(st), nil, nil), store: st}
	n.Bind(sharedNode(t).d.member.Member)
	t.Cleanup(func() { _ = st.Close() })
	return n
}

var userRun atomic.Int64

// newUsers creates accounts for ids made of names and a number unique to
// this process, and returns the ids in order.
func newUsers(t *testing.T, rt *testNode, names ...string) []string {
	t.Helper()
	n := userRun.Add(1)
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = fmt.Sprintf("%s-%d", name, n)
		if err := rt.store.CreateAccount(context.Background(), persistence.Account{UserID: out[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
