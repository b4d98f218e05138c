package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
	"actorim/tools/loadgen"
)

// TestClusterChatAcrossNodes: users connected to different nodes of a
// 3-node cluster chat in every direction; each device receives every acked
// message exactly once, in seq order.
func TestClusterChatAcrossNodes(t *testing.T) {
	c := startCluster(t, 3)
	users := []string{"ann", "ben", "cid"}
	devs := make([]*device, len(users))
	for i, u := range users {
		n := c.nodes[i].node()
		if err := (&client.HTTP{BaseURL: n.http}).Register(ctx(t), u, "password-"+u); err != nil {
			t.Fatal(err)
		}
		devs[i] = n.connect(t, u, "d", u64(0))
	}
	const rounds = 20
	want := map[string][]uint64{} // recipient -> msg ids in its timeline order
	for r := 0; r < rounds; r++ {
		for i, from := range devs {
			to := devs[(i+1+r%2)%len(devs)]
			ack := from.send(t, to.user, fmt.Sprintf("%s->%s #%d", from.user, to.user, r))
			want[to.user] = append(want[to.user], ack.GetMsgId())
		}
	}
	for _, d := range devs {
		got := d.collect(t, rounds, 10*time.Second) // each got rounds messages
		var ids []uint64
		for _, e := range got {
			if e.GetMessage().GetFrom() != d.user {
				ids = append(ids, e.GetMessage().GetId())
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(want[d.user]) {
			t.Fatalf("%s received %v, want %v", d.user, ids, want[d.user])
		}
		d.quiet(t, 300*time.Millisecond)
	}

	// A group whose members sit on three nodes: the group grain lives on
	// one of them, its state in Redis; every member sees every message of
	// the others, in the group's order.
	gid := "cluster-team"
	devs[0].createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, users[1], users[2])
	for _, d := range devs {
		d.until(t, 10*time.Second, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED))
	}
	var order []uint64
	for r := 0; r < 5; r++ {
		for _, d := range devs {
			order = append(order, d.sendGroup(t, gid, fmt.Sprintf("%s #%d", d.user, r)).GetMsgId())
		}
	}
	for _, d := range devs {
		got := d.collect(t, 10, 10*time.Second)
		var ids []uint64
		for _, e := range got {
			ids = append(ids, e.GetMessage().GetId())
		}
		var want []uint64
		for i, id := range order {
			if devs[i%len(devs)] != d {
				want = append(want, id)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("%s received group messages %v, want %v", d.user, ids, want)
		}
		d.quiet(t, 300*time.Millisecond)
	}
}

// clusterLoad runs imbench's pairs workload against the cluster's nodes while
// act does something to the cluster, and returns the report and when the
// load started. Every guarantee is checked on every device.
func clusterLoad(t *testing.T, c *testCluster, act func()) (*loadgen.Report, time.Time) {
	t.Helper()
	cfg := loadgen.Config{
		Targets: c.targets(), Secret: testSecret, Procs: 1,
		Pairs: 60, Rate: 600, Warmup: time.Second, Duration: 12 * time.Second, Drain: 15 * time.Second,
		Timeout: 3 * time.Second, AckDelay: 100 * time.Millisecond, Concurrency: 30,
	}
	type result struct {
		r   *loadgen.Report
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := loadgen.Run(context.Background(), "pairs", cfg)
		done <- result{r, err}
	}()
	act()
	res := <-done
	if res.err != nil {
		t.Fatalf("load: %v", res.err)
	}
	r := res.r
	t.Logf("load: sent %d, acked %d, delivered %d; errors %v", r.Messages.Sent, r.Messages.Acked, r.Messages.Delivered, r.Errors)
	if !r.Passed {
		t.Fatalf("guarantees broken: %s\n%+v", r.Summary, r.Checks)
	}
	if r.Messages.Acked < 5000 || r.Messages.SendFailed != 0 {
		t.Fatalf("acked %d (want several thousand), %d sends failed for good", r.Messages.Acked, r.Messages.SendFailed)
	}
	return r, start
}

// lastRecovery is when the last client got service back after at (zero when
// none was disrupted).
func lastRecovery(r *loadgen.Report, start, at time.Time) time.Duration {
	p, ok := r.Latency["recovery_at"]
	if !ok || p.Count == 0 {
		return 0
	}
	return start.Add(time.Duration(p.Max * float64(time.Millisecond))).Sub(at)
}

// TestFailoverKillNode: under a steady load across 3 nodes, one node is killed
// with SIGKILL; its clients reconnect to the survivors and resync, senders
// retry with their client message ids; no acked message is lost or
// duplicated and no device sees a gap. The time from the kill to full
// service is reported.
func TestFailoverKillNode(t *testing.T) {
	c := startCluster(t, 3)
	var killed time.Time
	r, start := clusterLoad(t, c, func() {
		time.Sleep(5 * time.Second)
		killed = time.Now()
		c.nodes[1].kill9(t)
	})
	full := lastRecovery(r, start, killed)
	t.Logf("SIGKILL to full service: %v (senders' outage max %.0f ms, p99 %.0f ms; receivers' reconnect max %.0f ms)",
		full.Round(time.Millisecond), r.Latency["send_recover"].Max, r.Latency["send_recover"].P99, r.Latency["reconnect"].Max)
	if r.Conns.Reconnects == 0 {
		t.Fatal("no client reconnected: the kill disrupted nothing")
	}
	if full > 5*time.Second {
		t.Fatalf("full service came back %v after the kill; target under 5 s", full)
	}
}

// TestJoinUnderLoad: a 4th node joins a loaded 3-node cluster; grains move
// onto it (it activates user grains) and the load loses nothing.
func TestJoinUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	var joined *process
	clusterLoad(t, c, func() {
		time.Sleep(4 * time.Second)
		joined = c.addNode()
	})
	if n := metric(t, joined, "actorim_user_grains_activated_total"); n == 0 {
		t.Fatal("the new node activated no user grain: nothing was rebalanced onto it")
	} else {
		t.Logf("the joined node activated %v user grains", n)
	}
}

// TestDrainUnderLoad: SIGTERM drains a loaded node: it leaves the
// membership, closes its sockets with 4009 and stops; its clients resume on
// the others within 2 s and nothing is lost.
func TestDrainUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	var drained time.Time
	r, start := clusterLoad(t, c, func() {
		time.Sleep(5 * time.Second)
		drained = time.Now()
		c.nodes[1].terminate(t, 15*time.Second)
		t.Logf("the node exited %v after SIGTERM", time.Since(drained).Round(time.Millisecond))
	})
	full := lastRecovery(r, start, drained)
	worst := max(r.Latency["send_recover"].Max, r.Latency["reconnect"].Max)
	t.Logf("SIGTERM to full service: %v; the longest any client waited: %.0f ms", full.Round(time.Millisecond), worst)
	if r.Conns.Reconnects == 0 {
		t.Fatal("no client reconnected: the drain disrupted nothing")
	}
	if worst > 2000 {
		t.Fatalf("a client waited %.0f ms during the drain; at most 2 s", worst)
	}
}

// metric reads a counter or gauge from a node's /metrics.
func metric(t *testing.T, p *process, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	t.Fatalf("%s has no metric %s", p.Addr(), name)
	return 0
}
