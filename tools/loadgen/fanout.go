package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
)

// fanout: cfg.Groups groups of cfg.GroupSize members, every member online
// with one connection (device "d"), cfg.Senders members of each group
// sending to it. Each message is one append on the server that writes every
// member's timeline (write diffusion) and pushes to every online member
// device but the sending one, so a message makes GroupSize-1 deliveries.
//
// The checker follows every member device: each acknowledged message must
// reach every other member exactly once, in seq order, with no gaps. The
// group's creation event (and any other system event) is in the members'
// timelines too: such entries take their seq but are not counted. A sending
// member's own messages also hold seqs of its timeline that its push stream
// skips; its SendAck names them (Device.Own).
//
// A group's members are all in one client process (groups are sharded over
// processes, not members), so that process's checker sees every ack of the
// group.
var fanoutWorkload = &workload{
	check:     checkFanout,
	sockets:   func(c *Config) int { return c.Groups * c.GroupSize },
	run:       runFanout,
	setup:     fanoutSetup,
	summarize: summarizeFanout,
}

func checkFanout(c *Config) error {
	switch {
	case c.Rate < 0:
		return errors.New("loadgen: --rate must not be negative")
	case c.GroupSize < 2:
		return errors.New("loadgen: fanout: --group-size must be at least 2")
	case c.Senders > c.GroupSize:
		return fmt.Errorf("loadgen: fanout: --senders (%d) must not exceed --group-size (%d)", c.Senders, c.GroupSize)
	case c.GroupSize > filesPerProcess():
		return fmt.Errorf("loadgen: fanout: a group's members share one client process, and %d exceed its open-files limit (%d)",
			c.GroupSize, filesPerProcess())
	}
	return nil
}

func fanoutSetup(c *Config) string {
	codec := "protobuf"
	if c.JSON {
		codec = "JSON"
	}
	load := fmt.Sprintf("closed loop, %d unacknowledged send(s) per sender", c.Inflight)
	if c.Rate > 0 {
		load = fmt.Sprintf("open loop at %s msgs/s in total", fnum(c.Rate))
	}
	return fmt.Sprintf("%d group(s) of %d members, all online (one connection each), %d sender(s) per group, %s, %s codec, "+
		"members ack after %v; %v warmup, %v measured, %v drain",
		c.Groups, c.GroupSize, c.Senders, load, codec, c.AckDelay, c.Warmup, c.Duration, c.Drain)
}

func summarizeFanout(r *Report, t *total, marks map[string]Mark) {
	r.Messages = &MessageStats{Sent: t.counts["sent"], Acked: t.counts["acked"], SendFailed: t.counts["send_failed"],
		Delivered: t.check.Delivered, Repushed: t.check.Repushed}
	r.window(t, marks, "measure", "end")
	acked := t.at["end"].Counts["acked"] - t.at["measure"].Counts["acked"]
	if s := r.Window.Seconds; s > 0 {
		r.Figures["messages_per_s"] = round(float64(acked)/s, 1)
		r.Figures["deliveries_per_s"] = r.Window.Throughput
	}
	if a := t.counts["acked"]; a > 0 {
		r.Figures["deliveries_per_message"] = round(float64(t.check.Delivered)/float64(a), 2)
	}
	if r.Node.CPUPerMillion > 0 {
		r.Figures["node_cpu_s_per_million_deliveries"] = r.Node.CPUPerMillion
	}
	if r.Node.RSS > 0 {
		r.Figures["node_rss_mib"] = round(float64(r.Node.RSS)/(1<<20), 1)
	}
}

// member is one member of a group: a user with one connected device.
type member struct {
	user string
	idx  int // global connection index: picks target and source address
	conn atomic.Pointer[client.Conn]
	dev  *Device
}

type group struct {
	id      string
	members []*member // the connected ones; the first is the owner
}

type groupSender struct {
	g    *group
	m    *member
	next atomic.Int64 // client msg id counter
}

// fanoutTraffic is this process's groups and their senders.
type fanoutTraffic struct {
	loop
	groups        []*group
	senders       []*groupSender
	ack, delivery *hist

	closed atomic.Bool // the run is over: server closes are no longer errors
}

func runFanout(ctx context.Context, e *env) (err error) {
	f := &fanoutTraffic{loop: newLoop(e), ack: e.st.hist(histAck), delivery: e.st.hist(histDelivery)}
	defer func() {
		f.halt()
		if err == nil {
			f.drain(ctx)
		}
		f.close()
	}()
	if err := f.connect(ctx); err != nil {
		return err
	}
	if err := e.barrier(ctx, "connected"); err != nil {
		return err
	}
	lo, hi := e.span(e.cfg.Groups)
	f.start(ctx, e.cfg.Rate*float64(hi-lo)/float64(e.cfg.Groups))
	if err := sleep(ctx, e.cfg.Warmup); err != nil {
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

// connect logs in every member of this process's groups from seq 1 (so the
// checker sees their whole timelines), then has each group's first member
// create it with the others. A member whose connection fails is left out of
// its group.
func (f *fanoutTraffic) connect(ctx context.Context) error {
	cfg := f.e.cfg
	lo, hi := f.e.span(cfg.Groups)
	for gi := lo; gi < hi; gi++ {
		g := &group{id: fmt.Sprintf("%s-g%d", cfg.RunID, gi)}
		ms := make([]*member, cfg.GroupSize)
		parallel(ctx, cfg.GroupSize, cfg.Concurrency, func(mi int) {
			m := &member{user: fmt.Sprintf("%s-g%d-m%d", cfg.RunID, gi, mi), idx: gi*cfg.GroupSize + mi}
			if mi < cfg.Senders {
				m.dev = f.e.check.SendingDevice(m.user, "d")
			} else {
				m.dev = f.e.check.Device(m.user, "d")
			}
			last := m.dev.Last()
			c, err := f.e.dial.connect(ctx, "connect", m.idx, m.user, "d", &last, f.onPush(m), cfg.AckDelay)
			if err != nil {
				m.dev.Detach()
				return
			}
			f.e.st.opened.Add(1)
			m.conn.Store(c)
			ms[mi] = m
		})
		f.groups = append(f.groups, g) // so that close closes its members whatever happens
		senders := 0
		for mi, m := range ms {
			if m == nil {
				continue
			}
			g.members = append(g.members, m)
			f.watch(m)
			if mi < cfg.Senders {
				f.senders = append(f.senders, &groupSender{g: g, m: m})
				senders++
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(g.members) < 2 || senders == 0 {
			return fmt.Errorf("loadgen: fanout: group %s: only %d of %d members connected", g.id, len(g.members), cfg.GroupSize)
		}
		if err := f.create(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// usersPerRequest is the most users one group request may name (the node's
// default cap).
const usersPerRequest = 500

// create has the group's first member create it, open to join, with the
// others as members, naming at most usersPerRequest users per request (the
// rest are invited in chunks): every member's timeline gets the event of
// its joining.
func (f *fanoutTraffic) create(ctx context.Context, g *group) error {
	others := make([]string, 0, len(g.members)-1)
	for _, m := range g.members[1:] {
		others = append(others, m.user)
	}
	first := others[:min(len(others), usersPerRequest-1)]
	req := &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{
		Name: "imbench " + g.id, JoinPolicy: clientpb.JoinPolicy_JOIN_POLICY_OPEN, Members: first}}}
	for rest := others[len(first):]; req != nil; {
		cctx, cancel := context.WithTimeout(ctx, f.e.cfg.Timeout)
		_, err := g.members[0].conn.Load().Group(cctx, g.id, req)
		cancel()
		if err != nil {
			f.e.st.fail("create group", err)
			return fmt.Errorf("loadgen: fanout: create group %s of %d members: %w", g.id, len(g.members), err)
		}
		req = nil
		if len(rest) > 0 {
			chunk := rest[:min(len(rest), usersPerRequest)]
			rest = rest[len(chunk):]
			req = &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: chunk}}}
		}
	}
	return nil
}

// onPush is a member's push handler, run on its connection's read goroutine:
// events take their seq; the member's own messages (its stream may carry
// them) settle their seq; other group messages are checked and counted, and
// timed from the send time written in their text while measuring.
func (f *fanoutTraffic) onPush(m *member) func(*clientpb.Push) {
	st := f.e.st
	var lat []time.Duration // only this connection's read goroutine uses it
	return func(push *clientpb.Push) {
		now := time.Now()
		measuring := st.measuring.Load()
		lat = lat[:0]
		var fresh int64
		for _, en := range push.GetEntries() {
			msg := en.GetMessage()
			switch {
			case msg == nil || msg.GetContent().GetEvent() != nil ||
				msg.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_GROUP:
				m.dev.Pass(en.GetSeq())
			case msg.GetFrom() == m.user:
				m.dev.Own(en.GetSeq())
			case m.dev.Deliver(en.GetSeq(), msg.GetId()):
				fresh++
				if measuring {
					if ns, err := strconv.ParseInt(msg.GetContent().GetText(), 10, 64); err == nil {
						lat = append(lat, now.Sub(time.Unix(0, ns)))
					}
				}
			}
		}
		f.delivery.recordAll(lat)
		st.delivered.Add(fresh)
	}
}

// watch counts a member connection the server ends as an error and takes
// the device out of the loss accounting (fanout does not reconnect).
func (f *fanoutTraffic) watch(m *member) {
	c := m.conn.Load()
	go func() {
		<-c.Done()
		if !m.conn.CompareAndSwap(c, nil) {
			return // closed by this process
		}
		f.e.st.open.Add(-1)
		m.dev.Detach()
		if !f.closed.Load() {
			code, _, _ := c.CloseStatus()
			f.e.st.fail("member", fmt.Errorf("closed by the server (close code %d)", code))
		}
	}()
}

// send sends one group message scheduled at sched (latencies count from
// sched: no coordinated omission), retrying with the same client msg id
// while the server says to or does not answer. On the ack every other member
// device must get the message, and the sender's own device may skip its seq.
func (f *fanoutTraffic) send(ctx context.Context, s *groupSender, sched time.Time) error {
	st := f.e.st
	st.sent.Add(1)
	req := &clientpb.Send{ClientMsgId: "g" + strconv.FormatInt(s.next.Add(1), 10), To: s.g.id,
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP,
		Content:          client.Text(strconv.FormatInt(sched.UnixNano(), 10))}
	for attempt := 0; ; attempt++ {
		c := s.m.conn.Load()
		if c == nil {
			st.sendFailed.Add(1)
			return client.ErrClosed
		}
		actx, cancel := context.WithTimeout(ctx, f.e.cfg.Timeout)
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
				f.ack.record(time.Since(sched))
			}
			s.m.dev.Own(ack.GetSeq())
			for _, m := range s.g.members {
				if m != s.m {
					m.dev.Expect(ack.GetMsgId())
				}
			}
			return nil
		}
		st.fail("send", err)
		if !retryable(err) || c.IsClosed() || ctx.Err() != nil || f.closed.Load() {
			st.sendFailed.Add(1)
			return err
		}
		if e := new(client.Error); errors.As(err, &e) && e.RetryAfter > 0 {
			time.Sleep(e.RetryAfter)
		} else {
			time.Sleep(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second))
		}
	}
}

// start begins sending over this process's senders; see loop.start.
func (f *fanoutTraffic) start(ctx context.Context, rate float64) {
	f.loop.start(ctx, rate, len(f.senders), func(i int, due time.Time) error { return f.send(ctx, f.senders[i], due) })
}

// close closes every member connection.
func (f *fanoutTraffic) close() {
	f.closed.Store(true)
	var conns []*client.Conn
	for _, g := range f.groups {
		for _, m := range g.members {
			if c := m.conn.Swap(nil); c != nil {
				conns = append(conns, c)
			}
		}
	}
	closeAll(f.e.st, conns)
}
