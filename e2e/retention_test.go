package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"actorim/apps"
	"actorim/ids"
	"actorim/node"
	redisstore "actorim/persistence/redis"
	"actorim/protos/clientpb"
)

// TestAppRetention: an app's messages older than its retention_ms are no
// longer served by history, sync or the conversation list, and the
// retention sweep deletes them from the hot store, the users' timelines
// and the group's own; another app's messages stay.
func TestAppRetention(t *testing.T) {
	n := startStoredNode(t, func(c *node.Config) { c.RetentionInterval = 200 * time.Millisecond })
	appRetention(t, n.testNode, func() timelineReader { return n.stopAndOpen(t) })
}

// TestAppRetentionRedis: the same on a node over Redis, whose store is
// read while the node runs.
func TestAppRetentionRedis(t *testing.T) {
	c := startCluster(t, 1, "--retention-interval", "200ms")
	st, err := redisstore.Open(context.Background(), redisstore.Options{Addr: c.infra.redis, Prefix: c.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	appRetention(t, c.nodes[0].node(), func() timelineReader { return st })
}

// timelineReader reads a node's store directly.
type timelineReader interface {
	ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error)
}

// appRetention runs TestAppRetention on n; store returns its store to
// search once the reads are checked.
func appRetention(t *testing.T, n *testNode, store func() timelineReader) {
	const retention = 2000
	app := newAppID("rt")
	n.createApp(t, app, apps.Settings{RetentionMs: retention})
	keep := newAppID("rk")
	n.createApp(t, keep, apps.Settings{})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")
	carol := n.connectToken(t, n.appUser(t, keep, "carol"), "carol", "web")
	n.appUser(t, keep, "dave")

	gid := newGroupID("rt")
	alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")
	alice.send(t, "bob", "old 1")
	alice.send(t, "bob", "old 2")
	alice.sendGroup(t, gid, "old group")
	carol.send(t, "dave", "kept")
	time.Sleep(retention*time.Millisecond + 300*time.Millisecond)
	alice.send(t, "bob", "new")
	alice.sendGroup(t, gid, "new group")

	messages := func(es []*clientpb.Entry) []string {
		var out []string
		for _, e := range es {
			if m := e.GetMessage(); m.GetContent().GetText() != "" {
				out = append(out, m.GetContent().GetText())
			}
		}
		return out
	}
	waitFor(t, 10*time.Second, "history without the expired messages", func() bool {
		h, err := bob.History(ctx(t), "p:alice:bob", 0, 50)
		return err == nil && eq(messages(h.GetEntries()), []string{"new"}) && !h.GetHasMore()
	})
	s, err := bob.Sync(ctx(t), 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(s.GetEntries()); !eq(got, []string{"new", "new group"}) {
		t.Fatalf("sync from 0: %q, want only the messages within the retention", got)
	}
	cutoff := uint64(time.Now().UnixMilli()) - retention - 1000
	for _, e := range s.GetEntries() {
		if e.GetMessage().GetSentAtMs() < cutoff {
			t.Fatalf("sync served an expired entry: %v", e)
		}
	}
	convs := bob.conversations(t)
	if len(convs) != 2 || convs["p:alice:bob"] == nil || convs[ids.Group(gid)] == nil {
		t.Fatalf("conversations %v", convs)
	}
	dave := n.connectToken(t, n.appToken(t, keep, "dave"), "dave", "web")
	if h, err := dave.History(ctx(t), "p:carol:dave", 0, 50); err != nil || !eq(messages(h.GetEntries()), []string{"kept"}) {
		t.Fatalf("another app's history: %v %v", h, err)
	}
	time.Sleep(500 * time.Millisecond) // a sweep after the reads

	// In the store itself: nothing expired is left in the app's timelines.
	st := store()
	sctx := context.Background()
	for _, tl := range []string{ids.Qualify(app, "alice"), ids.Qualify(app, "bob"), ids.Qualify(app, "#"+ids.Group(gid))} {
		es, err := st.ReadTimeline(sctx, tl, 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		if got := messages(es); slices.Contains(got, "old 1") || slices.Contains(got, "old 2") || slices.Contains(got, "old group") {
			t.Fatalf("timeline %s still holds %q", tl, got)
		}
		if len(es) == 0 {
			t.Fatalf("timeline %s is empty: its newest entry must stay", tl)
		}
	}
	es, err := st.ReadTimeline(sctx, ids.Qualify(keep, "dave"), 0, 500)
	if err != nil || !eq(messages(es), []string{"kept"}) {
		t.Fatalf("another app's timeline: %q %v", messages(es), err)
	}
}
