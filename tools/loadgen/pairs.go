package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
)

var pairsWorkload = &workload{
	check:   checkPairs,
	sockets: func(c *Config) int { return 2 * c.Pairs },
	run: func(ctx context.Context, e *env) error {
		t := newTraffic(e)
		return t.measured(ctx, nil)
	},
	setup:     pairsSetup,
	summarize: summarizePairs,
}

func checkPairs(c *Config) error {
	if c.Rate < 0 {
		return errors.New("loadgen: --rate must not be negative")
	}
	return nil
}

func pairsSetup(c *Config) string {
	codec := "protobuf"
	if c.JSON {
		codec = "JSON"
	}
	load := fmt.Sprintf("closed loop, %d unacknowledged send(s) per sender", c.Inflight)
	if c.Rate > 0 {
		load = fmt.Sprintf("open loop at %s msgs/s in total", fnum(c.Rate))
	}
	return fmt.Sprintf("%d private-chat pairs, %s, %s codec, receivers ack after %v; %v warmup, %v measured, %v drain",
		c.Pairs, load, codec, c.AckDelay, c.Warmup, c.Duration, c.Drain)
}

func summarizePairs(r *Report, t *total, marks map[string]Mark) {
	r.Messages = &MessageStats{Sent: t.counts["sent"], Acked: t.counts["acked"], SendFailed: t.counts["send_failed"],
		Delivered: t.check.Delivered, Repushed: t.check.Repushed}
	r.window(t, marks, "measure", "end")
}

// pair is a sender and a receiver; the receiver's device is checked.
type pair struct {
	idx        int    // global index: connections 2*idx and 2*idx+1
	from, to   string // user ids
	sender     atomic.Pointer[client.Conn]
	senderMu   sync.Mutex // one reconnect of the sender at a time
	redials    int        // sender reconnects so far, under senderMu: rotates the target
	recv       atomic.Pointer[client.Conn]
	dev        *Device
	next       atomic.Int64 // client msg id counter
	resyncFrom atomic.Int64 // unix ns of a reconnect whose resync is timed; 0: none
}

// traffic is private chat between this process's pairs.
type traffic struct {
	loop
	pairs                               []*pair
	ack, delivery, reconnected, resyncs *hist
	recovered, recoveryAt               *hist
	started                             time.Time // creation, before connecting: the origin of recoveryAt

	closed atomic.Bool // the run is over: no more reconnects
}

func newTraffic(e *env) *traffic {
	return &traffic{loop: newLoop(e), ack: e.st.hist(histAck), delivery: e.st.hist(histDelivery),
		reconnected: e.st.hist(histReconnect), resyncs: e.st.hist(histResync), recovered: e.st.hist(histRecover),
		recoveryAt: e.st.hist(histRecoveryAt), started: time.Now()}
}

// connect opens this process's pairs; a pair with a failed connection is left out.
func (t *traffic) connect(ctx context.Context) {
	lo, hi := t.e.span(t.e.cfg.Pairs)
	ps := make([]*pair, hi-lo)
	parallel(ctx, hi-lo, t.e.cfg.Concurrency, func(k int) {
		i := lo + k
		p := &pair{idx: i, from: fmt.Sprintf("%s-%d-a", t.e.cfg.RunID, i), to: fmt.Sprintf("%s-%d-b", t.e.cfg.RunID, i)}
		p.dev = t.e.check.Device(p.to, "d")
		s, err := t.e.dial.connect(ctx, "connect", 2*i, p.from, "d", nil, nil, t.e.cfg.AckDelay)
		if err != nil {
			return
		}
		last := p.dev.Last()
		r, err := t.e.dial.connect(ctx, "connect", 2*i+1, p.to, "d", &last, t.onPush(p), t.e.cfg.AckDelay)
		if err != nil {
			closeAll(t.e.st, []*client.Conn{s})
			return
		}
		t.e.st.opened.Add(2)
		p.sender.Store(s)
		p.recv.Store(r)
		t.watch(ctx, p, r)
		ps[k] = p
	})
	for _, p := range ps {
		if p != nil {
			t.pairs = append(t.pairs, p)
		}
	}
}

// onPush is a receiver's push handler, run on its connection's read
// goroutine: the checker sees every entry, and first deliveries in the
// measured window are timed from the send time written in the text.
func (t *traffic) onPush(p *pair) func(*clientpb.Push) {
	st := t.e.st
	return func(push *clientpb.Push) {
		now := time.Now()
		measuring := st.measuring.Load()
		var fresh int64
		for _, en := range push.GetEntries() {
			m := en.GetMessage()
			if m == nil || !p.dev.Deliver(en.GetSeq(), m.GetId()) {
				continue
			}
			fresh++
			if measuring {
				if ns, err := strconv.ParseInt(m.GetContent().GetText(), 10, 64); err == nil {
					t.delivery.record(now.Sub(time.Unix(0, ns)))
				}
			}
		}
		st.delivered.Add(fresh)
		if fresh > 0 {
			t.resynced(p, now)
		}
	}
}

// resynced times a reconnect's resync once the device has everything
// acknowledged for it.
func (t *traffic) resynced(p *pair, now time.Time) {
	if r := p.resyncFrom.Load(); r != 0 && p.dev.Pending() == 0 && p.resyncFrom.CompareAndSwap(r, 0) {
		t.resyncs.record(now.Sub(time.Unix(0, r)))
	}
}

// send sends one message scheduled at sched; latencies count from sched, so
// a send that had to wait is charged its wait (no coordinated omission).
//
// Like a real client, a sender whose node stops answering (it died, is
// draining, or the grain is moving) reconnects, to the next target, and
// retries with the same client msg id until acknowledged: the server answers
// a retry of a stored message with its original ack, so nothing is sent
// twice. Each failed attempt is counted as an error; the outage, from the
// first failure to the ack, is timed (send_recover).
func (t *traffic) send(ctx context.Context, p *pair, sched time.Time) error {
	st := t.e.st
	st.sent.Add(1)
	req := &clientpb.Send{ClientMsgId: "m" + strconv.FormatInt(p.next.Add(1), 10), To: p.to,
		Content: client.Text(strconv.FormatInt(sched.UnixNano(), 10))}
	var failedAt time.Time
	for attempt := 0; ; attempt++ {
		c := p.sender.Load()
		actx, cancel := context.WithTimeout(ctx, t.e.cfg.Timeout)
		ack, err := c.Send(actx, req)
		cancel()
		if err == nil && ack.GetDuplicate() && attempt == 0 {
			err = errors.New("ack marked duplicate for a fresh client msg id")
			st.sendFailed.Add(1)
			st.fail("send", err)
			return err
		}
		if err == nil {
			st.acked.Add(1)
			if st.measuring.Load() {
				t.ack.record(time.Since(sched))
			}
			if !failedAt.IsZero() {
				t.recovered.record(time.Since(failedAt))
				t.recoveryAt.record(time.Since(t.started))
			}
			p.dev.Expect(ack.GetMsgId())
			return nil
		}
		st.fail("send", err)
		if !retryable(err) || ctx.Err() != nil || t.closed.Load() {
			st.sendFailed.Add(1)
			return err
		}
		if failedAt.IsZero() {
			failedAt = time.Now()
		}
		if e := new(client.Error); errors.As(err, &e) && e.RetryAfter > 0 {
			time.Sleep(e.RetryAfter)
			continue
		}
		if c.IsClosed() {
			t.redialSender(ctx, p, c)
		} else {
			time.Sleep(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second))
		}
	}
}

// retryable tells the failures a client retries with the same client msg
// id: the connection ended (closed, or reset under the write when its node
// was killed), no answer came in time, or the server said to.
func retryable(err error) bool {
	switch client.CodeOf(err) {
	case clientpb.ErrorCode_ERR_UNAVAILABLE, clientpb.ErrorCode_ERR_RATE_LIMITED:
		return true
	case clientpb.ErrorCode_ERR_UNSPECIFIED:
		return errors.Is(err, client.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
			errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
	}
	return false
}

// redialSender replaces the sender's connection old, unless another send of
// the same sender did already, trying the targets after the one that failed.
func (t *traffic) redialSender(ctx context.Context, p *pair, old *client.Conn) {
	p.senderMu.Lock()
	defer p.senderMu.Unlock()
	if p.sender.Load() != old {
		return
	}
	for !t.closed.Load() && ctx.Err() == nil {
		p.redials++
		c, err := t.e.dial.connect(ctx, "reconnect", 2*p.idx+2*p.redials, p.from, "d", nil, nil, t.e.cfg.AckDelay)
		if err == nil {
			p.sender.Store(c)
			t.e.st.open.Add(-1)
			t.e.st.reconnects.Add(1)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start begins sending over this process's pairs; see loop.start.
func (t *traffic) start(ctx context.Context, rate float64) {
	t.loop.start(ctx, rate, len(t.pairs), func(i int, due time.Time) error { return t.send(ctx, t.pairs[i], due) })
}

// close closes every connection of the pairs.
func (t *traffic) close() {
	t.closed.Store(true)
	conns := make([]*client.Conn, 0, 2*len(t.pairs))
	for _, p := range t.pairs {
		conns = append(conns, p.sender.Load())
		if r := p.recv.Swap(nil); r != nil {
			conns = append(conns, r)
		}
	}
	closeAll(t.e.st, conns)
}

// watch resumes a receiver whose connection c the server ends, as a real
// client would; the disconnect is counted as an error. Connections this
// process ends itself (abort, close) are swapped out of p.recv first.
func (t *traffic) watch(ctx context.Context, p *pair, c *client.Conn) {
	go func() {
		<-c.Done()
		if !p.recv.CompareAndSwap(c, nil) {
			return
		}
		t.e.st.open.Add(-1)
		code, _, _ := c.CloseStatus()
		t.e.st.fail("receiver", fmt.Errorf("closed by the server (close code %d)", code))
		if !t.closed.Load() {
			_ = t.resume(ctx, p, false)
		}
	}()
}

// abort drops a receiver's connection without a close handshake.
func (t *traffic) abort(p *pair) {
	if c := p.recv.Swap(nil); c != nil {
		c.Abort()
		t.e.st.open.Add(-1)
	}
}

// resume reconnects an aborted receiver with Login.lastSeq = the highest seq
// it processed, retrying a few times; a device that cannot come back is
// detached from the loss accounting. timeResync times its catch-up.
func (t *traffic) resume(ctx context.Context, p *pair, timeResync bool) error {
	start := time.Now()
	last := p.dev.Last()
	if timeResync {
		p.resyncFrom.Store(start.UnixNano())
	}
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		var c *client.Conn
		c, err = t.e.dial.connect(ctx, "reconnect", 2*p.idx+1, p.to, "d", &last, t.onPush(p), t.e.cfg.AckDelay)
		if err == nil {
			p.recv.Store(c)
			t.watch(ctx, p, c)
			t.e.st.reconnects.Add(1)
			t.reconnected.record(time.Since(start))
			t.recoveryAt.record(time.Since(t.started))
			if timeResync {
				t.resynced(p, time.Now())
			}
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	p.dev.Detach()
	p.resyncFrom.Store(0)
	return err
}

// measured is the shape of pairs and mix: connect, load through warmup and
// the measured window, stop, drain, close. extra (optional) starts more
// activity once the pairs are connected and returns its stop function.
func (t *traffic) measured(ctx context.Context, extra func(context.Context) (stop func())) (err error) {
	e := t.e
	t.connect(ctx)
	stopExtra := func() {}
	defer func() {
		stopExtra()
		t.halt()
		if err == nil {
			t.drain(ctx)
		}
		t.close()
	}()
	if extra != nil {
		stopExtra = extra(ctx)
	}
	if err := t.warm(ctx); err != nil {
		return err
	}
	if err := e.barrier(ctx, "measure"); err != nil {
		return err
	}
	e.st.measuring.Store(true)
	if err := sleep(ctx, e.cfg.Duration); err != nil {
		return err
	}
	e.st.measuring.Store(false)
	return e.barrier(ctx, "end")
}

// warm passes the "connected" barrier, starts this process's share of the
// traffic (of cfg.Rate in open loop) and runs it through the warmup.
func (t *traffic) warm(ctx context.Context) error {
	if err := t.e.barrier(ctx, "connected"); err != nil {
		return err
	}
	lo, hi := t.e.span(t.e.cfg.Pairs)
	t.start(ctx, t.e.cfg.Rate*float64(hi-lo)/float64(t.e.cfg.Pairs))
	return sleep(ctx, t.e.cfg.Warmup)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
