package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"actorim/node"
	"actorim/persistence/clickhouse"
	"actorim/protos/clientpb"
)

// The archive tests share one ClickHouse, started by deploy/local/clickhouse.sh
// on a pair of ports free when the run starts (so that several runs on one
// machine never meet); each test archives into a database of its own.
var chTCPPort, chHTTPPort, chAddr string

var (
	chOnce sync.Once
	chDir  string
	chErr  error
	chDBs  atomic.Int64
)

var chScript = filepath.Join("..", "deploy", "local", "clickhouse.sh")

func chRun(args ...string) error {
	out, err := exec.Command(chScript, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("clickhouse.sh %v: %v\n%s", args, err, out)
	}
	return nil
}

// clickHouse starts the shared ClickHouse once; a failure fails the test
// (`make deps` installs it).
func clickHouse(t *testing.T) {
	t.Helper()
	chOnce.Do(func() {
		if chDir, chErr = os.MkdirTemp("", "actorim-e2e-ch-*"); chErr != nil {
			return
		}
		base := freePortRun(t, 2)
		chTCPPort, chHTTPPort = strconv.Itoa(base), strconv.Itoa(base+1)
		chAddr = "127.0.0.1:" + chTCPPort
		if chErr = chRun("start", chDir, chTCPPort, chHTTPPort); chErr != nil {
			return
		}
		infraStop = append(infraStop, func() { _ = chRun("stop", chDir); _ = os.RemoveAll(chDir) })
	})
	if chErr != nil {
		t.Fatalf("ClickHouse: %v", chErr)
	}
}

// archiveNode starts a node archiving into a fresh database and returns it
// with a connection to that database.
func archiveNode(t *testing.T, mutate func(*node.ArchiveConfig)) (*testNode, driver.Conn) {
	t.Helper()
	clickHouse(t)
	db := fmt.Sprintf("e2e_%d_%d", os.Getpid(), chDBs.Add(1))
	n := startNode(t, func(c *node.Config) {
		c.Archive = node.ArchiveConfig{ClickHouse: clickhouse.Config{Addr: chAddr, Database: db}, Migrate: true}
		if mutate != nil {
			mutate(&c.Archive)
		}
	})
	conn, err := ch.Open(&ch.Options{Addr: []string{chAddr}, Auth: ch.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return n, conn
}

// archivedIDs returns the distinct archived message ids with their text.
func archivedIDs(t *testing.T, conn driver.Conn) map[uint64]string {
	t.Helper()
	rs, err := conn.Query(context.Background(), "SELECT msg_id, any(content), count() FROM messages GROUP BY msg_id")
	if err != nil {
		t.Fatalf("query archive: %v", err)
	}
	defer rs.Close()
	out := map[uint64]string{}
	for rs.Next() {
		var id, n uint64
		var text string
		if err := rs.Scan(&id, &text, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = text
	}
	return out
}

// waitArchived waits until the archive holds want distinct messages.
func waitArchived(t *testing.T, conn driver.Conn, want int, within time.Duration) map[uint64]string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := archivedIDs(t, conn)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendMany has senders pairs of users exchange per messages each, over
// WebSocket, and returns the acks (msg id -> text).
func sendMany(t *testing.T, n *testNode, senders, per int, tag string) map[uint64]string {
	t.Helper()
	acked := map[uint64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := range senders {
		from, to := n.newUser(t, "arch"), n.newUser(t, "arch")
		d := n.connect(t, from, "dev", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				text := fmt.Sprintf("%s %d/%d", tag, s, i)
				ack, err := d.SendText(context.Background(), to, cmid(), text)
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				mu.Lock()
				acked[ack.GetMsgId()] = text
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked
}

func sameMessages(t *testing.T, got, want map[uint64]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("archive holds %d distinct messages, %d were acked", len(got), len(want))
	}
	for id, text := range want {
		if got[id] != text {
			t.Fatalf("message %d archived as %q, acked as %q", id, got[id], text)
		}
	}
}

// TestArchiveEveryAckedMessage: every message acked over WebSocket reaches
// the archive, once after dedup, with both timeline positions.
func TestArchiveEveryAckedMessage(t *testing.T) {
	n, conn := archiveNode(t, nil)
	acked := sendMany(t, n, 8, 50, "hello")
	sameMessages(t, waitArchived(t, conn, len(acked), 15*time.Second), acked)
	// A batch's messages are inserted before its timeline positions, so the
	// positions may still be on their way.
	var positions uint64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := conn.QueryRow(context.Background(),
			"SELECT count() FROM (SELECT user_id, seq FROM timeline GROUP BY user_id, seq)").Scan(&positions); err != nil {
			t.Fatal(err)
		}
		if positions >= uint64(2*len(acked)) || time.Now().After(deadline) {
			break
		}
	}
	if positions != uint64(2*len(acked)) {
		t.Fatalf("%d timeline positions archived, want %d", positions, 2*len(acked))
	}
	if a := n.n.Archiver(); a.Lag() != 0 && a.Lag() > 5*time.Second {
		t.Fatalf("archive lag %v after everything was archived", a.Lag())
	}
}

// TestArchiveOutage stops ClickHouse while messages are being sent, checks
// that they wait in the outbox, restarts it and finds every acked message
// archived.
func TestArchiveOutage(t *testing.T) {
	n, conn := archiveNode(t, nil)
	before := sendMany(t, n, 2, 20, "before")
	waitArchived(t, conn, len(before), 15*time.Second)

	if err := chRun("stop", chDir); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = chRun("start", chDir, chTCPPort, chHTTPPort)
		}
	}()
	during := sendMany(t, n, 8, 100, "during")
	time.Sleep(500 * time.Millisecond)
	if lag := n.n.Archiver().Lag(); lag < 300*time.Millisecond {
		t.Fatalf("archive lag %v while ClickHouse is down, want it growing", lag)
	}
	if err := chRun("start", chDir, chTCPPort, chHTTPPort); err != nil {
		t.Fatal(err)
	}
	restarted = true
	want := map[uint64]string{}
	for id, s := range before {
		want[id] = s
	}
	for id, s := range during {
		want[id] = s
	}
	// The archiver backs off up to 10 s between attempts.
	sameMessages(t, waitArchived(t, conn, len(want), 30*time.Second), want)
	deadline := time.Now().Add(5 * time.Second)
	for n.n.Archiver().Lag() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if lag := n.n.Archiver().Lag(); lag != 0 {
		t.Fatalf("archive lag still %v after the backlog replayed", lag)
	}
}

// TestHistoryAcrossArchive: with a hot retention of a millisecond the hot
// store sheds everything archived; history and sync still return every
// message, across the boundary, from the archive.
func TestHistoryAcrossArchive(t *testing.T) {
	n, conn := archiveNode(t, func(a *node.ArchiveConfig) {
		a.HotRetention = time.Millisecond
		a.TrimInterval = 100 * time.Millisecond
	})
	alice, bob := n.newUser(t, "hist"), n.newUser(t, "hist")
	a := n.connect(t, alice, "a1", nil)
	for i := range 30 {
		a.send(t, bob, fmt.Sprintf("m%d", i+1))
	}
	waitArchived(t, conn, 30, 15*time.Second)
	time.Sleep(500 * time.Millisecond) // several trim passes
	for i := range 5 {                 // and some that stay hot
		a.send(t, bob, fmt.Sprintf("m%d", 31+i))
	}

	b := n.connect(t, bob, "b1", u64(0))
	got := b.collect(t, 35, 10*time.Second)
	requireConsecutive(t, got, 1)
	for i, e := range got {
		if want := fmt.Sprintf("m%d", i+1); e.GetMessage().GetContent().GetText() != want {
			t.Fatalf("pushed %d: %q, want %q", i, e.GetMessage().GetContent().GetText(), want)
		}
	}
	conv := got[0].GetMessage().GetConversationId()
	var seen []string
	var before uint64
	for {
		res, err := b.History(ctx(t), conv, before, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.GetEntries() {
			seen = append(seen, e.GetMessage().GetContent().GetText())
		}
		if !res.GetHasMore() || len(res.GetEntries()) == 0 {
			break
		}
		before = res.GetEntries()[len(res.GetEntries())-1].GetSeq()
	}
	if len(seen) != 35 {
		t.Fatalf("history pages returned %d messages, want 35: %v", len(seen), seen)
	}
	for i, s := range seen {
		if want := fmt.Sprintf("m%d", 35-i); s != want {
			t.Fatalf("history[%d] = %q, want %q", i, s, want)
		}
	}
	var trimmed uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM timeline").Scan(&trimmed); err != nil || trimmed < 60 {
		t.Fatalf("timeline rows %d, %v", trimmed, err)
	}
}

// TestAnalyticsHTTP asks the admin analytics endpoint about messages sent
// over WebSocket and acknowledged.
func TestAnalyticsHTTP(t *testing.T) {
	n, conn := archiveNode(t, nil)
	alice, bob := n.newUser(t, "an"), n.newUser(t, "an")
	a := n.connect(t, alice, "a1", nil)
	b := n.connect(t, bob, "b1", nil)
	for i := range 6 {
		a.send(t, bob, fmt.Sprintf("x%d", i))
	}
	if _, err := a.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: bob,
		Content: &clientpb.Content{Kind: &clientpb.Content_Emoji{Emoji: "👍"}}}); err != nil {
		t.Fatal(err)
	}
	b.collect(t, 7, 10*time.Second)
	waitArchived(t, conn, 7, 15*time.Second)

	admin, _, err := n.admin.IssueFor("ops", true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(query string, out any) int {
		t.Helper()
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		req, _ := http.NewRequest("GET", n.http+"/v1/admin/analytics/"+query+"&from="+from+"&to="+to, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if out != nil {
			if err := json.NewDecoder(res.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode
	}
	var mix struct {
		Result []clickhouse.Count `json:"result"`
	}
	if code := get("content-mix?bucket=", &mix); code != 200 {
		t.Fatalf("content-mix: HTTP %d", code)
	}
	sort.Slice(mix.Result, func(i, j int) bool { return mix.Result[i].Key < mix.Result[j].Key })
	if fmt.Sprint(mix.Result) != "[{emoji 1} {text 6}]" {
		t.Fatalf("content mix %v", mix.Result)
	}
	var msgs struct {
		Result []clickhouse.Point `json:"result"`
	}
	if code := get("messages?bucket=day", &msgs); code != 200 {
		t.Fatalf("messages: HTTP %d", code)
	}
	var total uint64
	for _, p := range msgs.Result {
		total += p.Count
	}
	if total != 7 {
		t.Fatalf("messages per day %v, want 7 in all", msgs.Result)
	}
	// Deliveries are flushed every second.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var lat struct {
			Result clickhouse.Latency `json:"result"`
		}
		if code := get("delivery-latency?x=", &lat); code != 200 {
			t.Fatalf("delivery-latency: HTTP %d", code)
		}
		if lat.Result.Deliveries == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery latency %+v, want 7 deliveries", lat.Result)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := get("nope?x=", nil); code != 404 {
		t.Fatalf("unknown query: HTTP %d, want 404", code)
	}
	user, _, _ := n.tokens.IssueFor(alice, false, time.Hour)
	req, _ := http.NewRequest("GET", n.http+"/v1/admin/analytics/messages", nil)
	req.Header.Set("Authorization", "Bearer "+user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Fatalf("analytics with a user token: HTTP %d, want 403", res.StatusCode)
	}
}
