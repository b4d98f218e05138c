package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"actorim/actors"
	"actorim/client"
	"actorim/node"
	"actorim/protos/clientpb"
)

// TestOfflineSyncAfterReconnect: messages sent while the recipient is offline
// arrive, in order and in pages, when it logs in with its last seq; a device
// that resumes from the middle receives exactly what it missed.
func TestOfflineSyncAfterReconnect(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	const total = 250
	for i := 1; i <= total; i++ {
		a.send(t, bob, fmt.Sprintf("m%03d", i))
	}

	b := n.connect(t, bob, "phone", u64(0), platform(clientpb.Platform_PLATFORM_IOS))
	if b.login.GetLatestSeq() != total || b.login.GetStreamFromSeq() != 1 {
		t.Fatalf("login ok = %v", b.login)
	}
	var got []*clientpb.Entry
	pages := 0
	for len(got) < total {
		page := b.next(t, 5*time.Second)
		if len(page) > 100 {
			t.Fatalf("a push carried %d entries, pages are at most 100", len(page))
		}
		pages++
		got = append(got, page...)
		if err := b.Ack(got[len(got)-1].GetSeq()); err != nil {
			t.Fatal(err)
		}
	}
	requireConsecutive(t, got, 1)
	if len(got) != total || pages < 3 || texts(got)[total-1] != fmt.Sprintf("m%03d", total) {
		t.Fatalf("got %d entries in %d pushes", len(got), pages)
	}
	b.quiet(t, 300*time.Millisecond)
	b.Abort() // the phone loses its connection

	// Back with last seq 120: exactly 121..250, then live traffic continues.
	b2 := n.connect(t, bob, "phone", u64(120), platform(clientpb.Platform_PLATFORM_IOS))
	rest := b2.collect(t, total-120, 5*time.Second)
	requireConsecutive(t, rest, 121)
	if len(rest) != total-120 {
		t.Fatalf("resume delivered %d entries, want %d", len(rest), total-120)
	}
	a.send(t, bob, "live")
	live := b2.collect(t, 1, 5*time.Second)
	if live[0].GetSeq() != total+1 || texts(live)[0] != "live" {
		t.Fatalf("live entry %v", live)
	}
	b2.quiet(t, 300*time.Millisecond)

	// Without a resume point a device starts at the end: no backlog.
	b3 := n.connect(t, bob, "tablet", nil, platform(clientpb.Platform_PLATFORM_ANDROID))
	if b3.login.GetStreamFromSeq() != total+2 {
		t.Fatalf("stream_from_seq = %d, want %d", b3.login.GetStreamFromSeq(), total+2)
	}
	b3.quiet(t, 300*time.Millisecond)

	// Explicit sync pages from any point.
	res, err := b3.Sync(ctx(t), 240, 5)
	if err != nil {
		t.Fatal(err)
	}
	requireConsecutive(t, res.GetEntries(), 241)
	if len(res.GetEntries()) != 5 || !res.GetHasMore() || res.GetLatestSeq() != total+1 {
		t.Fatalf("sync = %d entries, has_more %v, latest %d", len(res.GetEntries()), res.GetHasMore(), res.GetLatestSeq())
	}
}

// TestMultiDeviceSync: a user's devices all see the same timeline in the same
// order, including what the user sent from another device.
func TestMultiDeviceSync(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	web := n.connect(t, alice, "web", nil)
	phone := n.connect(t, alice, "phone", nil, platform(clientpb.Platform_PLATFORM_IOS))
	desk := n.connect(t, alice, "desk", nil, platform(clientpb.Platform_PLATFORM_DESKTOP))
	b := n.connect(t, bob, "web", nil)
	c := n.connect(t, carol, "web", nil)

	// Interleave: alice sends from two devices while bob and carol write to her.
	var wg sync.WaitGroup
	acks := map[string][]*clientpb.SendAck{}
	var mu sync.Mutex
	for _, s := range []struct {
		d    *device
		to   string
		name string
	}{{web, bob, "web"}, {phone, carol, "phone"}, {b, alice, "bob"}, {c, alice, "carol"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				ack, err := s.d.SendText(ctx(t), s.to, cmid(), fmt.Sprintf("%s-%d", s.name, i))
				if err != nil {
					t.Errorf("%s: %v", s.name, err)
					return
				}
				mu.Lock()
				acks[s.name] = append(acks[s.name], ack)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = 80 // alice's timeline: 40 sent by her devices, 40 received

	// The desktop saw everything, in seq order.
	all := desk.collect(t, total, 10*time.Second)
	requireConsecutive(t, all, 1)
	// Web and phone saw everything except their own sends (those came in acks).
	for _, d := range []*device{web, phone} {
		own := map[uint64]bool{}
		for _, ack := range acks[d.id] {
			own[ack.GetSeq()] = true
		}
		got := d.collect(t, total-len(own), 10*time.Second)
		var want []string
		for _, e := range all {
			if !own[e.GetSeq()] {
				want = append(want, fmt.Sprintf("%d:%s", e.GetSeq(), e.GetMessage().GetContent().GetText()))
			}
		}
		var have []string
		for _, e := range got {
			have = append(have, fmt.Sprintf("%d:%s", e.GetSeq(), e.GetMessage().GetContent().GetText()))
		}
		if !eq(have, want) {
			t.Fatalf("%s saw\n%q\nwant\n%q", d.id, have, want)
		}
		d.quiet(t, 200*time.Millisecond)
	}
	// Each device's own messages sit in the timeline where their acks said.
	for _, name := range []string{"web", "phone"} {
		for _, ack := range acks[name] {
			e := all[ack.GetSeq()-1]
			if e.GetMessage().GetId() != ack.GetMsgId() || e.GetMessage().GetFromDevice() != name {
				t.Fatalf("seq %d holds %v, ack %v", ack.GetSeq(), e.GetMessage(), ack)
			}
		}
	}
}

// TestMultiDevicePolicies: each policy admits the devices it promises and
// kicks the others with a Kick frame and close code 4003.
func TestMultiDevicePolicies(t *testing.T) {
	web, ios := platform(clientpb.Platform_PLATFORM_WEB), platform(clientpb.Platform_PLATFORM_IOS)
	cases := []struct {
		policy actors.DevicePolicy
		// the third login is a second web device; which earlier ones survive?
		webSurvives, iosSurvives bool
	}{
		{actors.PolicyMulti, true, true},
		{actors.PolicyPerPlatform, false, true},
		{actors.PolicySingle, false, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			n := shared
			if tc.policy != actors.PolicyMulti {
				n = startNode(t, func(c *node.Config) { c.Actors.DevicePolicy = tc.policy })
			}
			u := n.newUser(t, "u")
			w1 := n.connect(t, u, "w1", nil, web)
			i1 := n.connect(t, u, "i1", nil, ios)
			if tc.policy == actors.PolicySingle {
				requireKicked(t, w1, clientpb.KickReason_KICK_REASON_DEVICE_POLICY)
				w1 = nil
			}
			w2 := n.connect(t, u, "w2", nil, web)
			check := func(d *device, survives bool) {
				if d == nil {
					return
				}
				if survives {
					requireAlive(t, d)
				} else {
					requireKicked(t, d, clientpb.KickReason_KICK_REASON_DEVICE_POLICY)
				}
			}
			check(w1, tc.webSurvives)
			check(i1, tc.iosSurvives)
			requireAlive(t, w2)

			// Whatever the policy, the same device id logging in again
			// replaces its older connection.
			again := n.connect(t, u, "w2", nil, web)
			requireKicked(t, w2, clientpb.KickReason_KICK_REASON_REPLACED)
			requireAlive(t, again)

			// The surviving connection still receives messages.
			other := n.newUser(t, "o")
			o := n.connect(t, other, "web", nil)
			o.send(t, u, "still there?")
			if got := again.collect(t, 1, 5*time.Second); texts(got)[0] != "still there?" {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func requireKicked(t *testing.T, d *device, reason clientpb.KickReason) {
	t.Helper()
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s/%s was not disconnected", d.user, d.id)
	}
	code, _, kick := d.CloseStatus()
	if code != clientpb.CloseKicked || kick.GetReason() != reason {
		t.Fatalf("%s/%s closed with %d, kick %v; want %d and %v", d.user, d.id, code, kick, clientpb.CloseKicked, reason)
	}
}

func requireAlive(t *testing.T, d *device) {
	t.Helper()
	if _, err := d.Ping(ctx(t)); err != nil {
		code, reason, kick := d.CloseStatus()
		t.Fatalf("%s/%s is not alive: %v (close %d %q, kick %v)", d.user, d.id, err, code, reason, kick)
	}
}

// TestDedupRetriedSend: a retried send with the same client message id,
// sequentially, concurrently or from another device of the sender, returns
// the original ack and creates nothing new.
func TestDedupRetriedSend(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	a2 := n.connect(t, alice, "phone", nil, platform(clientpb.Platform_PLATFORM_IOS))
	b := n.connect(t, bob, "web", nil)

	s := &clientpb.Send{ClientMsgId: "retry-me", To: bob, Content: client.Text("once")}
	first, err := a.Send(ctx(t), s)
	if err != nil || first.GetDuplicate() {
		t.Fatalf("first send: %v, %v", first, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		d := a
		if i%2 == 1 {
			d = a2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := d.Send(ctx(t), s)
			if err != nil {
				t.Errorf("retry: %v", err)
				return
			}
			if !ack.GetDuplicate() || ack.GetMsgId() != first.GetMsgId() || ack.GetSeq() != first.GetSeq() || ack.GetSentAtMs() != first.GetSentAtMs() {
				t.Errorf("retry ack %v, first %v", ack, first)
			}
		}()
	}
	wg.Wait()
	got := b.collect(t, 1, 5*time.Second)
	if got[0].GetMessage().GetId() != first.GetMsgId() {
		t.Fatalf("bob got %v", got)
	}
	b.quiet(t, 500*time.Millisecond)
	next := a.send(t, bob, "after")
	if next.GetSeq() != first.GetSeq()+1 {
		t.Fatalf("next seq %d after %d: the retries consumed seqs", next.GetSeq(), first.GetSeq())
	}
	// The same id from another sender is a different message.
	bAck, err := b.Send(ctx(t), &clientpb.Send{ClientMsgId: "retry-me", To: alice, Content: client.Text("mine")})
	if err != nil || bAck.GetDuplicate() {
		t.Fatalf("bob's own retry-me: %v, %v", bAck, err)
	}
}

// TestPushRetryUntilAck: a push the device does not ack is sent again with
// backoff; once acked it stops.
func TestPushRetryUntilAck(t *testing.T) {
	n := shared // pushes are retried after 500 ms, then 1 s, 2 s
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	ack := a.send(t, bob, "ack me")

	first := b.next(t, 2*time.Second)
	start := time.Now()
	second := b.next(t, 3*time.Second)
	gap := time.Since(start)
	third := b.next(t, 3*time.Second)
	gap2 := time.Since(start) - gap
	for _, p := range [][]*clientpb.Entry{first, second, third} {
		if len(p) != 1 || p[0].GetSeq() != 1 || p[0].GetMessage().GetId() != ack.GetMsgId() {
			t.Fatalf("push %v", p)
		}
	}
	if gap < 300*time.Millisecond || gap2 < gap {
		t.Fatalf("resent after %v then %v: want about 500 ms, then longer", gap, gap2)
	}
	if err := b.Ack(1); err != nil {
		t.Fatal(err)
	}
	b.quiet(t, 2500*time.Millisecond)
}
