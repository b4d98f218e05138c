// Package bench holds the Go benchmarks `make bench` runs: private chat
// through the WebSocket gateway of one standalone imnode process, measured
// end to end by real clients in the benchmark process. Node and clients
// share the machine's cores, so the node's CPU per message is reported
// beside the throughput.
package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"actorim/auth"
	"actorim/client"
	"actorim/protos/clientpb"
)

const secret = "bench-secret-0123456789abcdef0123456789"

// BenchmarkPrivateChat measures delivered messages per second and the
// latency from send to delivery for N sender/receiver pairs: closed loop (each
// sender keeps one message in flight, the throughput figure) and open loop at
// a fixed rate (the latency figure, free of coordinated omission: latency is
// measured from each message's scheduled send time).
//
// BENCH_DURATION (default 10s) sets the measured time of each case.
func BenchmarkPrivateChat(b *testing.B) {
	for _, tc := range []struct {
		name  string
		pairs int
		rate  int // total messages/s; 0 = closed loop
	}{
		{"pairs=1000/closed-loop", 1000, 0},
		{"pairs=1000/rate=10000", 1000, 10000},
	} {
		b.Run(tc.name, func(b *testing.B) { runPrivateChat(b, tc.pairs, tc.rate) })
	}
}

func duration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil {
		return d
	}
	return 10 * time.Second
}

type pair struct {
	from, to     *client.Conn
	fromID, toID string
	onPush       func(*clientpb.Push) // set before traffic starts
}

func runPrivateChat(b *testing.B, pairs, rate int) {
	n := startNode(b)
	url := "ws://" + n.addr + "/ws"
	ps := connectPairs(b, url, pairs)

	var (
		delivered, acked, sendErrs atomic.Int64
		mu                         sync.Mutex
		delivery                   = hdrhistogram.New(1, 60_000_000, 3) // microseconds
		ack                        = hdrhistogram.New(1, 60_000_000, 3)
		measuring                  atomic.Bool
	)
	record := func(h *hdrhistogram.Histogram, d time.Duration) {
		if measuring.Load() {
			mu.Lock()
			_ = h.RecordValue(max(1, d.Microseconds()))
			mu.Unlock()
		}
	}

	// Receivers read on the connection's own goroutine and ack with a short
	// delay, as an efficient client would; the delay is not on the delivery path.
	for i := range ps {
		ps[i].onPush = func(push *clientpb.Push) {
			now := time.Now()
			es := push.GetEntries()
			for _, e := range es {
				if ns, err := strconv.ParseInt(e.GetMessage().GetContent().GetText(), 10, 64); err == nil {
					record(delivery, now.Sub(time.Unix(0, ns)))
				}
			}
			delivered.Add(int64(len(es)))
		}
	}

	stop := make(chan struct{})
	var send sync.WaitGroup
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(pairs) / float64(rate))
	}
	start := time.Now()
	for i, p := range ps {
		send.Add(1)
		go func() {
			defer send.Done()
			next := start.Add(time.Duration(i) * interval / time.Duration(pairs))
			for seq := 0; ; seq++ {
				if interval > 0 {
					time.Sleep(time.Until(next))
				} else {
					next = time.Now()
				}
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				a, err := p.from.SendText(ctx, p.toID, "b"+strconv.Itoa(seq), strconv.FormatInt(next.UnixNano(), 10))
				cancel()
				if err != nil || a.GetDuplicate() {
					sendErrs.Add(1)
					continue
				}
				acked.Add(1)
				record(ack, time.Since(next))
				next = next.Add(interval)
			}
		}()
	}

	warm := 2 * time.Second
	time.Sleep(warm)
	cpu0, _ := selfUsage()
	ncpu0, _ := n.usage()
	d0, measured0 := delivered.Load(), time.Now()
	measuring.Store(true)
	b.ResetTimer()
	time.Sleep(duration())
	measuring.Store(false)
	d1, elapsed := delivered.Load(), time.Since(measured0)
	cpu1, _ := selfUsage()
	ncpu1, nrss1 := n.usage()
	b.StopTimer()
	close(stop)
	send.Wait()

	// Every acked message must arrive: wait for stragglers, then compare.
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < acked.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range ps {
		_ = p.from.Close()
		_ = p.to.Close()
	}

	rateOut := float64(d1-d0) / elapsed.Seconds()
	b.ReportMetric(rateOut, "msgs/s")
	b.ReportMetric(float64(delivery.ValueAtQuantile(50))/1000, "p50-ms")
	b.ReportMetric(float64(delivery.ValueAtQuantile(99))/1000, "p99-ms")
	b.ReportMetric(float64(delivery.ValueAtQuantile(99.9))/1000, "p999-ms")
	b.ReportMetric(float64(ack.ValueAtQuantile(99))/1000, "ack-p99-ms")
	perM := float64(d1-d0) / 1e6
	b.ReportMetric((ncpu1-ncpu0).Seconds()/perM, "node-cpu-s/M")
	b.ReportMetric((cpu1-cpu0).Seconds()/perM, "client-cpu-s/M")
	b.ReportMetric(float64(nrss1)/(1<<20), "node-rss-MiB")
	if lost := acked.Load() - delivered.Load(); lost != 0 || sendErrs.Load() != 0 {
		b.Fatalf("acked %d, delivered %d, send errors %d", acked.Load(), delivered.Load(), sendErrs.Load())
	}
}

// connectPairs logs in 2*n users with tokens minted as an application server
// would (their first login provisions them) and pairs them up.
func connectPairs(b *testing.B, url string, n int) []pair {
	tokens, err := auth.NewTokens([]byte(secret), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*client.Conn, 2*n)
	ids := make([]string, 2*n)
	ps := make([]pair, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	run := time.Now().UnixNano()
	for i := range conns {
		ids[i] = fmt.Sprintf("bench-%d-%d", run, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tok, _, _ := tokens.Issue(ids[i], false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := client.Options{}
			if i%2 == 1 { // receiver
				p := &ps[i/2]
				opts = client.Options{AutoAck: true, AckDelay: 200 * time.Millisecond,
					OnPush: func(push *clientpb.Push) { p.onPush(push) }}
			}
			c, err := client.Dial(ctx, url, opts)
			if err == nil {
				_, err = c.Login(ctx, tok, "bench", clientpb.Platform_PLATFORM_DESKTOP, nil)
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatalf("connect: %v", err)
	}
	for i := range ps {
		ps[i].from, ps[i].to, ps[i].fromID, ps[i].toID = conns[2*i], conns[2*i+1], ids[2*i], ids[2*i+1]
		ps[i].onPush = func(*clientpb.Push) {}
	}
	return ps
}
