package actors

import (
	"context"
	"math/bits"
	"strconv"
	"sync/atomic"
	"testing"

	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// countingStore counts the timeline reads made through it.
type countingStore struct {
	persistence.Store
	reads atomic.Int64
}

func (s *countingStore) ReadTimeline(ctx context.Context, user string, after uint64, limit int) ([]*clientpb.Entry, error) {
	s.reads.Add(1)
	return s.Store.ReadTimeline(ctx, user, after, limit)
}

// TestFindEntryBinarySearch: a message is found by id in a long timeline in
// O(log n) point reads; ids of other timelines, 0 and future ids are not.
func TestFindEntryBinarySearch(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cs := &countingStore{Store: st}
	// findEntry reads the store only: no member needed.
	d := NewService(Config{}, storesOf(cs), nil, nil).d
	ctx := context.Background()
	for _, u := range []string{"ann", "bo"} {
		if err := st.CreateAccount(ctx, persistence.Account{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}

	// 30,000 messages, two in three to ann: her ids have gaps.
	const total = 30_000
	var annIDs, boIDs []uint64
	annSeq := map[uint64]uint64{}
	for base := 0; base < total; base += 1000 {
		reqs := make([]*persistence.AppendRequest, 1000)
		for i := range reqs {
			tl := []string{"ann"}
			if (base+i)%3 == 2 {
				tl = []string{"bo"}
			}
			reqs[i] = &persistence.AppendRequest{Sender: tl[0], Timelines: tl, Message: &clientpb.Message{
				ConversationId: "s:x", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "x"}}}}
		}
		res, errs := st.AppendAll(ctx, reqs)
		for i, r := range res {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			e := r.Entries[0]
			if reqs[i].Timelines[0] == "ann" {
				annIDs = append(annIDs, e.GetMessage().GetId())
				annSeq[e.GetMessage().GetId()] = e.GetSeq()
			} else {
				boIDs = append(boIDs, e.GetMessage().GetId())
			}
		}
	}
	maxReads := int64(2 * (bits.Len(uint(len(annIDs))) + 1))
	find := func(id uint64) *clientpb.Entry {
		t.Helper()
		before := cs.reads.Load()
		e, err := d.findEntry(context.Background(), "ann", id)
		if err != nil {
			t.Fatal(err)
		}
		if n := cs.reads.Load() - before; n > maxReads {
			t.Fatalf("finding %d took %d reads, want at most %d", id, n, maxReads)
		}
		return e
	}
	for _, i := range []int{0, 1, 7, len(annIDs) / 3, len(annIDs) / 2, len(annIDs) - 2, len(annIDs) - 1} {
		id := annIDs[i]
		if e := find(id); e.GetMessage().GetId() != id || e.GetSeq() != annSeq[id] {
			t.Fatalf("find %d: %v, want seq %d", id, e, annSeq[id])
		}
	}
	for _, id := range []uint64{0, boIDs[0], boIDs[len(boIDs)/2], boIDs[len(boIDs)-1], annIDs[len(annIDs)-1] + 1, 1 << 62} {
		if e := find(id); e != nil {
			t.Fatalf("find %d: %v, want none", id, e)
		}
	}
}

// TestSendResultFanout: a stored send reports how many timelines it wrote;
// a duplicate reports none.
func TestSendResultFanout(t *testing.T) {
	t.Parallel()
	rt := sharedNode(t)
	u := newUsers(t, rt, "ann", "bo", "cy")
	ann, bo, cy := u[0], u[1], u[2]
	g1 := "g1-" + ann
	ctx := context.Background()
	send := func(identity, kind string, msg any) *actorpb.SendResult {
		t.Helper()
		res, err := rt.d.member.Request(ctx, identity, kind, msg)
		if err != nil {
			t.Fatal(err)
		}
		r := res.(*actorpb.SendResult)
		if r.GetError() != nil {
			t.Fatalf("send: %v", r.GetError())
		}
		return r
	}
	text := &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hi"}}
	private := &actorpb.SendRequest{DeviceId: "d", Send: &clientpb.Send{ClientMsgId: "p1", To: bo, Content: text}}
	if r := send(ann, KindUser, private); r.GetFanout() != 2 {
		t.Fatalf("private send: fanout %d, want 2", r.GetFanout())
	}
	if r := send(ann, KindUser, private); !r.GetAck().GetDuplicate() || r.GetFanout() != 0 {
		t.Fatalf("retry: %v", r)
	}
	self := &actorpb.SendRequest{DeviceId: "d", Send: &clientpb.Send{ClientMsgId: "p2", To: ann, Content: text}}
	if r := send(ann, KindUser, self); r.GetFanout() != 1 {
		t.Fatalf("note to self: fanout %d, want 1", r.GetFanout())
	}

	res, err := rt.d.member.Request(ctx, g1, KindGroup, &actorpb.GroupOp{User: ann, Request: &clientpb.GroupRequest{
		GroupId: g1, Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Members: []string{bo, cy}}}}})
	if err != nil || res.(*actorpb.OpResult).GetError() != nil {
		t.Fatalf("create: %v %v", res, err)
	}
	group := &actorpb.GroupSend{User: ann, DeviceId: "d", Send: &clientpb.Send{ClientMsgId: "g1", To: g1, Content: text,
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}}
	if r := send(g1, KindGroup, group); r.GetFanout() != 4 { // three members and the group's own sequence
		t.Fatalf("group send: fanout %d, want 4", r.GetFanout())
	}
	if r := send(g1, KindGroup, group); !r.GetAck().GetDuplicate() || r.GetFanout() != 0 {
		t.Fatalf("group retry: %v", r)
	}
}

// BenchmarkFindEntry finds the oldest message of timelines of growing
// length: the cost grows with log n (a backward scan grew with n).
func BenchmarkFindEntry(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			st, err := embedded.Open(b.TempDir(), embedded.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			d := NewService(Config{}, storesOf(st), nil, nil).d
			ctx := context.Background()
			if err := st.CreateAccount(ctx, persistence.Account{UserID: "ann"}); err != nil {
				b.Fatal(err)
			}
			var first uint64
			for base := 0; base < n; base += 1000 {
				reqs := make([]*persistence.AppendRequest, min(1000, n-base))
				for i := range reqs {
					reqs[i] = &persistence.AppendRequest{Sender: "ann", Timelines: []string{"ann"}, Message: &clientpb.Message{
						ConversationId: "s:x", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "x"}}}}
				}
				res, errs := st.AppendAll(ctx, reqs)
				for i := range res {
					if errs[i] != nil {
						b.Fatal(errs[i])
					}
				}
				if first == 0 {
					first = res[0].Entries[0].GetMessage().GetId()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if e, err := d.findEntry(context.Background(), "ann", first); err != nil || e == nil {
					b.Fatalf("find: %v, %v", e, err)
				}
			}
		})
	}
}
