// Package storetest holds one conformance suite per store contract of
// package persistence: Accounts, Timelines (and Durability), Sessions,
// Records, Media (and MediaDurability), Directory, Eraser, Outbox, Trimmer
// and HookQueue (and HookDurability); Run runs six of those a
// persistence.Store composes (Eraser, which searches the backend's own
// keys, runs on its own). Every implementation of a contract runs its suite: the embedded
// and Redis backends all of them, and clickhouse.History (which extends a
// hot store's reads into the archive) Run and Durability over data that
// spans the hot store and the archive.
//
// A suite takes an open function that returns a fresh, empty store each
// time it is called and arranges its cleanup with t.Cleanup. Some subtests
// close the store themselves, so the cleanup must tolerate a second Close
// (ignore its error or make Close idempotent). The suites use only the
// contracts' methods.
package storetest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Run runs the suite of every contract a persistence.Store composes, each as
// a subtest named after its contract: Accounts, Timelines, Sessions, Records,
// Media, Directory.
func Run(t *testing.T, open func(t *testing.T) persistence.Store, known ...Known) {
	t.Run("Accounts", func(t *testing.T) {
		Accounts(t, func(t *testing.T) AccountStore { return open(t) }, known...)
	})
	t.Run("Timelines", func(t *testing.T) {
		Timelines(t, func(t *testing.T) TimelineStore { return open(t) }, known...)
	})
	t.Run("Sessions", func(t *testing.T) {
		Sessions(t, func(t *testing.T) SessionStore { return open(t) }, known...)
	})
	t.Run("Records", func(t *testing.T) {
		Records(t, func(t *testing.T) RecordStore { return open(t) }, known...)
	})
	t.Run("Media", func(t *testing.T) {
		Media(t, func(t *testing.T) MediaStore { return open(t) }, known...)
	})
	t.Run("Directory", func(t *testing.T) {
		Directory(t, func(t *testing.T) DirectoryStore { return open(t) }, known...)
	})
}

// Known is a subtest that an implementation is known to fail: the suites
// skip it, saying why. It is for defects tracked elsewhere, never for
// behaviour a contract leaves open.
type Known struct {
	// Test ends the subtest's name: "AppendKeepsMentionsAndEvents", or
	// "Timelines/AppendKeepsMentionsAndEvents" to name one suite's.
	Test string
	// Why says what fails and where it is tracked.
	Why string
}

// test is one subtest of a suite over stores of type S.
type test[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runSuite runs each test, unless known names it, on a store of its own.
func runSuite[S any](t *testing.T, open func(t *testing.T) S, known []Known, tests []test[S]) {
	for _, tc := range tests {
		run(t, tc.name, known, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// run runs f as the subtest name unless known names it.
func run(t *testing.T, name string, known []Known, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		for _, k := range known {
			if strings.HasSuffix(t.Name(), "/"+k.Test) {
				t.Skip(k.Why)
			}
		}
		f(t)
	})
}

// call is one call of a contract's method with ctx; see checkCanceled.
type call func(ctx context.Context) error

// checkCanceled checks that every call fails promptly with an error wrapping
// context.Canceled when its context is canceled.
func checkCanceled(t *testing.T, calls map[string]call) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, c := range calls {
		err := within(t, 5*time.Second, name, func() error { return c(ctx) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want an error wrapping context.Canceled", name, err)
		}
	}
}

// checkClosed closes s and checks that every call then fails promptly with
// ErrClosed.
func checkClosed(t *testing.T, s io.Closer, calls map[string]call) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, c := range calls {
		err := within(t, 5*time.Second, name, func() error { return c(context.Background()) })
		if !errors.Is(err, persistence.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// newReq builds a private-style message from sender to to, appended to
// timelines, with a deduplication key of clientMsgID.
func newReq(sender, to, clientMsgID string, timelines ...string) *persistence.AppendRequest {
	a, b := min(sender, to), max(sender, to)
	return &persistence.AppendRequest{
		Sender:      sender,
		ClientMsgID: clientMsgID,
		Message: &clientpb.Message{
			ConversationId:   "p:" + a + ":" + b,
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
			From:             sender,
			To:               to,
			FromDevice:       "dev-1",
			ClientMsgId:      clientMsgID,
			Content:          &clientpb.Content{Kind: &clientpb.Content_Text{Text: "text " + clientMsgID}},
		},
		Timelines: timelines,
	}
}

// CreateAccounts creates an account for each of users.
func CreateAccounts(t testing.TB, s persistence.Accounts, users ...string) {
	t.Helper()
	for _, u := range users {
		if err := s.CreateAccount(context.Background(), persistence.Account{UserID: u, CreatedAtMs: 1}); err != nil {
			t.Fatalf("CreateAccount(%s): %v", u, err)
		}
	}
}

func mustAppend(t *testing.T, s persistence.Timelines, req *persistence.AppendRequest) *persistence.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), req)
	if err != nil {
		t.Fatalf("Append(%s/%s to %v): %v", req.Sender, req.ClientMsgID, req.Timelines, err)
	}
	want := len(req.Timelines)
	if res.Duplicate {
		want = 1
	}
	if len(res.Entries) != want {
		t.Fatalf("Append(%s/%s to %v) returned %d entries (duplicate=%v)", req.Sender, req.ClientMsgID, req.Timelines, len(res.Entries), res.Duplicate)
	}
	return res
}

func lastSeq(t *testing.T, s persistence.TimelineReader, user string) uint64 {
	t.Helper()
	n, err := s.LastSeq(context.Background(), user)
	if err != nil {
		t.Fatalf("LastSeq(%s): %v", user, err)
	}
	return n
}

// readAll reads user's whole timeline in pages.
func readAll(t *testing.T, s persistence.TimelineReader, user string) []*clientpb.Entry {
	t.Helper()
	var all []*clientpb.Entry
	for {
		var after uint64
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := s.ReadTimeline(context.Background(), user, after, 250)
		if err != nil {
			t.Fatalf("ReadTimeline(%s, %d): %v", user, after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

func seqs(entries []*clientpb.Entry) []uint64 {
	var out []uint64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// within runs call and fails the test if it takes longer than d.
func within(t *testing.T, d time.Duration, name string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", name, d)
		return nil
	}
}
