package storetest

import (
	"context"
	"io"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// SessionStore is what the Sessions suite runs over.
type SessionStore interface {
	persistence.Sessions
	io.Closer
}

// Sessions is the conformance suite of persistence.Sessions.
func Sessions(t *testing.T, open func(t *testing.T) SessionStore, known ...Known) {
	runSuite(t, open, known, []test[SessionStore]{
		{"PutAndDelete", testSessions},
		{"Expire", testSessionsExpire},
		{"CanceledContext", func(t *testing.T, s SessionStore) { checkCanceled(t, sessionCalls(s)) }},
		{"Closed", func(t *testing.T, s SessionStore) { checkClosed(t, s, sessionCalls(s)) }},
	})
}

// sessionCalls returns a call of every Sessions method, by name.
func sessionCalls(s persistence.Sessions) map[string]call {
	return map[string]call{
		"PutSession": func(ctx context.Context) error {
			return s.PutSession(ctx, persistence.Session{UserID: "alice", DeviceID: "web", SessionID: "s1"}, time.Minute)
		},
		"DeleteSession": func(ctx context.Context) error {
			return s.DeleteSession(ctx, "alice", "web", "s1")
		},
		"Sessions": func(ctx context.Context) error {
			_, err := s.Sessions(ctx, "alice")
			return err
		},
	}
}

func testSessions(t *testing.T, s SessionStore) {
	ctx := context.Background()
	web := persistence.Session{UserID: "alice", DeviceID: "web", SessionID: "s1", Platform: clientpb.Platform_PLATFORM_WEB, Node: "10.0.0.1:7000", ConnID: "conn$1"}
	ios := persistence.Session{UserID: "alice", DeviceID: "ios", SessionID: "s2", Platform: clientpb.Platform_PLATFORM_IOS, Node: "10.0.0.2:7000", ConnID: "conn$2"}
	other := persistence.Session{UserID: "alice2", DeviceID: "web", SessionID: "s3", Node: "n", ConnID: "c"}
	for _, sess := range []persistence.Session{web, ios, other} {
		if err := s.PutSession(ctx, sess, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Sessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].DeviceID != "ios" || got[1].DeviceID != "web" {
		t.Fatalf("Sessions(alice) = %+v, want ios then web", got)
	}
	g := got[1]
	now := uint64(time.Now().UnixMilli())
	if g.SessionID != "s1" || g.Platform != clientpb.Platform_PLATFORM_WEB || g.Node != web.Node || g.ConnID != web.ConnID ||
		g.ExpiresAtMs < now+50_000 || g.ExpiresAtMs > now+70_000 {
		t.Fatalf("stored session %+v, put %+v with a 1m ttl", g, web)
	}

	// A new session of the same device replaces the old one, and deleting
	// the old session id leaves the new one in place.
	web2 := web
	web2.SessionID, web2.ConnID = "s4", "conn$4"
	if err := s.PutSession(ctx, web2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "alice", "web", "s1"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Sessions(ctx, "alice")
	if len(got) != 2 || got[1].SessionID != "s4" || got[1].ConnID != "conn$4" {
		t.Fatalf("after replacing web and deleting its old session: %+v", got)
	}
	if err := s.DeleteSession(ctx, "alice", "web", "s4"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Sessions(ctx, "alice")
	if len(got) != 1 || got[0].DeviceID != "ios" {
		t.Fatalf("after deleting web: %+v", got)
	}
	if got, _ := s.Sessions(ctx, "alice2"); len(got) != 1 || got[0].SessionID != "s3" {
		t.Fatalf("alice2's sessions: %+v", got)
	}
	if got, err := s.Sessions(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("Sessions(nobody) = %v, %v", got, err)
	}
	if err := s.DeleteSession(ctx, "nobody", "web", "x"); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
}

func testSessionsExpire(t *testing.T, s SessionStore) {
	ctx := context.Background()
	short := persistence.Session{UserID: "bob", DeviceID: "web", SessionID: "s1", Node: "n", ConnID: "c"}
	long := persistence.Session{UserID: "bob", DeviceID: "ios", SessionID: "s2", Node: "n", ConnID: "c"}
	if err := s.PutSession(ctx, short, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, long, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Sessions(ctx, "bob"); len(got) != 2 {
		t.Fatalf("before expiry: %+v", got)
	}
	time.Sleep(1200 * time.Millisecond)
	got, err := s.Sessions(ctx, "bob")
	if err != nil || len(got) != 1 || got[0].DeviceID != "ios" {
		t.Fatalf("after the short session expired: %+v, %v", got, err)
	}
	// Refreshing extends a session.
	if err := s.PutSession(ctx, long, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, long, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if got, _ := s.Sessions(ctx, "bob"); len(got) != 1 {
		t.Fatalf("a refreshed session expired: %+v", got)
	}
}
