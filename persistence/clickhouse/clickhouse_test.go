package clickhouse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/persistence/storetest"
	"actorim/protos/clientpb"
)

// The tests run a real ClickHouse, started by deploy/local/clickhouse.sh on
// a fixed port pair of their own (e2e uses 19400/19401).
const (
	testTCPPort  = "19402"
	testHTTPPort = "19403"
	testAddr     = "127.0.0.1:" + testTCPPort
)

var script = filepath.Join("..", "..", "deploy", "local", "clickhouse.sh")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actorim-ch-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	out, err := exec.Command(script, "start", dir, testTCPPort, testHTTPPort).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start clickhouse (install it with %s install): %v\n%s", script, err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = exec.Command(script, "stop", dir).Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var dbSeq atomic.Int64

// newDB migrates a fresh database and returns it, closed when the test ends.
func newDB(t *testing.T) (*DB, Config) {
	t.Helper()
	cfg := Config{Addr: testAddr, Database: fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, cfg, nil); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	db, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		_ = db.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = db.Close()
	})
	return db, cfg
}

func openHot(t *testing.T, users ...string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	storetest.CreateAccounts(t, s, users...)
	return s
}

func text(s string) *clientpb.Content {
	return &clientpb.Content{Kind: &clientpb.Content_Text{Text: s}}
}

func send(t *testing.T, s persistence.Store, from, to string, c *clientpb.Content) *persistence.AppendResult {
	t.Helper()
	a, b := from, to
	if b < a {
		a, b = b, a
	}
	res, err := s.Append(context.Background(), &persistence.AppendRequest{
		Sender: from, ClientMsgID: fmt.Sprintf("m%d", time.Now().UnixNano()),
		Message: &clientpb.Message{ConversationId: "p:" + a + ":" + b, ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
			From: from, To: to, FromDevice: "d1", Content: c},
		Timelines: []string{from, to},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func count(t *testing.T, db *DB, q string) uint64 {
	t.Helper()
	var n uint64
	if err := db.conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrateTwice(t *testing.T) {
	_, cfg := newDB(t)
	if err := Migrate(context.Background(), cfg, nil); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

// TestArchiveDedup archives a store's outbox, then inserts the same items
// again, as a retry after a lost acknowledgement would: every message is
// counted once, with its content intact.
func TestArchiveDedup(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	s := openHot(t, "alice", "bob")
	want := map[uint64]string{}
	for i := range 50 {
		res := send(t, s, "alice", "bob", text(fmt.Sprintf("hello %d", i)))
		want[res.Entries[0].GetMessage().GetId()] = fmt.Sprintf("hello %d", i)
	}
	items, err := s.ReadOutbox(ctx, 1000)
	if err != nil || len(items) != 50 {
		t.Fatalf("outbox: %d items, %v", len(items), err)
	}
	var r rows
	for i := range items {
		r.add(&items[i])
	}
	// Merges would collapse the re-inserted rows before they are counted.
	if err := db.conn.Exec(ctx, "SYSTEM STOP MERGES messages"); err != nil {
		t.Fatalf("stop merges: %v", err)
	}
	for range 2 {
		if err := db.insert(ctx, &r); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	a := NewArchiver(ArchiverConfig{BatchSize: 16}, db, s, nil, nil)
	if n, err := a.Drain(ctx); err != nil || n != 50 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if left, _ := s.ReadOutbox(ctx, 10); len(left) != 0 {
		t.Fatalf("%d items left in the outbox", len(left))
	}
	if n := count(t, db, "SELECT count() FROM messages"); n != 150 {
		t.Fatalf("%d rows, want 150 before merges", n)
	}
	if n := count(t, db, "SELECT uniqExact(msg_id) FROM messages"); n != 50 {
		t.Fatalf("%d distinct messages, want 50", n)
	}
	if n := count(t, db, "SELECT count() FROM (SELECT user_id, seq FROM timeline GROUP BY user_id, seq)"); n != 100 {
		t.Fatalf("%d distinct timeline positions, want 100", n)
	}
	got, err := db.readMessages(ctx, func() []string {
		var ids []string
		for id := range want {
			ids = append(ids, fmt.Sprint(id))
		}
		return ids
	}())
	if err != nil || len(got) != 50 {
		t.Fatalf("readMessages: %d, %v", len(got), err)
	}
	for id, txt := range want {
		if got[id].GetContent().GetText() != txt || got[id].GetFrom() != "alice" {
			t.Fatalf("message %d archived as %v, want %q", id, got[id], txt)
		}
	}
}

// TestArchiveContentKinds round-trips every kind of content, events and
// media included, and fills the media columns.
func TestArchiveContentKinds(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	s := openHot(t, "alice", "bob")
	sha := strings.Repeat("ab", 32)
	contents := []*clientpb.Content{
		text("plain"),
		{Kind: &clientpb.Content_Emoji{Emoji: "😀"}},
		{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "location", Json: `{"lat":1}`}}},
		{Kind: &clientpb.Content_Event{Event: &clientpb.Event{Type: clientpb.EventType_EVENT_FRIEND_ADDED, Actor: "alice", Users: []string{"bob"}}}},
		{Kind: &clientpb.Content_Image{Image: &clientpb.Media{FileId: "img00000000000000000000001", Name: "cat.jpg", MimeType: "image/jpeg",
			Size: 123456, Sha256: sha, Width: 1024, Height: 768, Blurhash: "LEHV6nWB2yk8", Caption: "my cat",
			Thumbnail: &clientpb.Thumbnail{MimeType: "image/jpeg", Width: 320, Height: 240, Size: 9000}}}},
		{Kind: &clientpb.Content_Audio{Audio: &clientpb.Media{FileId: "aud00000000000000000000001", MimeType: "audio/ogg", Size: 4000, Sha256: sha, DurationMs: 3000, Voice: true}}},
		{Kind: &clientpb.Content_Video{Video: &clientpb.Media{FileId: "vid00000000000000000000001", MimeType: "video/mp4", Size: 1 << 33, Sha256: sha, Width: 1920, Height: 1080, DurationMs: 61000}}},
		{Kind: &clientpb.Content_File{File: &clientpb.Media{FileId: "fil00000000000000000000001", Name: "r.pdf", MimeType: "application/pdf", Size: 77, Sha256: sha}}},
	}
	for _, c := range contents {
		send(t, s, "alice", "bob", c)
	}
	if _, err := NewArchiver(ArchiverConfig{}, db, s, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := db.readTimeline(ctx, "bob", 0, 100, 100)
	if err != nil || len(got) != len(contents) {
		t.Fatalf("readTimeline: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		if e.GetSeq() != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.GetSeq())
		}
		if !proto.Equal(e.GetMessage().GetContent(), contents[i]) {
			t.Fatalf("content %d archived as %v, want %v", i, e.GetMessage().GetContent(), contents[i])
		}
	}
	if n := count(t, db, "SELECT count() FROM timeline WHERE kind = 'EVENT_FRIEND_ADDED'"); n != 2 {
		t.Fatalf("%d event positions, want 2", n)
	}
	rs, err := db.conn.Query(ctx, "SELECT content_kind, media_file_id, media_mime, media_size, media_sha256 FROM messages ORDER BY msg_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got2 []string
	for rs.Next() {
		var kind, id, mime, sum string
		var size uint64
		if err := rs.Scan(&kind, &id, &mime, &size, &sum); err != nil {
			t.Fatal(err)
		}
		got2 = append(got2, fmt.Sprintf("%s %q %q %d %v", kind, id, mime, size, sum == sha))
	}
	want := []string{`text "" "" 0 false`, `emoji "" "" 0 false`, `custom "" "" 0 false`, `event "" "" 0 false`,
		`image "img00000000000000000000001" "image/jpeg" 123456 true`, `audio "aud00000000000000000000001" "audio/ogg" 4000 true`,
		`video "vid00000000000000000000001" "video/mp4" 8589934592 true`, `file "fil00000000000000000000001" "application/pdf" 77 true`}
	if strings.Join(got2, "\n") != strings.Join(want, "\n") {
		t.Fatalf("messages columns:\n%s\nwant\n%s", strings.Join(got2, "\n"), strings.Join(want, "\n"))
	}
}

// TestMigrateUpgradesArchive: an archive made by the first schema gains the
// media columns (twice is harmless), its rows read as before, and the
// archiver writes into it.
func TestMigrateUpgradesArchive(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Addr: testAddr, Database: fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))}
	boot, err := Open(Config{Addr: testAddr, Database: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	if err := boot.conn.Exec(ctx, "CREATE DATABASE "+cfg.Database); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) })
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old, err := schema.ReadFile("schema/001_archive.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range splitSQL(string(old)) {
		if err := db.conn.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	// A row as the archiver wrote it before the media columns.
	epoch := time.Unix(0, 0).UTC()
	if err := db.sendColumns(ctx, "INSERT INTO messages (msg_id, conversation_id, conversation_type, from_user, to_id, "+
		"from_device, client_msg_id, sent_at_ms, sent_at, sent_date, content_kind, custom_type, content)",
		[]uint64{1}, []string{"p:a:b"}, []uint8{1}, []string{"a"}, []string{"b"}, []string{"d"}, []string{"c1"},
		[]uint64{1000}, []time.Time{epoch}, []time.Time{epoch}, []string{"text"}, []string{""}, []string{"old"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Migrate(ctx, cfg, nil); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	for _, c := range []string{"media_file_id", "media_mime", "media_size", "media_sha256"} {
		if has, err := db.hasColumn(ctx, "messages", c); err != nil || !has {
			t.Fatalf("column %s after Migrate: %v %v", c, has, err)
		}
	}
	if n := count(t, db, "SELECT count() FROM messages WHERE content = 'old' AND media_size = 0 AND media_mime = ''"); n != 1 {
		t.Fatalf("the old row reads %d times with empty media columns, want 1", n)
	}
	var r rows
	r.add(&persistence.OutboxItem{AtMs: 2000, Entry: &clientpb.Entry{Item: &clientpb.Entry_Message{Message: &clientpb.Message{
		Id: 2, ConversationId: "p:a:b", From: "a", To: "b", SentAtMs: 2000,
		Content: &clientpb.Content{Kind: &clientpb.Content_File{File: &clientpb.Media{FileId: "f", MimeType: "text/plain", Size: 9}}}}}},
		Timelines: []persistence.TimelineSeq{{User: "a", Seq: 2}}})
	if err := db.insert(ctx, &r); err != nil {
		t.Fatalf("insert into the upgraded archive: %v", err)
	}
	if n := count(t, db, "SELECT sum(media_size) FROM messages"); n != 9 {
		t.Fatalf("media_size sums to %d, want 9", n)
	}
}

// TestHistoryAcrossBoundary pages a conversation and syncs a timeline across
// the point where the hot store was trimmed.
func TestHistoryAcrossBoundary(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	hot := openHot(t, "alice", "bob", "carol")
	// alice's timeline: 40 entries, every third with carol.
	for i := range 40 {
		peer := "bob"
		if i%3 == 2 {
			peer = "carol"
		}
		send(t, hot, "alice", peer, text(fmt.Sprintf("m%d", i+1)))
	}
	if _, err := NewArchiver(ArchiverConfig{}, db, hot, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if floor, err := hot.TrimTimeline(ctx, "alice", 26); err != nil || floor != 26 {
		t.Fatalf("trim = %d, %v", floor, err)
	}
	if es, _ := hot.ReadTimeline(ctx, "alice", 0, 100); len(es) != 15 {
		t.Fatalf("hot store holds %d entries after the trim, want 15", len(es))
	}
	h := NewHistory(hot, db, nil)
	// Sync from the start in pages of 7: 1..40 without a gap.
	var after uint64
	for after < 40 {
		es, err := h.ReadTimeline(ctx, "alice", after, 7)
		if err != nil || len(es) == 0 {
			t.Fatalf("ReadTimeline(after %d) = %d entries, %v", after, len(es), err)
		}
		for i, e := range es {
			if e.GetSeq() != after+1+uint64(i) || e.GetMessage().GetContent().GetText() != fmt.Sprintf("m%d", e.GetSeq()) {
				t.Fatalf("ReadTimeline(after %d)[%d] = seq %d %q", after, i, e.GetSeq(), e.GetMessage().GetContent().GetText())
			}
		}
		after = es[len(es)-1].GetSeq()
	}
	// Page alice's conversation with bob backwards in pages of 4.
	var want []uint64
	for q := uint64(40); q >= 1; q-- {
		if (q-1)%3 != 2 {
			want = append(want, q)
		}
	}
	var got []uint64
	var before uint64
	for {
		es, err := h.ReadConversation(ctx, "alice", "p:alice:bob", before, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.GetMessage().GetContent().GetText() != fmt.Sprintf("m%d", e.GetSeq()) {
				t.Fatalf("seq %d holds %q", e.GetSeq(), e.GetMessage().GetContent().GetText())
			}
			got = append(got, e.GetSeq())
		}
		if len(es) < 4 {
			break
		}
		before = es[len(es)-1].GetSeq()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("conversation pages: %v\nwant %v", got, want)
	}
}

// TestTrimmerTrimsOnlyArchived: the trimmer trims timelines whose old
// entries are all archived, and leaves alone one that the archive holds
// only partly.
func TestTrimmerTrimsOnlyArchived(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	hot := openHot(t, "alice", "bob", "carol", "dave")
	for i := range 5 {
		send(t, hot, "alice", "bob", text(fmt.Sprint(i)))
	}
	// carol -> dave: the first message never reaches the archive, as if it
	// was sent before archiving was turned on.
	send(t, hot, "carol", "dave", text("before"))
	items, _ := hot.ReadOutbox(ctx, 100)
	if err := hot.ConfirmOutbox(ctx, items[len(items)-1].ID); err != nil {
		t.Fatal(err)
	}
	var r rows
	for i := range items[:5] {
		r.add(&items[i])
	}
	if err := db.insert(ctx, &r); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		send(t, hot, "carol", "dave", text(fmt.Sprint(i)))
	}
	if _, err := NewArchiver(ArchiverConfig{}, db, hot, nil, nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	tr := NewTrimmer(TrimmerConfig{Retention: time.Nanosecond}, db, hot, nil, nil)
	time.Sleep(5 * time.Millisecond)
	n, err := tr.Pass(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Pass = %d, %v; want alice and bob trimmed", n, err)
	}
	for user, want := range map[string]uint64{"alice": 5, "bob": 5, "carol": 0, "dave": 0} {
		if f, _ := hot.TrimFloor(ctx, user); f != want {
			t.Fatalf("%s's floor = %d, want %d", user, f, want)
		}
	}
}
