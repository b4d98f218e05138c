package loadgen

import (
	"strings"
	"sync"
	"testing"
)

// event is one step of a synthetic stream: an ack (Expect) or a push (Deliver).
type event struct {
	ack      bool
	seq, msg uint64
}

func acked(msg uint64) event       { return event{ack: true, msg: msg} }
func pushed(seq, msg uint64) event { return event{seq: seq, msg: msg} }
func run(d *Device, evs ...event)  { feed(d, evs) }
func feed(d *Device, evs []event) {
	for _, e := range evs {
		e.apply(d)
	}
}
func (e event) apply(d *Device) (fresh bool) {
	if e.ack {
		d.Expect(e.msg)
		return false
	}
	return d.Deliver(e.seq, e.msg)
}

// clean is a stream of five messages with acks before and after their
// deliveries and legitimate re-pushes of processed seqs.
func clean() []event {
	return []event{
		acked(101), pushed(1, 101),
		pushed(2, 102), acked(102), // delivered before the sender saw its ack
		acked(103), pushed(3, 103),
		pushed(2, 102), pushed(3, 103), // resent after a lost PushAck
		acked(104), acked(105), pushed(4, 104), pushed(5, 105),
		pushed(1, 101), // a resume from an older lastSeq
	}
}

func TestCheckerCleanStream(t *testing.T) {
	c := NewChecker(3)
	d := c.Device("bob", "phone")
	evs := clean()
	fresh := 0
	for i, e := range evs {
		if e.apply(d) {
			fresh++
		}
		if i == 6 {
			c.Rotate() // forgetting old deliveries must not invent violations
		}
	}
	r := c.Result()
	if r.Violations() != 0 || len(r.Examples) != 0 {
		t.Fatalf("clean stream: %s, examples %v", r.Summary(), r.Examples)
	}
	if fresh != 5 || r.Delivered != 5 || r.Repushed != 3 || r.Unacked != 0 || d.Last() != 5 || d.Pending() != 0 {
		t.Fatalf("fresh %d, result %+v, last %d, pending %d", fresh, r, d.Last(), d.Pending())
	}
	if !strings.HasSuffix(r.Summary(), "PASS") {
		t.Fatalf("summary %q", r.Summary())
	}
}

func TestCheckerViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []event
		want   CheckResult // only the violation counts are compared
		kind   string      // the kind of the first example
		seq    uint64      // and its seq
	}{
		{"loss", []event{acked(1), acked(2), acked(3), pushed(1, 1), pushed(2, 3)},
			CheckResult{Losses: 1}, KindLoss, 0},
		{"duplicate: same msg id twice", []event{acked(7), pushed(1, 7), pushed(2, 7), pushed(3, 8)},
			CheckResult{Duplicates: 1}, KindDuplicate, 2},
		{"duplicate: same msg id at two seqs, before its ack", []event{pushed(1, 7), pushed(2, 8), pushed(3, 7), acked(7), acked(8)},
			CheckResult{Duplicates: 1}, KindDuplicate, 3},
		{"reorder", []event{acked(1), acked(2), acked(3), acked(4), pushed(1, 1), pushed(2, 2), pushed(4, 4), pushed(3, 3)},
			CheckResult{Reorders: 1, Gaps: 1}, KindReorder, 3},
		{"gap", []event{acked(1), acked(4), pushed(1, 1), pushed(4, 4)},
			CheckResult{Gaps: 1}, KindGap, 4},
		{"gap that hides a loss", []event{acked(1), acked(2), acked(3), pushed(1, 1), pushed(3, 3)},
			CheckResult{Gaps: 1, Losses: 1}, KindLoss, 0},
		{"everything at once", []event{acked(1), acked(2), acked(3), acked(4), acked(5),
			pushed(1, 1), pushed(3, 3), pushed(2, 2), pushed(4, 3), pushed(4, 3)},
			CheckResult{Losses: 2, Duplicates: 1, Reorders: 1, Gaps: 1}, KindLoss, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(5)
			feed(c.Device("bob", "phone"), tc.events)
			r := c.Result()
			if r.Losses != tc.want.Losses || r.Duplicates != tc.want.Duplicates || r.Reorders != tc.want.Reorders || r.Gaps != tc.want.Gaps {
				t.Fatalf("got %s, want losses %d duplicates %d reorderings %d gaps %d",
					r.Summary(), tc.want.Losses, tc.want.Duplicates, tc.want.Reorders, tc.want.Gaps)
			}
			if int64(len(r.Examples)) != r.Violations() {
				t.Fatalf("%d examples for %d violations: %v", len(r.Examples), r.Violations(), r.Examples)
			}
			ex := r.Examples[0]
			if ex.Kind != tc.kind || ex.Seq != tc.seq || ex.User != "bob" || ex.Device != "phone" || ex.MsgID == 0 {
				t.Fatalf("first example %+v, want kind %s seq %d", ex, tc.kind, tc.seq)
			}
			if !strings.HasSuffix(r.Summary(), "FAIL") {
				t.Fatalf("summary %q", r.Summary())
			}
		})
	}
}

// A duplicate is caught while the first delivery is within the last two
// Rotate periods.
func TestCheckerDuplicateAcrossRotate(t *testing.T) {
	c := NewChecker(1)
	d := c.Device("bob", "phone")
	run(d, acked(1), pushed(1, 1))
	c.Rotate()
	run(d, pushed(2, 1))
	if r := c.Result(); r.Duplicates != 1 {
		t.Fatalf("got %s", r.Summary())
	}
}

// Each device of a recipient is checked on its own: a message one device
// missed is a loss even when another device got it.
func TestCheckerDevicesApart(t *testing.T) {
	c := NewChecker(2)
	phone, laptop := c.Device("bob", "phone"), c.Device("bob", "laptop")
	for _, d := range []*Device{phone, laptop} {
		d.Expect(1)
		d.Expect(2)
	}
	run(phone, pushed(1, 1), pushed(2, 2))
	run(laptop, pushed(1, 1))
	r := c.Result()
	if r.Losses != 1 || r.Examples[0].Device != "laptop" || r.Examples[0].MsgID != 2 {
		t.Fatalf("got %s, %v", r.Summary(), r.Examples)
	}
	if c.Device("bob", "phone") != phone {
		t.Fatal("Device must return the existing state")
	}
}

func TestCheckerDetach(t *testing.T) {
	c := NewChecker(2)
	d := c.Device("bob", "phone")
	run(d, acked(1), acked(2), pushed(1, 1))
	d.Detach()
	d.Expect(3)
	r := c.Result()
	if r.Violations() != 0 || r.Unverified != 2 {
		t.Fatalf("got %s, unverified %d", r.Summary(), r.Unverified)
	}
}

// A delivery whose send was never acknowledged is reported, not a violation.
func TestCheckerUnackedDelivery(t *testing.T) {
	c := NewChecker(2)
	run(c.Device("bob", "phone"), pushed(1, 1))
	if r := c.Result(); r.Violations() != 0 || r.Unacked != 1 {
		t.Fatalf("got %s, unacked %d", r.Summary(), r.Unacked)
	}
}

func TestCheckerMerge(t *testing.T) {
	var total CheckResult
	for range 3 {
		c := NewChecker(2)
		run(c.Device("bob", "phone"), acked(1), acked(2), pushed(1, 1), pushed(2, 1))
		total.merge(c.Result(), 2)
	}
	if total.Losses != 3 || total.Duplicates != 3 || total.Delivered != 6 || len(total.Examples) != 4 {
		t.Fatalf("merged %+v", total)
	}
}

// Acks and pushes race in a real run; the race detector checks the locking.
func TestCheckerConcurrent(t *testing.T) {
	c := NewChecker(2)
	const devices, msgs = 8, 2000
	var wg sync.WaitGroup
	for i := range devices {
		d := c.Device("u", string(rune('a'+i)))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for m := uint64(1); m <= msgs; m++ {
				d.Expect(m)
			}
		}()
		go func() {
			defer wg.Done()
			for m := uint64(1); m <= msgs; m++ {
				d.Deliver(m, m)
				if m%500 == 0 {
					c.Rotate()
				}
			}
		}()
	}
	wg.Wait()
	r := c.Result()
	if r.Violations() != 0 || r.Delivered != devices*msgs || c.Outstanding() != 0 {
		t.Fatalf("got %s, delivered %d, outstanding %d", r.Summary(), r.Delivered, c.Outstanding())
	}
}

// BenchmarkCheckerEvent is the cost of one message: its ack and its delivery.
func BenchmarkCheckerEvent(b *testing.B) {
	c := NewChecker(2)
	d := c.Device("bob", "phone")
	b.ReportAllocs()
	for i := range b.N {
		m := uint64(i + 1)
		d.Expect(m)
		d.Deliver(m, m)
		if m%100_000 == 0 {
			c.Rotate()
		}
	}
}

// TestCheckerSendingDevice: a group member that sends sees events and other
// members' messages, while its stream skips the seqs of its own sends. Those
// skips are fine whether the SendAck naming the seq comes before or after the
// push that jumps over it; a skipped seq no SendAck names is a gap; an
// event's seq takes its place in the order without counting as a delivery.
func TestCheckerSendingDevice(t *testing.T) {
	c := NewChecker(3)
	d := c.SendingDevice("alice", "d")
	d.Pass(1)               // the group's creation event
	d.Own(2)                // own send acked before the stream moves on
	d.Expect(201)           // another member's message, acked ...
	if !d.Deliver(3, 201) { // ... and delivered past the own seq 2
		t.Fatal("seq 3 not fresh")
	}
	d.Deliver(5, 202) // skips 4: own, but its ack comes later
	d.Expect(202)
	d.Own(4)
	d.Own(6)          // pushed back to the device: fine too
	d.Pass(7)         // a join event
	d.Deliver(9, 203) // skips 8: nobody's
	d.Expect(203)
	if d.Pass(7) {
		t.Fatal("re-push of an event's seq counted as fresh")
	}
	r := c.Result()
	if r.Gaps != 1 || r.Losses != 0 || r.Duplicates != 0 || r.Reorders != 0 || r.Delivered != 3 || r.Unacked != 0 {
		t.Fatalf("%s; %+v", r.Summary(), r)
	}
	if len(r.Examples) != 1 || r.Examples[0].Kind != KindGap || r.Examples[0].Seq != 8 {
		t.Fatalf("examples %v", r.Examples)
	}

	// A late push of a skipped seq nobody claimed is a reordering, not a gap.
	c = NewChecker(3)
	d = c.SendingDevice("bob", "d")
	d.Deliver(2, 301)
	d.Deliver(1, 300)
	d.Expect(300)
	d.Expect(301)
	if r := c.Result(); r.Gaps != 0 || r.Reorders != 1 || r.Losses != 0 {
		t.Fatalf("%s", r.Summary())
	}
}
