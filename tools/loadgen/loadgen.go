// Package loadgen is the engine of imbench: it drives a real actorim node or
// cluster with realistic clients (the Go client over WebSocket), measures
// throughput, latency, connection capacity and resource use, and checks the
// delivery guarantees of docs/protocol.md while it loads (see Checker).
//
// A run is one workload (pairs, idle, login-storm, reconnect-storm, mix,
// fanout, media) in one or more client processes. The process that
// calls Run coordinates: it may spawn the node, starts the client processes
// (re-executing its own binary as workers, see WorkerMain), lines them up at
// named barriers, samples the node's CPU and RSS at each barrier, prints
// progress, and merges the processes' counts, HDR histograms and checker
// results into one Report. docs/benchmarks.md describes the methodology.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"actorim/client"
)

// Config describes a run. Zero values are the defaults.
type Config struct {
	// Targets are the nodes' WebSocket URLs (ws://host:port/ws); connections
	// are spread over them round robin.
	Targets []string
	// Secret is the nodes' token signing secret: tokens are minted per user,
	// who is provisioned at first login.
	Secret string
	// Spawn builds and starts a standalone imnode child on a fresh data
	// directory with the send rate limit lifted; Targets and Secret are its own.
	Spawn bool `json:"-"`
	// Imnode is the binary Spawn runs; empty builds actorim/cmd/imnode with
	// the go tool (imbench must then run inside the module).
	Imnode string `json:"-"`
	// NodeArgs are extra flags for the spawned node (e.g. --max-connections=1000).
	NodeArgs []string `json:"-"`
	// NodePIDs are local node processes whose CPU and RSS are read from
	// /proc; without them (and without Spawn) each target's /metrics is read.
	NodePIDs []int `json:"-"`
	// SourceIPs are the local addresses client sockets bind to, round robin.
	// Empty: the system's choice, or 127.0.0.2, .3, ... automatically when
	// the targets are on loopback and one address has too few ports.
	SourceIPs []netip.Addr
	// Procs is the number of client processes. 0: as many as the open-files
	// limit requires.
	Procs int `json:"-"`
	// JSON selects the JSON subprotocol instead of binary protobuf.
	JSON bool

	// Warmup runs load before measuring (pairs, mix, reconnect-storm). Default 2s.
	Warmup time.Duration
	// Duration is the measured time (pairs, mix) or how long connections are
	// held (idle). Default 10s.
	Duration time.Duration
	// Drain is how long to wait, after the load stops, for deliveries still
	// under way before unfinished ones count as lost. Default 10s.
	Drain time.Duration
	// Timeout bounds one connection attempt or request. Default 10s.
	Timeout time.Duration
	// Concurrency bounds connection attempts in flight per process. Default 200.
	Concurrency int
	// RunID prefixes every user id; default a fresh random one, so each run
	// starts with empty timelines.
	RunID string
	// Examples is how many examples of each violation kind to report. Default 5.
	Examples int

	// Pairs is the number of sender/receiver pairs (pairs, mix). Default 1000.
	Pairs int
	// Rate is the total send rate in messages/s (open loop: pairs, mix,
	// fanout); 0 is closed loop.
	Rate float64
	// Inflight is the unacknowledged sends each sender keeps in closed loop.
	// Default 1.
	Inflight int
	// AckDelay delays receivers' cumulative PushAcks. Default 200ms.
	AckDelay time.Duration
	// Conns is the number of connections (idle, mix: idle ones; login-storm:
	// logins per round). Default 1000 (login-storm: Users).
	Conns int
	// Users is the number of distinct users of login-storm. Default 5000.
	Users int
	// Devices is the number of devices that drop in reconnect-storm. Default 1000.
	Devices int
	// Offline is how long reconnect-storm's devices stay away while messages
	// keep arriving for them. Default 2s.
	Offline time.Duration
	// ReconnectEvery and ReconnectBatch: mix aborts and resumes this many
	// receivers this often. Defaults 1s and 10.
	ReconnectEvery time.Duration
	ReconnectBatch int
	// GroupSize is the number of members of each fanout group, all online
	// with one connection each. Default 100.
	GroupSize int
	// Groups is the number of fanout groups (disjoint members). Default 1.
	Groups int
	// Senders is the number of members of each fanout group who send.
	// Default 1.
	Senders int

	// MediaSize is the size of each file of the media workload, in bytes.
	// Default 1 MiB.
	MediaSize int64
	// Streams is how many files the media workload moves at once, each
	// stream as its own user over its own HTTP connection. Default 10.
	Streams int
	// Files is how many files the media workload uploads, then downloads.
	// Default Streams (one per stream).
	Files int
	// ChunkSize is the size of a tus PATCH (media). Default the client's,
	// 8 MiB.
	ChunkSize int64
	// SimpleUpload uploads each file in one POST /v1/media instead of with
	// tus (media).
	SimpleUpload bool
	// Images makes every file of the media workload a JPEG the node
	// decodes for a thumbnail, instead of random bytes it only stores.
	Images bool

	// App, when set, is the app (tenant) the test users belong to; Secret
	// is then that app's token secret. Set by Run for BeforeSend.
	App string
	// BeforeSend runs the workload (pairs, mix) in a fresh app whose
	// before-send webhook is a receiver in this process, which verifies
	// each call's signature and answers allow after BeforeSendDelay; and,
	// unless NoReference, first the same workload in a fresh app without a
	// webhook, as the reference the report compares with (see
	// webhook.go). It needs the admin API: AdminSecret, or Spawn.
	BeforeSend      bool
	BeforeSendDelay time.Duration
	NoReference     bool `json:"-"`
	// WebhookListen is the receiver's address; the node must reach it
	// there. Default 127.0.0.1:0 (a free port).
	WebhookListen string `json:"-"`
	// AdminSecret signs admin tokens (the nodes' admin secret); AdminURL is
	// where the admin API answers (default the first target's HTTP address).
	AdminSecret string `json:"-"`
	AdminURL    string `json:"-"`

	// VsRelay (pairs) runs the workload first against the bundled reference
	// relay (package relay), spawned as a process of its own, then against
	// actorim; the report compares them (vs_ref, node_cpu_vs_ref). See
	// relayref.go.
	VsRelay bool
	// RelayCommand starts the relay child; default this executable, which
	// must then call RelayMain when IsRelay. Its environment gets RelayEnv=1.
	RelayCommand []string `json:"-"`

	// Progress receives a progress line every second (nil: none).
	Progress io.Writer `json:"-"`
	// WorkerCommand starts a worker process; default this executable. Its
	// environment gets WorkerEnv=1.
	WorkerCommand []string `json:"-"`
}

// WithDefaults returns c with every zero field that has a default set to it
// as Run sets it for workload, except RunID, which Run draws fresh for each
// run. imbench takes its flags' defaults from it.
func (c Config) WithDefaults(workload string) Config {
	runID := c.RunID
	c.setDefaults(workload)
	c.RunID = runID
	return c
}

func (c *Config) setDefaults(workload string) {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Warmup, 2*time.Second)
	def(&c.Duration, 10*time.Second)
	def(&c.Drain, 10*time.Second)
	def(&c.Timeout, 10*time.Second)
	def(&c.AckDelay, 200*time.Millisecond)
	def(&c.Offline, 2*time.Second)
	def(&c.ReconnectEvery, time.Second)
	defInt(&c.Concurrency, 200)
	defInt(&c.Examples, 5)
	defInt(&c.Pairs, 1000)
	defInt(&c.Inflight, 1)
	defInt(&c.Users, 5000)
	defInt(&c.Devices, 1000)
	defInt(&c.ReconnectBatch, 10)
	defInt(&c.GroupSize, 100)
	defInt(&c.Groups, 1)
	defInt(&c.Senders, 1)
	defInt(&c.Streams, 10)
	if workload == "media" {
		defInt(&c.Files, c.Streams)
	}
	if c.MediaSize <= 0 {
		c.MediaSize = 1 << 20
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = client.DefaultChunkSize
	}
	if workload == "login-storm" {
		defInt(&c.Conns, c.Users)
	}
	defInt(&c.Conns, 1000)
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("imb%x", time.Now().UnixNano()&0xffffffffff)
	}
}

// workload is one of imbench's subcommands.
type workload struct {
	// check refuses a configuration before anything starts.
	check func(cfg *Config) error
	// sockets is the number of client sockets open at the peak.
	sockets func(cfg *Config) int
	// run is a process's share of the load.
	run func(ctx context.Context, e *env) error
	// setup describes the run in one line; summarize fills in the report.
	setup     func(cfg *Config) string
	summarize func(r *Report, t *total, marks map[string]Mark)
	// nodeArgs, when set, are flags a spawned node needs for the run.
	nodeArgs func(cfg *Config) []string
}

var workloads = map[string]*workload{
	"pairs":           pairsWorkload,
	"idle":            idleWorkload,
	"login-storm":     loginStormWorkload,
	"reconnect-storm": reconnectStormWorkload,
	"mix":             mixWorkload,
	"fanout":          fanoutWorkload,
	"media":           mediaWorkload,
}

// Workloads returns the names of the workloads Run accepts.
func Workloads() []string { return slices.Sorted(maps.Keys(workloads)) }

// Mark is the moment every client process reached a barrier, with the
// nodes' resource use then.
type Mark struct {
	At   time.Time  `json:"at"`
	Node NodeSample `json:"node"`
}

// filesPerProcess is the sockets one client process may hold: the
// open-files limit less room for everything else.
func filesPerProcess() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 100_000
	}
	return max(64, int(l.Cur)-1000)
}

// Run runs a workload against cfg's targets (or a spawned node) and returns
// its report. The error is about running it; broken guarantees are in the
// report (Report.Passed).
func Run(ctx context.Context, name string, cfg Config) (*Report, error) {
	w := workloads[name]
	if w == nil {
		return nil, fmt.Errorf("loadgen: unknown workload %q (one of %s)", name, strings.Join(Workloads(), ", "))
	}
	cfg.setDefaults(name)
	if err := w.check(&cfg); err != nil {
		return nil, err
	}
	if cfg.VsRelay {
		return runVsRelay(ctx, name, w, cfg)
	}
	if cfg.BeforeSend {
		return runBeforeSend(ctx, name, w, cfg)
	}
	return runOn(ctx, name, w, cfg, nil)
}

// runOn runs one workload on its nodes; prepare, when set, is called once
// the nodes are known (spawned) and before any client starts.
func runOn(ctx context.Context, name string, w *workload, cfg Config, prepare func(context.Context, *Config) error) (*Report, error) {
	sockets, per := w.sockets(&cfg), filesPerProcess()
	procs := cfg.Procs
	if procs <= 0 {
		procs = max(1, (sockets+per-1)/per)
	}
	if sockets/procs > per {
		return nil, fmt.Errorf("loadgen: %d sockets in %d processes exceed the open-files limit (%d per process): use --procs %d",
			sockets, procs, per, (sockets+per-1)/per)
	}
	pb := &probe{pids: cfg.NodePIDs, http: &http.Client{Timeout: 5 * time.Second}}
	if cfg.Spawn {
		args := cfg.NodeArgs
		if w.nodeArgs != nil {
			args = append(w.nodeArgs(&cfg), args...) // the user's flags come last and win
		}
		node, err := spawnNode(ctx, cfg.Imnode, args, os.Stderr)
		if err != nil {
			return nil, err
		}
		defer node.stop()
		cfg.Targets, cfg.Secret, cfg.AdminSecret = []string{"ws://" + node.Addr() + "/ws"}, node.secret, node.adminSecret
		pb.pids = []int{node.Pid()}
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("loadgen: no target: give --target URL or --spawn")
	}
	if cfg.Secret == "" && prepare == nil { // prepare (an app of the run's own) brings its secret
		return nil, errors.New("loadgen: no secret to mint tokens: give --secret, --secret-file (a standalone node's <data>/auth.secret) or --spawn")
	}
	if len(pb.pids) == 0 {
		for _, t := range cfg.Targets {
			u, err := metricsURL(t)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(pb.metrics, u) {
				pb.metrics = append(pb.metrics, u)
			}
		}
	}
	if len(cfg.SourceIPs) == 0 {
		cfg.SourceIPs = autoSourceIPs(cfg.Targets, sockets)
	}
	if prepare != nil {
		if err := prepare(ctx, &cfg); err != nil {
			return nil, err
		}
	}

	before := pb.sample()
	started := time.Now()
	parts, marks, err := coordinate(ctx, name, &cfg, procs, pb)
	if err != nil {
		return nil, err
	}
	t, err := merge(parts, cfg.Examples)
	if err != nil {
		return nil, err
	}
	r := &Report{Workload: name, Setup: w.setup(&cfg), Date: started.UTC(), Targets: cfg.Targets, Procs: procs,
		SourceIPs: len(cfg.SourceIPs), Errors: t.errs, Latency: map[string]Percentiles{}, Figures: map[string]float64{},
		Conns:  ConnStats{Opened: t.counts["opened"], Failed: t.counts["conn_failed"], Refused: t.counts["refused"], Reconnects: t.counts["reconnects"]},
		Node:   NodeStats{Source: pb.source(), RSSStart: before.RSS},
		Marks:  marks,
		Checks: t.check}
	for n, h := range t.hists {
		if h.TotalCount() > 0 {
			r.Latency[n] = percentiles(h)
		}
	}
	w.summarize(r, t, marks)
	for _, m := range marks {
		r.Node.RSSPeak = max(r.Node.RSSPeak, m.Node.RSSPeak)
	}
	r.Passed = r.Checks.Violations() == 0
	r.Summary = r.Checks.Summary()
	return r, nil
}

// window fills in the report's resource use between two marks and, when
// messages were delivered in it, the rates per message.
func (r *Report) window(t *total, marks map[string]Mark, from, to string) {
	m0, m1 := marks[from], marks[to]
	a0, a1 := t.at[from], t.at[to]
	secs := m1.At.Sub(m0.At).Seconds()
	delivered := a1.Counts["delivered"] - a0.Counts["delivered"]
	r.Window = Window{From: from, To: to, Seconds: round(secs, 3), Delivered: delivered}
	if secs > 0 {
		r.Window.Throughput = round(float64(delivered)/secs, 1)
	}
	if m0.Node.OK && m1.Node.OK {
		r.Node.CPUSeconds = round(m1.Node.CPU-m0.Node.CPU, 2)
		r.Node.RSS = m1.Node.RSS
	}
	r.Client.CPUSeconds = round(a1.CPU-a0.CPU, 2)
	r.Client.RSS = a1.RSS
	if delivered > 0 {
		perM := float64(delivered) / 1e6
		if m0.Node.OK && m1.Node.OK {
			r.Node.CPUPerMillion = round(r.Node.CPUSeconds/perM, 1)
		}
		r.Client.CPUPerMillion = round(r.Client.CPUSeconds/perM, 1)
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// WorkerEnv is set in a worker process's environment. A binary that calls
// Run with Procs > 1 must call WorkerMain first thing when it is set.
const WorkerEnv = "IMBENCH_WORKER"

// IsWorker reports whether this process was started as a worker.
func IsWorker() bool { return os.Getenv(WorkerEnv) != "" }
