package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// TimelineStore is what the Timelines suite runs over: the contract, the
// accounts its appends need, and Close.
type TimelineStore interface {
	persistence.Timelines
	persistence.Accounts
	io.Closer
}

// Timelines is the conformance suite of persistence.Timelines: seqs, ids,
// deduplication and atomicity under concurrency, and every read.
func Timelines(t *testing.T, open func(t *testing.T) TimelineStore, known ...Known) {
	runSuite(t, open, known, []test[TimelineStore]{
		{"AppendSeqsPerTimeline", testAppendSeqsPerTimeline},
		{"AppendAssignsIDAndTime", testAppendAssignsIDAndTime},
		{"AppendStoresMessage", testAppendStoresMessage},
		{"Dedup", testDedup},
		{"DedupPerSender", testDedupPerSender},
		{"UnknownUser", testUnknownUser},
		{"RejectedAppendConsumesNoMsgID", testRejectedAppendConsumesNoMsgID},
		{"InvalidRequests", testInvalidRequests},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"ReadTimeline", testReadTimeline},
		{"LastSeq", testLastSeq},
		{"ReadConversation", testReadConversation},
		{"CanceledContext", testCanceledContext},
		{"Closed", testClosed},
		{"CloseWhileAppending", testCloseWhileAppending},
		{"AppendKeepsMentionsAndEvents", testAppendKeepsMentionsAndEvents},
		{"AppendAll", testAppendAll},
	})
}

// Durability checks that everything a store acknowledged survives Close
// and reopening, and that seqs, msg ids and deduplication carry on from the
// stored state. Every call of reopen must open the same underlying data,
// empty on the first call. The suite closes each store before reopening; the
// cleanup reopen registers must tolerate a second Close.
func Durability(t *testing.T, reopen func(t *testing.T) TimelineStore) {
	ctx := context.Background()
	s := reopen(t)
	CreateAccounts(t, s, "alice", "bob", "carol")
	var written []*clientpb.Entry // alice's timeline as acknowledged
	for i := range 20 {
		to := []string{"bob", "carol"}[i%2]
		res := mustAppend(t, s, newReq("alice", to, fmt.Sprintf("d%d", i), "alice", to))
		written = append(written, res.Entries[0])
	}
	lastID := written[len(written)-1].GetMessage().GetId()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen(t)
	a, err := s.GetAccount(ctx, "bob")
	if err != nil || a.UserID != "bob" {
		t.Fatalf("GetAccount(bob) after reopen = %+v, %v", a, err)
	}
	got := readAll(t, s, "alice")
	if len(got) != len(written) {
		t.Fatalf("after reopen alice has %d entries, want %d", len(got), len(written))
	}
	for i := range got {
		if !proto.Equal(got[i], written[i]) {
			t.Fatalf("after reopen entry %d = %v, want %v", i, got[i], written[i])
		}
	}
	if n := lastSeq(t, s, "alice"); n != 20 {
		t.Fatalf("LastSeq(alice) after reopen = %d, want 20", n)
	}
	dup := mustAppend(t, s, newReq("alice", "bob", "d4", "alice", "bob"))
	if !dup.Duplicate || len(dup.Entries) != 1 || !proto.Equal(dup.Entries[0], written[4]) {
		t.Fatalf("retry of d4 after reopen = %v, want duplicate of %v", dup, written[4])
	}
	res := mustAppend(t, s, newReq("alice", "bob", "after", "alice", "bob"))
	if res.Duplicate || res.Entries[0].Seq != 21 || res.Entries[1].Seq != 11 {
		t.Fatalf("append after reopen got seqs %v, want alice 21 and bob 11", seqs(res.Entries))
	}
	if id := res.Entries[0].GetMessage().GetId(); id <= lastID {
		t.Fatalf("msg id after reopen = %d, want above %d", id, lastID)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen(t)
	defer s.Close()
	got = readAll(t, s, "alice")
	if len(got) != 21 || !proto.Equal(got[20], res.Entries[0]) {
		t.Fatalf("after second reopen alice has %d entries ending %v, want 21 ending %v", len(got), got[len(got)-1], res.Entries[0])
	}
}

func testAppendSeqsPerTimeline(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob", "carol")
	steps := []struct {
		timelines []string
		want      []uint64
	}{
		{[]string{"alice", "bob"}, []uint64{1, 1}},
		{[]string{"alice", "bob"}, []uint64{2, 2}},
		{[]string{"alice"}, []uint64{3}},
		{[]string{"bob", "carol"}, []uint64{3, 1}},
		{[]string{"carol", "alice", "bob"}, []uint64{2, 4, 4}},
	}
	for i, st := range steps {
		res := mustAppend(t, s, newReq(st.timelines[0], "x", fmt.Sprintf("m%d", i), st.timelines...))
		if res.Duplicate {
			t.Fatalf("append %d reported a duplicate", i)
		}
		if got := seqs(res.Entries); !slices.Equal(got, st.want) {
			t.Fatalf("append %d to %v got seqs %v, want %v", i, st.timelines, got, st.want)
		}
	}
	for user, want := range map[string]uint64{"alice": 4, "bob": 4, "carol": 2} {
		if got := lastSeq(t, s, user); got != want {
			t.Errorf("LastSeq(%s) = %d, want %d", user, got, want)
		}
	}
}

func testAppendAssignsIDAndTime(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	var prev uint64
	for i := range 5 {
		before := time.Now()
		res := mustAppend(t, s, newReq("alice", "bob", fmt.Sprintf("m%d", i), "alice", "bob"))
		after := time.Now()
		m0, m1 := res.Entries[0].GetMessage(), res.Entries[1].GetMessage()
		if m0.GetId() == 0 || m0.GetId() != m1.GetId() {
			t.Fatalf("append %d: msg ids %d and %d, want one non-zero id in both entries", i, m0.GetId(), m1.GetId())
		}
		if m0.GetId() <= prev {
			t.Fatalf("append %d: msg id %d not above the previous %d", i, m0.GetId(), prev)
		}
		prev = m0.GetId()
		// Allow some clock skew for stores whose clock is on another host.
		lo, hi := before.Add(-5*time.Second).UnixMilli(), after.Add(5*time.Second).UnixMilli()
		if at := int64(m0.GetSentAtMs()); at < lo || at > hi {
			t.Fatalf("append %d: SentAtMs %d not within [%d, %d]", i, at, lo, hi)
		}
		if m1.GetSentAtMs() != m0.GetSentAtMs() {
			t.Fatalf("append %d: SentAtMs differs between entries: %d, %d", i, m0.GetSentAtMs(), m1.GetSentAtMs())
		}
	}
}

func testAppendStoresMessage(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob", "carol")
	contents := []*clientpb.Content{
		{Kind: &clientpb.Content_Text{Text: "hello, 世界 👋"}},
		{Kind: &clientpb.Content_Emoji{Emoji: "sticker:cats/12"}},
		{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "location", Json: `{"lat":1.5,"lng":2}`}}},
	}
	for i, c := range contents {
		req := &persistence.AppendRequest{
			Sender:      "alice",
			ClientMsgID: fmt.Sprintf("c-%d/with:odd chars", i),
			Message: &clientpb.Message{
				ConversationId:   "g:team",
				ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP,
				From:             "alice",
				To:               "team",
				FromDevice:       "phone-1",
				ClientMsgId:      fmt.Sprintf("c-%d/with:odd chars", i),
				Content:          c,
			},
			Timelines: []string{"alice", "bob", "carol"},
		}
		want := proto.Clone(req.Message).(*clientpb.Message)
		res := mustAppend(t, s, req)
		if len(res.Entries) != 3 {
			t.Fatalf("got %d entries, want 3", len(res.Entries))
		}
		want.Id = res.Entries[0].GetMessage().GetId()
		want.SentAtMs = res.Entries[0].GetMessage().GetSentAtMs()
		for j, user := range req.Timelines {
			e := res.Entries[j]
			if !proto.Equal(e.GetMessage(), want) {
				t.Fatalf("returned entry for %s holds %v, want %v", user, e.GetMessage(), want)
			}
			stored := readAll(t, s, user)
			last := stored[len(stored)-1]
			if last.Seq != e.Seq || !proto.Equal(last.GetMessage(), want) {
				t.Fatalf("stored entry for %s = %v, want seq %d with %v", user, last, e.Seq, want)
			}
		}
	}
}

func testDedup(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob", "carol")
	mustAppend(t, s, newReq("bob", "alice", "warmup", "bob", "alice")) // offset alice's seqs from bob's
	first := mustAppend(t, s, newReq("alice", "bob", "m1", "alice", "bob"))
	if first.Duplicate {
		t.Fatal("first append reported a duplicate")
	}
	mustAppend(t, s, newReq("alice", "carol", "m2", "alice", "carol"))
	before := map[string]uint64{"alice": lastSeq(t, s, "alice"), "bob": lastSeq(t, s, "bob"), "carol": lastSeq(t, s, "carol")}

	// A retry, even one whose content differs, returns the original.
	retry := newReq("alice", "bob", "m1", "alice", "bob")
	retry.Message.Content = &clientpb.Content{Kind: &clientpb.Content_Text{Text: "changed"}}
	for range 2 {
		res := mustAppend(t, s, retry)
		if !res.Duplicate {
			t.Fatal("retry with the same ClientMsgID was not reported as a duplicate")
		}
		if len(res.Entries) != 1 || !proto.Equal(res.Entries[0], first.Entries[0]) {
			t.Fatalf("duplicate returned %v, want the original first entry %v", res.Entries, first.Entries[0])
		}
	}
	for user, want := range before {
		if got := lastSeq(t, s, user); got != want {
			t.Errorf("LastSeq(%s) after duplicates = %d, want unchanged %d", user, got, want)
		}
	}
	if got := readAll(t, s, "bob"); len(got) != int(before["bob"]) || got[len(got)-1].GetMessage().GetContent().GetText() != "text m1" {
		t.Fatalf("bob's timeline after duplicates: %v", got)
	}
}

func testDedupPerSender(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	a := mustAppend(t, s, newReq("alice", "bob", "same", "alice", "bob"))
	b := mustAppend(t, s, newReq("bob", "alice", "same", "bob", "alice"))
	if a.Duplicate || b.Duplicate {
		t.Fatalf("two senders sharing a ClientMsgID: duplicate flags %v, %v; want false, false", a.Duplicate, b.Duplicate)
	}
	if a.Entries[0].GetMessage().GetId() == b.Entries[0].GetMessage().GetId() {
		t.Fatal("two senders sharing a ClientMsgID got the same msg id")
	}
	if got := seqs(b.Entries); !slices.Equal(got, []uint64{2, 2}) {
		t.Fatalf("second sender's message got seqs %v, want [2 2]", got)
	}
}

func testUnknownUser(t *testing.T, s TimelineStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "alice", "bob")
	mustAppend(t, s, newReq("alice", "bob", "m1", "alice", "bob"))

	for _, timelines := range [][]string{{"alice", "ghost"}, {"ghost", "alice"}, {"alice", "bob", "ghost"}} {
		res, err := s.Append(ctx, newReq("alice", "ghost", "to-ghost", timelines...))
		if !errors.Is(err, persistence.ErrUnknownUser) {
			t.Fatalf("Append to %v = %v, %v; want ErrUnknownUser", timelines, res, err)
		}
	}
	for _, user := range []string{"alice", "bob"} {
		if got := lastSeq(t, s, user); got != 1 {
			t.Fatalf("LastSeq(%s) after rejected appends = %d, want 1", user, got)
		}
	}
	if got := lastSeq(t, s, "ghost"); got != 0 {
		t.Fatalf("LastSeq(ghost) = %d, want 0", got)
	}

	// No seq was consumed...
	res := mustAppend(t, s, newReq("alice", "bob", "m2", "alice", "bob"))
	if got := seqs(res.Entries); !slices.Equal(got, []uint64{2, 2}) {
		t.Fatalf("append after rejected ones got seqs %v, want [2 2]", got)
	}
	// ...and neither was the dedup key.
	CreateAccounts(t, s, "ghost")
	res = mustAppend(t, s, newReq("alice", "ghost", "to-ghost", "alice", "ghost"))
	if res.Duplicate {
		t.Fatal("ClientMsgID of a rejected append was consumed: the retry is a duplicate")
	}
	if got := seqs(res.Entries); !slices.Equal(got, []uint64{3, 1}) {
		t.Fatalf("append once ghost exists got seqs %v, want [3 1]", got)
	}
}

func testRejectedAppendConsumesNoMsgID(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	ctx := context.Background()
	first := mustAppend(t, s, PrivateRequest("alice", "bob", "m1"))
	req := PrivateRequest("alice", "bob", "m2")
	req.Timelines = []string{"alice", "ghost"}
	if _, err := s.Append(ctx, req); !errors.Is(err, persistence.ErrUnknownUser) {
		t.Fatalf("append to ghost = %v, want ErrUnknownUser", err)
	}
	next := mustAppend(t, s, PrivateRequest("alice", "bob", "m3"))
	if a, b := first.Entries[0].GetMessage().GetId(), next.Entries[0].GetMessage().GetId(); b != a+1 {
		t.Fatalf("msg ids %d then %d around a rejected append, want consecutive", a, b)
	}
}

// testInvalidRequests: requests no store can take (see
// persistence.CheckAppend) are refused and write nothing.
func testInvalidRequests(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice")
	ctx := context.Background()
	bad := []*persistence.AppendRequest{
		nil,
		{Sender: "alice", ClientMsgID: "x", Timelines: []string{"alice"}},
		{Sender: "alice", ClientMsgID: "x", Message: &clientpb.Message{ConversationId: "p:a:b"}},
		{Sender: "al/ice", ClientMsgID: "x", Message: &clientpb.Message{ConversationId: "p:a:b"}, Timelines: []string{"alice"}},
		{Sender: "alice", ClientMsgID: "x", Message: &clientpb.Message{ConversationId: "g:a/b"}, Timelines: []string{"alice"}},
		{Sender: "alice", ClientMsgID: "x", Message: &clientpb.Message{ConversationId: "p:a:b"}, Timelines: []string{"alice", "x/y"}},
	}
	for i, req := range bad {
		if _, err := s.Append(ctx, req); err == nil {
			t.Errorf("bad request %d accepted", i)
		}
	}
	if n, err := s.LastSeq(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("LastSeq(alice) after bad requests = %d, %v", n, err)
	}
}

func testConcurrentAppends(t *testing.T, s TimelineStore) {
	const (
		writers = 32
		each    = 100
		nUsers  = 10
	)
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	CreateAccounts(t, s, users...)

	type placed struct {
		user  string
		seq   uint64
		msgID uint64
	}
	var (
		mu     sync.Mutex
		all    []placed
		wg     sync.WaitGroup
		failed = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var mine []placed
			for i := range each {
				a := users[rng.IntN(nUsers)]
				b := a
				for b == a {
					b = users[rng.IntN(nUsers)]
				}
				timelines := []string{a, b}
				if i%4 == 3 { // now and then a third timeline, as for a small group
					if c := users[rng.IntN(nUsers)]; c != a && c != b {
						timelines = append(timelines, c)
					}
				}
				res, err := s.Append(context.Background(), newReq(a, b, fmt.Sprintf("w%d-%d", w, i), timelines...))
				if err != nil {
					failed <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				if res.Duplicate || len(res.Entries) != len(timelines) {
					failed <- fmt.Errorf("writer %d append %d: duplicate=%v with %d entries", w, i, res.Duplicate, len(res.Entries))
					return
				}
				for j, e := range res.Entries {
					mine = append(mine, placed{timelines[j], e.Seq, e.GetMessage().GetId()})
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Fatal(err)
	}

	// Every timeline reads back as exactly 1..n, in msg id order, and holds
	// what the appends reported.
	stored := make(map[string]map[uint64]uint64) // user -> seq -> msg id
	timelinesOf := make(map[uint64]int)          // msg id -> timelines holding it
	total := 0
	for _, u := range users {
		entries := readAll(t, s, u)
		stored[u] = make(map[uint64]uint64, len(entries))
		var prevID uint64
		for i, e := range entries {
			if e.Seq != uint64(i+1) {
				t.Fatalf("timeline %s: entry %d has seq %d, want %d (gap or repeat)", u, i, e.Seq, i+1)
			}
			id := e.GetMessage().GetId()
			if id <= prevID {
				t.Fatalf("timeline %s: seq %d has msg id %d, not above the previous %d", u, e.Seq, id, prevID)
			}
			prevID = id
			stored[u][e.Seq] = id
			timelinesOf[id]++
		}
		if n := lastSeq(t, s, u); n != uint64(len(entries)) {
			t.Fatalf("LastSeq(%s) = %d, but the timeline holds %d entries", u, n, len(entries))
		}
		total += len(entries)
	}
	if total != len(all) {
		t.Fatalf("timelines hold %d entries, appends reported %d", total, len(all))
	}
	perMsg := make(map[uint64]int)
	for _, p := range all {
		if got := stored[p.user][p.seq]; got != p.msgID {
			t.Fatalf("timeline %s seq %d holds msg %d, append reported msg %d", p.user, p.seq, got, p.msgID)
		}
		perMsg[p.msgID]++
	}
	if len(perMsg) != writers*each {
		t.Fatalf("%d distinct msg ids for %d appends", len(perMsg), writers*each)
	}
	for id, n := range perMsg {
		if timelinesOf[id] != n {
			t.Fatalf("msg id %d is in %d timelines, its append reported %d (msg ids not unique?)", id, timelinesOf[id], n)
		}
	}
}

func testConcurrentDuplicates(t *testing.T, s TimelineStore) {
	const (
		racers = 16
		rounds = 20
	)
	CreateAccounts(t, s, "alice", "bob", "carol", "dave")
	// Background traffic keeps the store busy so that racers pile up and
	// reach it together, as they do under load.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	defer bg.Wait()
	defer close(stop)
	for w := range 4 {
		bg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(context.Background(), newReq("carol", "dave", fmt.Sprintf("bg%d-%d", w, i), "carol", "dave")); err != nil {
					t.Errorf("background append: %v", err)
					return
				}
			}
		})
	}
	for round := range rounds {
		start := make(chan struct{})
		results := make([]*persistence.AppendResult, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.Append(context.Background(), newReq("alice", "bob", fmt.Sprintf("race%d", round), "alice", "bob"))
			})
		}
		close(start)
		wg.Wait()

		originals := 0
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("round %d racer %d: %v", round, i, errs[i])
			}
			if !res.Duplicate {
				originals++
			}
			first, want := res.Entries[0], results[0].Entries[0]
			if first.Seq != want.Seq || first.GetMessage().GetId() != want.GetMessage().GetId() {
				t.Fatalf("round %d: racer %d got seq %d msg %d, racer 0 got seq %d msg %d", round,
					i, first.Seq, first.GetMessage().GetId(), want.Seq, want.GetMessage().GetId())
			}
		}
		if originals != 1 {
			t.Fatalf("round %d: %d racers were told they stored the message, want exactly 1", round, originals)
		}
		for _, u := range []string{"alice", "bob"} {
			if got := lastSeq(t, s, u); got != uint64(round+1) {
				t.Fatalf("round %d: LastSeq(%s) = %d, want %d", round, u, got, round+1)
			}
		}
	}
}

func testReadTimeline(t *testing.T, s TimelineStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "alice", "bob", "alice2")
	var want []*clientpb.Entry
	for i := range 10 {
		res := mustAppend(t, s, newReq("alice", "bob", fmt.Sprintf("m%d", i), "alice", "bob"))
		want = append(want, res.Entries[0])
	}
	// A user whose id extends alice's must not leak into her timeline.
	mustAppend(t, s, newReq("alice2", "bob", "x", "alice2", "bob"))

	var got []*clientpb.Entry
	for after := uint64(0); ; {
		page, err := s.ReadTimeline(ctx, "alice", after, 3)
		if err != nil {
			t.Fatalf("ReadTimeline(after %d): %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("ReadTimeline(limit 3) returned %d entries", len(page))
		}
		if len(page) == 0 {
			break
		}
		if page[0].Seq != after+1 {
			t.Fatalf("ReadTimeline(after %d) starts at seq %d", after, page[0].Seq)
		}
		got = append(got, page...)
		after = page[len(page)-1].Seq
	}
	if len(got) != len(want) {
		t.Fatalf("paging read %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 1, []uint64{1}},
		{0, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{7, 100, []uint64{8, 9, 10}},
		{9, 2, []uint64{10}},
		{10, 5, nil},
		{1000, 5, nil},
	} {
		page, err := s.ReadTimeline(ctx, "alice", tc.after, tc.limit)
		if err != nil {
			t.Fatalf("ReadTimeline(after %d, limit %d): %v", tc.after, tc.limit, err)
		}
		if got := seqs(page); !slices.Equal(got, tc.want) {
			t.Errorf("ReadTimeline(after %d, limit %d) = seqs %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
	for _, user := range []string{"nobody", "alic"} {
		if page, err := s.ReadTimeline(ctx, user, 0, 10); err != nil || len(page) != 0 {
			t.Errorf("ReadTimeline(%s) = %d entries, %v; want none", user, len(page), err)
		}
	}
}

func testLastSeq(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob", "alice2")
	for _, u := range []string{"nobody", "alice"} {
		if got := lastSeq(t, s, u); got != 0 {
			t.Fatalf("LastSeq(%s) before any append = %d, want 0", u, got)
		}
	}
	for i := range 3 {
		mustAppend(t, s, newReq("alice", "bob", fmt.Sprintf("m%d", i), "alice", "bob"))
	}
	mustAppend(t, s, newReq("bob", "bob", "note", "bob"))
	mustAppend(t, s, newReq("alice2", "bob", "x", "alice2"))
	for user, want := range map[string]uint64{"alice": 3, "bob": 4, "alice2": 1, "alic": 0} {
		if got := lastSeq(t, s, user); got != want {
			t.Errorf("LastSeq(%s) = %d, want %d", user, got, want)
		}
	}
}

func testReadConversation(t *testing.T, s TimelineStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "alice", "bob", "carol")
	type conv struct {
		id, to    string
		timelines []string
	}
	convs := []conv{
		{"p:alice:bob", "bob", []string{"alice", "bob"}},
		{"p:alice:carol", "carol", []string{"alice", "carol"}},
		{"g:team", "team", []string{"alice", "bob", "carol"}},
		{"p:alice:bob", "bob", []string{"alice", "bob"}},
		// A conversation whose id extends another's must stay apart from it.
		{"g:team2", "team2", []string{"alice", "bob"}},
	}
	// want[user][conversation] lists the user's entries of it, oldest first.
	want := map[string]map[string][]*clientpb.Entry{}
	for i := range 40 {
		c := convs[i%len(convs)]
		req := newReq(c.timelines[0], c.to, fmt.Sprintf("m%d", i), c.timelines...)
		req.Message.ConversationId = c.id
		res := mustAppend(t, s, req)
		for j, u := range c.timelines {
			if want[u] == nil {
				want[u] = map[string][]*clientpb.Entry{}
			}
			want[u][c.id] = append(want[u][c.id], res.Entries[j])
		}
	}

	for _, user := range []string{"alice", "bob", "carol"} {
		for _, id := range []string{"p:alice:bob", "p:alice:carol", "g:team", "g:team2"} {
			expect := slices.Clone(want[user][id])
			slices.Reverse(expect)
			for _, limit := range []int{1, 3, 7, 1000} {
				var got []*clientpb.Entry
				before := uint64(0)
				for page := 0; ; page++ {
					if page > 100 {
						t.Fatalf("%s/%s: paging does not end", user, id)
					}
					entries, err := s.ReadConversation(ctx, user, id, before, limit)
					if err != nil {
						t.Fatalf("ReadConversation(%s, %s, %d, %d): %v", user, id, before, limit, err)
					}
					if len(entries) > limit {
						t.Fatalf("ReadConversation(limit %d) returned %d entries", limit, len(entries))
					}
					if len(entries) == 0 {
						break
					}
					for _, e := range entries {
						if before != 0 && e.Seq >= before {
							t.Fatalf("ReadConversation(before %d) returned seq %d", before, e.Seq)
						}
						before = e.Seq
					}
					got = append(got, entries...)
				}
				if len(got) != len(expect) {
					t.Fatalf("%s/%s limit %d: paged %d entries (seqs %v), want %d (seqs %v)",
						user, id, limit, len(got), seqs(got), len(expect), seqs(expect))
				}
				for i := range expect {
					if !proto.Equal(got[i], expect[i]) {
						t.Fatalf("%s/%s limit %d: entry %d = %v, want %v", user, id, limit, i, got[i], expect[i])
					}
				}
			}
		}
	}

	// beforeSeq excludes itself and everything newer.
	expect := slices.Clone(want["alice"]["p:alice:bob"])
	slices.Reverse(expect)
	entries, err := s.ReadConversation(ctx, "alice", "p:alice:bob", expect[2].Seq, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := seqs(entries), seqs(expect[3:5]); !slices.Equal(got, w) {
		t.Fatalf("ReadConversation(before %d, limit 2) = seqs %v, want %v", expect[2].Seq, got, w)
	}
	for _, tc := range []struct {
		user, conv string
		before     uint64
	}{
		{"alice", "p:alice:bob", 1},
		{"carol", "p:alice:bob", 0},
		{"alice", "p:bob:carol", 0},
		{"alice", "g:tea", 0},
		{"nobody", "g:team", 0},
	} {
		entries, err := s.ReadConversation(ctx, tc.user, tc.conv, tc.before, 10)
		if err != nil || len(entries) != 0 {
			t.Errorf("ReadConversation(%s, %s, before %d) = seqs %v, %v; want none", tc.user, tc.conv, tc.before, seqs(entries), err)
		}
	}
}

func testCanceledContext(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	mustAppend(t, s, newReq("alice", "bob", "m1", "alice", "bob"))
	checkCanceled(t, timelineCalls(s))
}

func testClosed(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	mustAppend(t, s, newReq("alice", "bob", "m1", "alice", "bob"))
	checkClosed(t, s, timelineCalls(s))
}

func testCloseWhileAppending(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	const writers = 8
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(context.Background(), newReq("alice", "bob", fmt.Sprintf("w%d-%d", w, i), "alice", "bob"))
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("appends in flight during Close did not return")
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, persistence.ErrClosed) {
			t.Errorf("append during Close failed with %v, want ErrClosed", err)
		}
	}
}

// timelineCalls returns a call of every Timelines method, by name.
func timelineCalls(s persistence.Timelines) map[string]call {
	return map[string]call{
		"Append": func(ctx context.Context) error {
			_, err := s.Append(ctx, newReq("alice", "bob", "m2", "alice", "bob"))
			return err
		},
		"AppendAll": func(ctx context.Context) error {
			_, errs := s.AppendAll(ctx, []*persistence.AppendRequest{newReq("alice", "bob", "m3", "alice", "bob")})
			return errs[0]
		},
		"ReadTimeline": func(ctx context.Context) error {
			_, err := s.ReadTimeline(ctx, "alice", 0, 10)
			return err
		},
		"LastSeq": func(ctx context.Context) error {
			_, err := s.LastSeq(ctx, "alice")
			return err
		},
		"ReadConversation": func(ctx context.Context) error {
			_, err := s.ReadConversation(ctx, "alice", "p:alice:bob", 0, 10)
			return err
		},
	}
}

// testAppendKeepsMentionsAndEvents: every stored field of a message comes
// back, including group mentions and system events.
func testAppendKeepsMentionsAndEvents(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	req := newReq("alice", "bob", "m-mention", "alice", "bob")
	req.Message.Mentions = []string{"bob", "all"}
	mustAppend(t, s, req)
	ev := newReq("alice", "bob", "", "bob")
	ev.Message.Content = &clientpb.Content{Kind: &clientpb.Content_Event{Event: &clientpb.Event{
		Type: clientpb.EventType_EVENT_READ, Actor: "alice", MsgId: 7}}}
	mustAppend(t, s, ev)
	got := readAll(t, s, "bob")
	if len(got) != 2 || !slices.Equal(got[0].GetMessage().GetMentions(), []string{"bob", "all"}) {
		t.Fatalf("mentions not kept: %v", got)
	}
	if e := got[1].GetMessage().GetContent().GetEvent(); e.GetType() != clientpb.EventType_EVENT_READ || e.GetMsgId() != 7 {
		t.Fatalf("event not kept: %v", got[1])
	}
}

// testAppendAll: a batch is stored in order with consecutive seqs, each
// request answered as Append would answer it (a repeated client msg id is a
// duplicate of the first, an unknown user fails alone).
func testAppendAll(t *testing.T, s TimelineStore) {
	CreateAccounts(t, s, "alice", "bob")
	var reqs []*persistence.AppendRequest
	for i := range 20 {
		reqs = append(reqs, newReq("alice", "bob", fmt.Sprintf("all-%d", i), "alice", "bob"))
	}
	reqs = append(reqs, newReq("alice", "bob", "all-3", "alice", "bob")) // a retry in the same batch
	reqs = append(reqs, newReq("alice", "nobody", "all-x", "alice", "nobody"))
	res, errs := s.AppendAll(context.Background(), reqs)
	if len(res) != len(reqs) || len(errs) != len(reqs) {
		t.Fatalf("AppendAll answered %d/%d of %d", len(res), len(errs), len(reqs))
	}
	for i := range 20 {
		if errs[i] != nil || res[i].Duplicate || res[i].Entries[0].GetSeq() != uint64(i+1) || res[i].Entries[1].GetSeq() != uint64(i+1) {
			t.Fatalf("request %d: %v, %v", i, res[i], errs[i])
		}
	}
	if errs[20] != nil || !res[20].Duplicate || res[20].Entries[0].GetMessage().GetId() != res[3].Entries[0].GetMessage().GetId() {
		t.Fatalf("retry in the batch: %v, %v", res[20], errs[20])
	}
	if !errors.Is(errs[21], persistence.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", errs[21])
	}
	got := readAll(t, s, "bob")
	if len(got) != 20 {
		t.Fatalf("bob's timeline has %d entries, want 20", len(got))
	}
	for i, e := range got {
		if e.GetMessage().GetClientMsgId() != fmt.Sprintf("all-%d", i) || e.GetSeq() != uint64(i+1) {
			t.Fatalf("entry %d = %v", i, e)
		}
	}
}
