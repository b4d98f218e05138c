// Package bench holds the Go benchmarks `make bench` runs: private chat
// through the WebSocket gateway of one standalone node, measured end to end
// by real clients in the same process (so the figures include the clients'
// CPU on the same cores, as in every load test on this machine).
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"actorim/auth"
	"actorim/client"
	"actorim/node"
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
}

func runPrivateChat(b *testing.B, pairs, rate int) {
	dir := b.TempDir()
	cfg := node.Config{Listen: "127.0.0.1:0", DataDir: dir, AuthSecret: secret}
	cfg.Gateway.SendRate, cfg.Gateway.SendBurst = 1e9, 1e9 // measure the server, not the limiter
	n, err := node.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	}()
	url := "ws://" + n.Addr().String() + "/ws"
	fmt.Fprintln(os.Stderr, "BENCH-NODE", n.Addr().String())
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

	var recv sync.WaitGroup
	for _, p := range ps {
		recv.Add(1)
		go func() {
			defer recv.Done()
			for push := range p.to.Pushes() {
				now := time.Now()
				es := push.GetEntries()
				for _, e := range es {
					if ns, err := strconv.ParseInt(e.GetMessage().GetContent().GetText(), 10, 64); err == nil {
						record(delivery, now.Sub(time.Unix(0, ns)))
					}
				}
				delivered.Add(int64(len(es)))
				_ = p.to.Ack(es[len(es)-1].GetSeq())
			}
		}()
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
	d0, measured0 := delivered.Load(), time.Now()
	measuring.Store(true)
	b.ResetTimer()
	time.Sleep(duration())
	measuring.Store(false)
	d1, elapsed := delivered.Load(), time.Since(measured0)
	cpu1, rss1 := selfUsage()
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
	recv.Wait()

	rateOut := float64(d1-d0) / elapsed.Seconds()
	b.ReportMetric(rateOut, "msgs/s")
	b.ReportMetric(float64(delivery.ValueAtQuantile(50))/1000, "p50-ms")
	b.ReportMetric(float64(delivery.ValueAtQuantile(99))/1000, "p99-ms")
	b.ReportMetric(float64(delivery.ValueAtQuantile(99.9))/1000, "p999-ms")
	b.ReportMetric(float64(ack.ValueAtQuantile(99))/1000, "ack-p99-ms")
	// Clients and node share this process: CPU and RSS are of both together.
	b.ReportMetric((cpu1-cpu0).Seconds()/(float64(d1-d0)/1e6), "proc-cpu-s/M")
	b.ReportMetric(float64(rss1)/(1<<20), "proc-rss-MiB")
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
			c, err := client.Dial(ctx, url, client.Options{PushBuffer: 4096})
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
	ps := make([]pair, n)
	for i := range ps {
		ps[i] = pair{from: conns[2*i], to: conns[2*i+1], fromID: ids[2*i], toID: ids[2*i+1]}
	}
	return ps
}
