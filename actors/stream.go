package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/protos/clientpb"
)

// Pushing out: a connection's Notify (connection.go) lands in the stream
// (observe); pump takes what the window allows, reading from the timeline
// what no notification carried, and writes Push frames; PushAck frames
// (connection.go) acknowledge; resend pushes again what stays unacknowledged.

// stream is the push state of one device: which timeline entries the device
// has been sent and has acknowledged. It is a pure state machine (no I/O) so
// its rules are easy to test:
//
//   - entries reach the device in seq order without gaps (except the device's
//     own sends, which it learns from their SendAck);
//   - at most window entries are unacknowledged at a time;
//   - unacknowledged entries are resent with exponential backoff until acked.
type stream struct {
	next    uint64                     // next seq to push
	latest  uint64                     // highest seq known to exist in the timeline
	window  int                        // max unacknowledged entries
	page    int                        // max entries per Push frame
	ahead   map[uint64]*clientpb.Entry // notified entries at or beyond next, waiting their turn
	own     map[uint64]struct{}        // seqs this device sent itself (acked, not pushed)
	unacked []*clientpb.Entry          // pushed, awaiting PushAck, in seq order

	retryMin, retryMax time.Duration
	retryDelay         time.Duration
	retryAt            time.Time // zero when nothing is unacknowledged
	resends            int       // entries resent, for metrics
}

func newStream(next, latest uint64, window, page int, retryMin, retryMax time.Duration) *stream {
	return &stream{
		next: next, latest: max(latest, next-1), window: window, page: page,
		ahead: map[uint64]*clientpb.Entry{}, own: map[uint64]struct{}{},
		retryMin: retryMin, retryMax: retryMax, retryDelay: retryMin,
	}
}

// observe records entries that exist in the timeline (from a notification).
func (s *stream) observe(entries []*clientpb.Entry) {
	for _, e := range entries {
		if e.GetSeq() >= s.next {
			s.ahead[e.GetSeq()] = e
		}
		s.latest = max(s.latest, e.GetSeq())
	}
}

// observeLatest records that the timeline reaches at least seq.
func (s *stream) observeLatest(seq uint64) { s.latest = max(s.latest, seq) }

// ownSent records that the device itself sent the entry at seq and received
// it in a SendAck, so it is not pushed back to it.
func (s *stream) ownSent(seq uint64) {
	if seq >= s.next {
		s.own[seq] = struct{}{}
	}
	s.latest = max(s.latest, seq)
}

// wants reports the range [from, to] of seqs that should be pushed now, or
// ok=false when the stream is caught up or its window is full.
func (s *stream) wants() (from, to uint64, ok bool) {
	s.skipOwn()
	room := s.window - len(s.unacked)
	if s.next > s.latest || room <= 0 {
		return 0, 0, false
	}
	n := uint64(min(room, s.page))
	return s.next, min(s.latest, s.next+n-1), true
}

// skipOwn advances next past the device's own sends.
func (s *stream) skipOwn() {
	for {
		if _, ok := s.own[s.next]; !ok {
			return
		}
		delete(s.own, s.next)
		delete(s.ahead, s.next)
		s.next++
	}
}

// missing reports whether any seq in [from, to] other than the device's own
// is not buffered, so the caller must read the range from the store.
func (s *stream) missing(from, to uint64) bool {
	for q := from; q <= to; q++ {
		if _, ok := s.ahead[q]; ok {
			continue
		}
		if _, ok := s.own[q]; ok {
			continue
		}
		return true
	}
	return false
}

// take returns the buffered entries for [from, to] in order, stopping at the
// first one missing. fill, when non-nil, supplies entries read from the store.
// The returned entries are marked as pushed (unacknowledged) and next moves
// past them.
func (s *stream) take(from, to uint64, fill []*clientpb.Entry, now time.Time) []*clientpb.Entry {
	for _, e := range fill {
		if e.GetSeq() >= s.next {
			s.ahead[e.GetSeq()] = e
		}
	}
	var out []*clientpb.Entry
	for q := from; q <= to && q == s.next; q++ {
		if _, mine := s.own[q]; mine {
			delete(s.own, q)
			delete(s.ahead, q)
			s.next++
			continue
		}
		e, ok := s.ahead[q]
		if !ok {
			break
		}
		delete(s.ahead, q)
		out = append(out, e)
		s.next++
	}
	if len(out) > 0 {
		if len(s.unacked) == 0 {
			s.retryDelay = s.retryMin
			s.retryAt = now.Add(s.retryDelay)
		}
		s.unacked = append(s.unacked, out...)
	}
	return out
}

// ack applies a cumulative PushAck. It returns false when seq acknowledges
// something never pushed (a client error, ignored beyond the pushed range).
func (s *stream) ack(seq uint64, now time.Time) bool {
	valid := seq < s.next
	i := 0
	for i < len(s.unacked) && s.unacked[i].GetSeq() <= seq {
		i++
	}
	if i > 0 {
		s.unacked = append(s.unacked[:0], s.unacked[i:]...)
		s.retryDelay = s.retryMin
		if len(s.unacked) == 0 {
			s.retryAt = time.Time{}
		} else {
			s.retryAt = now.Add(s.retryDelay)
		}
	}
	return valid
}

// due returns the entries to resend when the retry deadline has passed, and
// backs the deadline off exponentially.
func (s *stream) due(now time.Time) []*clientpb.Entry {
	if len(s.unacked) == 0 || now.Before(s.retryAt) {
		return nil
	}
	s.retryDelay = min(s.retryDelay*2, s.retryMax)
	s.retryAt = now.Add(s.retryDelay)
	s.resends += len(s.unacked)
	return s.unacked
}

// schedulePump defers pushing until the messages already queued in the
// mailbox are handled, so a burst of notifications becomes one Push frame.
func (c *connActor) schedulePump(ctx actor.Context) {
	if !c.pumping {
		c.pumping = true
		ctx.Send(ctx.Self(), pumpNow{})
	}
}

// pump pushes every entry the window allows, reading from the store whatever
// the notifications did not carry.
func (c *connActor) pump(ctx actor.Context) {
	if c.st == nil || c.done {
		return
	}
	for {
		from, to, ok := c.st.wants()
		if !ok {
			break
		}
		var fill []*clientpb.Entry
		if c.st.missing(from, to) {
			sctx, cancel := c.d.storeCtx()
			var err error
			fill, err = c.d.timelines.ReadTimeline(sctx, c.sess.UserID, from-1, int(to-from+1))
			cancel()
			if err != nil {
				c.d.log.Error("push: read timeline", "user", c.sess.UserID, "err", err)
				break // the retry timer or the next notification tries again
			}
		}
		out := c.st.take(from, to, fill, time.Now())
		if len(out) == 0 {
			break
		}
		c.d.metrics.EntriesPushed.Add(float64(len(out)))
		c.write(&clientpb.Frame{Body: &clientpb.Frame_Push{Push: &clientpb.Push{Entries: c.flagSilent(out)}}})
	}
	c.armTimer(ctx)
}

// resend pushes again every unacknowledged entry whose retry time has come.
func (c *connActor) resend() {
	if c.st == nil || c.done {
		return
	}
	due := c.st.due(time.Now())
	for len(due) > 0 {
		n := min(len(due), c.d.cfg.PushPage)
		c.write(&clientpb.Frame{Body: &clientpb.Frame_Push{Push: &clientpb.Push{Entries: c.flagSilent(due[:n])}}})
		c.d.metrics.EntriesResent.Add(float64(n))
		due = due[n:]
	}
}

// armTimer keeps one timer aimed at the stream's next retry time.
func (c *connActor) armTimer(ctx actor.Context) {
	at := c.st.retryAt
	if at.IsZero() || c.done || (!c.timerAt.IsZero() && !at.Before(c.timerAt)) {
		return
	}
	c.timerAt = at
	self, root := ctx.Self(), ctx.ActorSystem().Root
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(time.Until(at), func() { root.Send(self, retryTick{}) })
}
