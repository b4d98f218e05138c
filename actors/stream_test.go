package actors

import (
	"testing"
	"time"

	"actorim/protos/clientpb"
)

func entries(seqs ...uint64) []*clientpb.Entry {
	out := make([]*clientpb.Entry, len(seqs))
	for i, s := range seqs {
		out[i] = &clientpb.Entry{Seq: s}
	}
	return out
}

func seqsOf(es []*clientpb.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.GetSeq()
	}
	return out
}

// pushAll takes everything the stream wants, filling from "the store" (any
// seq exists) when it reports missing entries.
func pushAll(s *stream, now time.Time) []uint64 {
	var got []uint64
	for {
		from, to, ok := s.wants()
		if !ok {
			return got
		}
		var fill []*clientpb.Entry
		if s.missing(from, to) {
			for q := from; q <= to; q++ {
				fill = append(fill, &clientpb.Entry{Seq: q})
			}
		}
		out := s.take(from, to, fill, now)
		if len(out) == 0 {
			return got
		}
		got = append(got, seqsOf(out)...)
	}
}

func TestStreamOrdersAndFillsGaps(t *testing.T) {
	now := time.Now()
	s := newStream(1, 0, 100, 10, time.Second, 4*time.Second)
	s.observe(entries(3, 1)) // out of order, 2 missing
	from, to, ok := s.wants()
	if !ok || from != 1 || to != 3 || !s.missing(from, to) {
		t.Fatalf("wants %d..%d %v, missing %v", from, to, ok, s.missing(from, to))
	}
	// Without the fill, only 1 goes out: 2 is missing, 3 must wait for it.
	if got := seqsOf(s.take(from, to, nil, now)); len(got) != 1 || got[0] != 1 {
		t.Fatalf("took %v without a fill, want [1]", got)
	}
	if got := pushAll(s, now); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("after filling got %v, want [2 3]", got)
	}
}

func TestStreamSkipsOwnSends(t *testing.T) {
	now := time.Now()
	s := newStream(1, 0, 100, 10, time.Second, time.Second)
	s.ownSent(2)
	s.observe(entries(1, 3))
	if got := pushAll(s, now); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("pushed %v, want [1 3] (2 was the device's own send)", got)
	}
}

func TestStreamWindowAndCumulativeAck(t *testing.T) {
	now := time.Now()
	s := newStream(1, 0, 5, 2, time.Second, time.Second)
	s.observeLatest(12)
	if got := pushAll(s, now); len(got) != 5 {
		t.Fatalf("pushed %v with a window of 5", got)
	}
	if _, _, ok := s.wants(); ok {
		t.Fatal("the stream wants more with a full window")
	}
	if !s.ack(3, now) || len(s.unacked) != 2 {
		t.Fatalf("after ack 3: %d unacked", len(s.unacked))
	}
	if got := pushAll(s, now); len(got) != 3 || got[0] != 6 {
		t.Fatalf("after the ack pushed %v, want [6 7 8]", got)
	}
	if s.ack(99, now) {
		t.Fatal("an ack beyond what was pushed was accepted as valid")
	}
}

func TestStreamResendsWithBackoffUntilAcked(t *testing.T) {
	t0 := time.Now()
	s := newStream(1, 0, 10, 10, time.Second, 3*time.Second)
	s.observeLatest(2)
	pushAll(s, t0)
	if due := s.due(t0.Add(500 * time.Millisecond)); due != nil {
		t.Fatal("resent before the first delay")
	}
	if due := s.due(t0.Add(1001 * time.Millisecond)); len(due) != 2 {
		t.Fatalf("resent %d entries after 1 s", len(due))
	}
	// The next resend waits twice as long, capped at the maximum.
	if due := s.due(t0.Add(2500 * time.Millisecond)); due != nil {
		t.Fatal("resent again before the doubled delay")
	}
	if due := s.due(t0.Add(3100 * time.Millisecond)); len(due) != 2 {
		t.Fatal("no resend after the doubled delay")
	}
	s.ack(2, t0.Add(3200*time.Millisecond))
	if due := s.due(t0.Add(time.Hour)); due != nil || !s.retryAt.IsZero() {
		t.Fatal("resends continue after everything was acked")
	}
}

func TestStreamResumeClampsBeyondEnd(t *testing.T) {
	s := newStream(11, 5, 10, 10, time.Second, time.Second)
	if s.latest != 10 {
		t.Fatalf("latest %d, want at least next-1", s.latest)
	}
}
