package loadgen_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"actorim/actors"
	"actorim/gateway"
	"actorim/node"
	"actorim/tools/loadgen"
)

// TestMain lets the test binary serve as a worker process for Procs > 1,
// and as the reference relay of VsRelay.
func TestMain(m *testing.M) {
	if loadgen.IsWorker() {
		os.Exit(loadgen.WorkerMain(context.Background()))
	}
	if loadgen.IsRelay() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := loadgen.RelayMain(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

const (
	secret      = "loadgen-test-secret-0123456789abcdef"
	adminSecret = "loadgen-test-admin-secret-0123456789ab"
)

// startNode runs a node in the test process with its limits lifted as
// imbench --spawn lifts them: send and request rates (a fan-out sender
// with 4 in flight otherwise passes the 200 frames/s request rate and gets
// ERR_RATE_LIMITED), and the write budget.
func startNode(t *testing.T) string {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), AuthSecret: secret, AdminSecret: adminSecret,
		Gateway: gateway.Config{SendRate: 1e6, SendBurst: 1e6, RequestRate: 1e6, RequestBurst: 1e6},
		Actors: actors.Config{PushRetryMin: 500 * time.Millisecond, PushRetryMax: 2 * time.Second,
			WriteBudget: 1 << 40, WriteBurst: 1 << 40},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return "ws://" + n.Addr().String() + "/ws"
}

// config is a short run against target.
func config(target string) loadgen.Config {
	return loadgen.Config{Targets: []string{target}, Secret: secret, Warmup: 300 * time.Millisecond,
		Duration: time.Second, Drain: 5 * time.Second, AckDelay: 50 * time.Millisecond,
		WorkerCommand: []string{os.Args[0]}}
}

func run(t *testing.T, workload string, cfg loadgen.Config) *loadgen.Report {
	t.Helper()
	r, err := loadgen.Run(context.Background(), workload, cfg)
	if err != nil {
		t.Fatalf("%s: %v", workload, err)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if !r.Passed || r.Checks.Violations() != 0 || !strings.HasSuffix(r.Summary, "PASS") {
		t.Fatalf("%s: %s %v", workload, r.Summary, r.Checks.Examples)
	}
	if len(r.Errors) != 0 {
		t.Fatalf("%s: errors %v", workload, r.Errors)
	}
	return r
}

// TestWorkloads runs the workloads briefly against a real node: no
// violations, no errors, and counts that add up.
func TestWorkloads(t *testing.T) {
	target := startNode(t)

	t.Run("pairs/closed-loop", func(t *testing.T) {
		cfg := config(target)
		cfg.Pairs, cfg.Inflight = 20, 4
		r := run(t, "pairs", cfg)
		m := r.Messages
		if r.Conns.Opened != 40 || m.Sent == 0 || m.Acked != m.Sent || m.Delivered != m.Acked || r.Window.Throughput <= 0 {
			t.Fatalf("connections %+v, messages %+v, window %+v", r.Conns, m, r.Window)
		}
		if r.Latency["send_delivery"].Count == 0 || r.Latency["send_ack"].P50 <= 0 || !r.Marks["end"].Node.OK {
			t.Fatalf("latency %+v, marks %+v", r.Latency, r.Marks)
		}
	})

	// Two apps on one node, the second with the before-send webhook; two
	// processes, so that the workers mint tokens for the app as well.
	t.Run("pairs/webhook-before-send", func(t *testing.T) {
		cfg := config(target)
		cfg.Pairs, cfg.Procs, cfg.AdminSecret = 10, 2, adminSecret
		cfg.BeforeSend, cfg.BeforeSendDelay = true, time.Millisecond
		r := run(t, "pairs", cfg)
		f := r.Figures
		if r.Reference == nil || !r.Reference.Passed || r.Reference.Messages.Delivered == 0 || f["vs_ref"] <= 0 {
			t.Fatalf("reference %+v, figures %v", r.Reference, f)
		}
		if m := r.Messages; f["webhook_calls"] != float64(m.Acked) || f["webhook_bad_signatures"] != 0 || f["webhook_connections"] < 1 {
			t.Fatalf("messages %+v, figures %v", m, f)
		}
	})

	t.Run("pairs/open-loop-json-codec", func(t *testing.T) {
		cfg := config(target)
		cfg.Pairs, cfg.Rate, cfg.JSON = 10, 500, true
		r := run(t, "pairs", cfg)
		if m := r.Messages; m.Delivered != m.Acked || m.Acked < 400 || r.Window.Throughput < 300 || r.Window.Throughput > 700 {
			t.Fatalf("messages %+v, window %+v", m, r.Window)
		}
	})

	t.Run("idle/two-processes", func(t *testing.T) {
		cfg := config(target)
		cfg.Conns, cfg.Procs = 200, 2
		r := run(t, "idle", cfg)
		if r.Procs != 2 || r.Conns.Opened != 200 || r.Conns.Failed != 0 || r.Latency["login"].Count != 200 || r.Figures["conns_per_s"] <= 0 {
			t.Fatalf("procs %d, connections %+v, latency %+v, figures %v", r.Procs, r.Conns, r.Latency, r.Figures)
		}
		if _, ok := r.Figures["node_rss_per_conn_kib"]; !ok {
			t.Fatalf("no node RSS per connection: %v", r.Figures)
		}
	})

	t.Run("reconnect-storm", func(t *testing.T) {
		cfg := config(target)
		cfg.Devices, cfg.Rate, cfg.Offline = 20, 200, 500*time.Millisecond
		r := run(t, "reconnect-storm", cfg)
		if r.Conns.Reconnects != 20 || r.Latency["resync"].Count != 20 || r.Figures["missed_then_delivered"] == 0 {
			t.Fatalf("connections %+v, latency %+v, figures %v", r.Conns, r.Latency, r.Figures)
		}
	})

	t.Run("mix", func(t *testing.T) {
		cfg := config(target)
		cfg.Pairs, cfg.Rate, cfg.Conns, cfg.ReconnectEvery, cfg.ReconnectBatch = 10, 300, 20, 200*time.Millisecond, 2
		r := run(t, "mix", cfg)
		if r.Conns.Opened != 40 || r.Conns.Reconnects == 0 || r.Messages.Delivered != r.Messages.Acked {
			t.Fatalf("connections %+v, messages %+v", r.Conns, r.Messages)
		}
	})

	// Two groups of 12, two senders each: every acked message reaches the
	// 11 other members exactly once, beside the creation events in their
	// timelines and the senders' own messages their streams skip.
	t.Run("fanout/closed-loop", func(t *testing.T) {
		cfg := config(target)
		cfg.Groups, cfg.GroupSize, cfg.Senders, cfg.Inflight = 2, 12, 2, 4
		r := run(t, "fanout", cfg)
		m := r.Messages
		if r.Conns.Opened != 24 || m.Sent == 0 || m.Acked != m.Sent || m.Delivered != m.Acked*11 || r.Checks.Unacked != 0 {
			t.Fatalf("connections %+v, messages %+v, checks %+v", r.Conns, m, r.Checks)
		}
		if r.Checks.Devices != 24 || r.Latency["send_delivery"].Count == 0 || r.Latency["send_ack"].P50 <= 0 ||
			r.Figures["deliveries_per_s"] <= 0 || r.Figures["deliveries_per_message"] != 11 {
			t.Fatalf("devices %d, latency %+v, figures %v", r.Checks.Devices, r.Latency, r.Figures)
		}
	})

	t.Run("fanout/open-loop-two-processes", func(t *testing.T) {
		cfg := config(target)
		cfg.Groups, cfg.GroupSize, cfg.Rate, cfg.Procs = 2, 8, 200, 2
		r := run(t, "fanout", cfg)
		if m := r.Messages; m.Acked < 150 || m.Delivered != m.Acked*7 || r.Procs != 2 {
			t.Fatalf("procs %d, messages %+v", r.Procs, m)
		}
	})
}

func TestParseSourceIPs(t *testing.T) {
	ips, err := loadgen.ParseSourceIPs("127.0.0.2-127.0.0.4, 10.0.0.1")
	if err != nil || len(ips) != 4 || ips[2].String() != "127.0.0.4" || ips[3].String() != "10.0.0.1" {
		t.Fatalf("got %v, %v", ips, err)
	}
	for _, bad := range []string{"127.0.0.9-127.0.0.2", "nope", "127.0.0.1-::1"} {
		if _, err := loadgen.ParseSourceIPs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestPairsVsRelay runs a few pairs against the bundled relay (a child
// process, this test binary) and then against a node, both checked, and
// expects the comparison figures.
func TestPairsVsRelay(t *testing.T) {
	for _, json := range []bool{false, true} {
		cfg := config(startNode(t))
		cfg.Pairs, cfg.Inflight, cfg.JSON = 8, 4, json
		cfg.VsRelay, cfg.RelayCommand = true, []string{os.Args[0]}
		cfg.NodePIDs = []int{os.Getpid()} // the node runs in this process
		r := run(t, "pairs", cfg)
		ref := r.Reference
		if ref == nil || !ref.Passed || ref.Messages.Delivered == 0 || ref.Window.Throughput <= 0 {
			t.Fatalf("no relay reference: %+v", ref)
		}
		if len(ref.Errors) != 0 {
			t.Fatalf("relay run: errors %v", ref.Errors)
		}
		for _, k := range []string{"vs_ref", "node_cpu_vs_ref", "ref_delivered_per_s", "ref_node_cpu_s_per_million"} {
			if r.Figures[k] <= 0 {
				t.Errorf("json=%v: figure %s = %v, want > 0", json, k, r.Figures[k])
			}
		}
		if !strings.HasPrefix(r.Summary, "relay ") {
			t.Errorf("summary %q", r.Summary)
		}
	}
}
