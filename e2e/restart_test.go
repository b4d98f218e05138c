package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
)

// TestRestartAfterSIGKILL: senders run flat out; the node is killed with
// SIGKILL; restarted on the same data directory, every acked message is
// there, in both timelines, and sequence numbers continue without gap or
// repeat. Retries of acked messages are still recognised.
func TestRestartAfterSIGKILL(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, data, addr)
	n := p.node()
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")

	type acked struct {
		cmid string
		ack  *clientpb.SendAck
	}
	var mu sync.Mutex
	var acks []acked
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		d := n.connect(t, alice, fmt.Sprintf("dev%d", w), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ack, err := d.SendText(c, bob, id, id)
				cancel()
				if client.CodeOf(err) == clientpb.ErrorCode_ERR_RATE_LIMITED {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if err != nil {
					return // the node died under us: this send was never acked
				}
				mu.Lock()
				acks = append(acks, acked{id, ack})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill9(t)
	close(stop)
	wg.Wait()
	if len(acks) < 100 {
		t.Fatalf("only %d acked sends before the kill", len(acks))
	}
	t.Logf("%d sends acked before SIGKILL", len(acks))

	p2 := startProcess(t, data, addr)
	n2 := p2.node()

	// Alice's timeline: gapless, and every ack points at its message.
	a := n2.connect(t, alice, "check", nil)
	var timeline []*clientpb.Entry
	for after := uint64(0); ; {
		res, err := a.Sync(ctx(t), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		timeline = append(timeline, res.GetEntries()...)
		if !res.GetHasMore() {
			break
		}
		after = timeline[len(timeline)-1].GetSeq()
	}
	requireConsecutive(t, timeline, 1)
	bySeq := map[uint64]*clientpb.Entry{}
	for _, e := range timeline {
		bySeq[e.GetSeq()] = e
	}
	for _, x := range acks {
		e := bySeq[x.ack.GetSeq()]
		if e == nil || e.GetMessage().GetId() != x.ack.GetMsgId() || e.GetMessage().GetClientMsgId() != x.cmid {
			t.Fatalf("acked %s (seq %d, id %d) is not in alice's timeline after restart: %v", x.cmid, x.ack.GetSeq(), x.ack.GetMsgId(), e)
		}
	}

	// Bob's timeline holds each of them exactly once, in alice's order.
	b := n2.connect(t, bob, "phone", u64(0))
	got := b.collect(t, len(timeline), 20*time.Second)
	requireConsecutive(t, got, 1)
	seen := map[uint64]int{}
	for i, e := range got {
		seen[e.GetMessage().GetId()]++
		if e.GetMessage().GetId() != timeline[i].GetMessage().GetId() {
			t.Fatalf("bob's entry %d is message %d, alice's is %d", i, e.GetMessage().GetId(), timeline[i].GetMessage().GetId())
		}
	}
	for _, x := range acks {
		if seen[x.ack.GetMsgId()] != 1 {
			t.Fatalf("bob has message %d %d times", x.ack.GetMsgId(), seen[x.ack.GetMsgId()])
		}
	}

	// Sequences and ids continue; retries of acked sends stay deduplicated.
	next := a.send(t, bob, "after restart")
	if next.GetSeq() != uint64(len(timeline))+1 {
		t.Fatalf("first seq after restart %d, want %d", next.GetSeq(), len(timeline)+1)
	}
	for _, x := range acks {
		if next.GetMsgId() <= x.ack.GetMsgId() {
			t.Fatalf("message id %d reused or went backwards (had %d)", next.GetMsgId(), x.ack.GetMsgId())
		}
	}
	retry, err := a.SendText(ctx(t), bob, acks[0].cmid, acks[0].cmid)
	if err != nil || !retry.GetDuplicate() || retry.GetMsgId() != acks[0].ack.GetMsgId() {
		t.Fatalf("retry of %s after restart: %v, %v", acks[0].cmid, retry, err)
	}
	last := b.collect(t, 1, 5*time.Second)
	if last[0].GetSeq() != uint64(len(timeline))+1 {
		t.Fatalf("bob's next entry has seq %d", last[0].GetSeq())
	}
	b.quiet(t, 300*time.Millisecond)
}
