// Command imbench measures an actorim node or cluster under load and checks
// its delivery guarantees while doing so (package loadgen does the work;
// docs/benchmarks.md describes the method).
//
//	imbench pairs --spawn                                   1,000 private-chat pairs against a node it starts
//	imbench pairs --target ws://127.0.0.1:8080/ws --secret-file data/auth.secret --rate 10000
//	imbench pairs --spawn --webhook-before-send 1ms          a before-send webhook answering in 1 ms, against none: vs_ref
//	imbench pairs --spawn --vs-relay                        the bundled minimal relay, then actorim: vs_ref, node_cpu_vs_ref
//	imbench relay --listen 127.0.0.1:8090                   serve the bundled reference relay by itself
//	imbench idle --spawn --conns 15000                      RSS per idle connection
//	imbench login-storm --spawn --users 5000                logins per second
//	imbench reconnect-storm --spawn --devices 2000          everyone drops and resumes at once
//	imbench mix --target ws://a/ws,ws://b/ws --secret-file F  a cluster, clients spread over the nodes
//	imbench fanout --spawn --group-size 500 --inflight 8    one 500-member group, all online: deliveries/s
//	imbench media --spawn --size 100MiB --streams 1         upload then download one 100 MiB file: MiB/s each way
//	imbench media --spawn --size 200KiB --streams 1000      1,000 distinct small files at once: files/s, p50/p99 per file
//
// "upload" is another name of the media workload (imbench upload --size 100MiB).
//
// Every flag can be set from the environment as IMBENCH_ and its name in
// upper case with '_' for '-' (IMBENCH_TARGET, IMBENCH_SECRET_FILE, ...).
// The report goes to stdout (a table, or one JSON object with --json),
// progress to stderr. Exit status: 0 when every guarantee held, 1 when one
// was violated, 2 when the run could not be done.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/tools/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	switch {
	case loadgen.IsWorker():
		code = loadgen.WorkerMain(ctx)
	case loadgen.IsRelay(): // the reference relay of --vs-relay
		code = loadgen.RelayMain(ctx, os.Args[1:])
	default:
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// errViolated ends a run whose report shows a broken guarantee.
var errViolated = errors.New("guarantees violated")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &ffcli.Command{
		Name:       "imbench",
		ShortUsage: "imbench <workload> [flags]",
		LongHelp: "Load generator for actorim: measures throughput, latency, connection capacity and resource use,\n" +
			"and checks while loading that every acknowledged message reaches each recipient device exactly once,\n" +
			"in order, without gaps. --spawn starts a node itself; otherwise give --target and --secret(-file).\n" +
			"Flags may also be set as IMBENCH_<FLAG> environment variables.",
		FlagSet: flag.NewFlagSet("imbench", flag.ContinueOnError),
	}
	for _, w := range []struct{ name, help string }{
		{"pairs", "sender/receiver private-chat pairs: throughput and send-to-ack/delivery latency"},
		{"idle", "open and hold logged-in connections: node RSS per connection, connection rate"},
		{"login-storm", "logins per second and login latency, for new then returning users"},
		{"reconnect-storm", "every receiving device drops and resumes at once: time to reconnect and resync"},
		{"mix", "pairs, idle connections and periodic reconnects together"},
		{"fanout", "groups with every member online, senders writing to them: messages/s, deliveries/s, send-to-delivery latency"},
		{"media", "streams upload distinct random files (tus), then download them: MiB/s and files/s each way, per-file latency, node CPU and peak RSS"},
		{"upload", "the media workload under another name"},
	} {
		root.Subcommands = append(root.Subcommands, command(w.name, w.help, stdout, stderr))
	}
	root.Subcommands = append(root.Subcommands, archiveCommands(stdout, stderr)...)
	relayFlags := flag.NewFlagSet("relay", flag.ContinueOnError)
	relayListen := relayFlags.String("listen", "127.0.0.1:8090", "`address` to serve the relay's WebSocket (/ws) on")
	root.Subcommands = append(root.Subcommands, &ffcli.Command{
		Name:       "relay",
		ShortUsage: "imbench relay [--listen ADDR]",
		ShortHelp:  "serve the bundled reference relay (what pairs --vs-relay spawns): no storage, enough of the protocol for pairs",
		FlagSet:    relayFlags,
		Exec: func(ctx context.Context, _ []string) error {
			if loadgen.RelayMain(ctx, []string{"--listen", *relayListen}) != 0 {
				return errors.New("relay failed")
			}
			return nil
		},
	})
	root.Exec = func(context.Context, []string) error {
		fmt.Fprint(stderr, ffcli.DefaultUsageFunc(root))
		return errors.New("missing workload")
	}
	err := root.ParseAndRun(ctx, args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errViolated):
		return 1
	}
	fmt.Fprintln(stderr, "imbench:", err)
	return 2
}

// command builds one workload's subcommand: the flags every workload shares
// and its own.
func command(name, help string, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	workload := name
	if name == "upload" {
		workload = "media"
	}
	d := loadgen.Config{}.WithDefaults(workload) // every default is written once, in loadgen
	var (
		cfg        loadgen.Config
		targets    list
		nodeArgs   list
		nodePIDs   list
		secretFile = fs.String("secret-file", "", "read the nodes' token secret from this `file` (a standalone node's <data>/auth.secret)")
		adminFile  = fs.String("admin-secret-file", "", "read the nodes' admin secret from this `file`, for workloads that use the admin API (default $ACTORIM_ADMIN_SECRET)")
		sourceIPs  = fs.String("source-ips", "", "bind client sockets to these local `addresses`, round robin: a list and/or ranges like 127.0.0.2-127.0.0.9 "+
			"(default: 127.0.0.2, .3, ... when the targets are on loopback and more than 20,000 sockets are needed)")
		asJSON = fs.Bool("json", false, "print the report as one JSON object")
		quiet  = fs.Bool("quiet", false, "no progress line on stderr")
	)
	fs.Var(&targets, "target", "node WebSocket `URL`, e.g. ws://127.0.0.1:8080/ws; repeat or comma-separate for a cluster")
	fs.StringVar(&cfg.Secret, "secret", "", "the nodes' token signing secret, to mint tokens for the test users (prefer --secret-file or $ACTORIM_AUTH_SECRET: a command line shows in ps)")
	fs.BoolVar(&cfg.Spawn, "spawn", false, "build and start a standalone imnode on a fresh temp data dir, send rate limit lifted")
	fs.StringVar(&cfg.Imnode, "imnode", "", "imnode `binary` for --spawn (default: go build actorim/cmd/imnode)")
	fs.Var(&nodeArgs, "node-arg", "extra `flag` for the spawned imnode, e.g. --node-arg=--max-connections=1000 (repeatable)")
	fs.Var(&nodePIDs, "node-pid", "read the node's CPU and RSS from /proc of this `pid` instead of its /metrics (repeatable)")
	fs.IntVar(&cfg.Procs, "procs", 0, "client processes (default: as many as the open-files limit needs, about 19,000 sockets each)")
	fs.BoolVar(&cfg.JSON, "json-codec", false, "use the JSON subprotocol instead of binary protobuf")
	fs.DurationVar(&cfg.Duration, "duration", d.Duration, "measured time, or how long idle connections are held")
	fs.DurationVar(&cfg.Warmup, "warmup", d.Warmup, "load before measuring")
	fs.DurationVar(&cfg.Drain, "drain", d.Drain, "wait up to this long after the load for deliveries still under way")
	fs.DurationVar(&cfg.Timeout, "timeout", d.Timeout, "limit of one connection attempt or request")
	fs.IntVar(&cfg.Concurrency, "concurrency", d.Concurrency, "connection attempts in flight per client process")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of the test users' ids (default: fresh per run)")
	fs.IntVar(&cfg.Examples, "examples", d.Examples, "examples of each violation kind to show")

	pairsFlags := func() {
		fs.IntVar(&cfg.Pairs, "pairs", d.Pairs, "sender/receiver pairs")
		fs.Float64Var(&cfg.Rate, "rate", d.Rate, "open loop: total messages/s, latency measured from each message's scheduled time (default: closed loop)")
		fs.IntVar(&cfg.Inflight, "inflight", d.Inflight, "closed loop: unacknowledged sends per sender (pipelined)")
		fs.DurationVar(&cfg.AckDelay, "ack-delay", d.AckDelay, "receivers acknowledge pushes this long after the first unacknowledged one")
		fs.Var(beforeSendFlag{&cfg}, "webhook-before-send", "run in a fresh app whose before-send webhook (a receiver in imbench) answers allow after this `delay` (e.g. 1ms), "+
			"after a reference run in a fresh app without a webhook; the report gives the ratio (vs_ref)")
		fs.BoolVar(&cfg.NoReference, "no-reference", false, "with --webhook-before-send: skip the reference run")
		fs.StringVar(&cfg.WebhookListen, "webhook-listen", "", "with --webhook-before-send: the receiver's `address`, which the node must reach (default 127.0.0.1 on a free port)")
		fs.StringVar(&cfg.AdminURL, "admin-url", "", "the admin API's base `URL`, for --webhook-before-send (default the first target's)")
	}
	switch name {
	case "pairs":
		pairsFlags()
		fs.BoolVar(&cfg.VsRelay, "vs-relay", false, "first run the same workload against the bundled minimal relay (no storage; spawned as its own process, CPU read from /proc), "+
			"then against actorim; the report gives the ratios (vs_ref: delivered/s, node_cpu_vs_ref: server CPU per delivered message)")
	case "idle":
		fs.IntVar(&cfg.Conns, "conns", d.Conns, "connections to open and hold")
	case "login-storm":
		fs.IntVar(&cfg.Users, "users", d.Users, "distinct users")
		// 0, not d.Conns: the default follows --users.
		fs.IntVar(&cfg.Conns, "conns", 0, "logins per round, spread over the users as devices d0, d1, ... (default --users)")
	case "reconnect-storm":
		fs.IntVar(&cfg.Devices, "devices", d.Devices, "receiving devices that drop and resume")
		fs.Float64Var(&cfg.Rate, "rate", d.Rate, "total messages/s sent to them (default: one per device per second)")
		fs.DurationVar(&cfg.Offline, "offline", d.Offline, "how long they stay away while messages keep coming")
		fs.DurationVar(&cfg.AckDelay, "ack-delay", d.AckDelay, "receivers acknowledge pushes this long after the first")
	case "mix":
		pairsFlags()
		fs.IntVar(&cfg.Conns, "conns", d.Conns, "idle connections beside the pairs")
		fs.DurationVar(&cfg.ReconnectEvery, "reconnect-every", d.ReconnectEvery, "how often receivers drop and resume")
		fs.IntVar(&cfg.ReconnectBatch, "reconnect-batch", d.ReconnectBatch, "receivers that drop and resume each time")
	case "fanout":
		fs.IntVar(&cfg.GroupSize, "group-size", d.GroupSize, "members of each group, all online with one connection each")
		fs.IntVar(&cfg.Groups, "groups", d.Groups, "groups (disjoint members; a group's members share one client process)")
		fs.IntVar(&cfg.Senders, "senders", d.Senders, "members of each group who send")
		fs.Float64Var(&cfg.Rate, "rate", d.Rate, "open loop: total messages/s over all groups, latency measured from each message's scheduled time (default: closed loop)")
		fs.IntVar(&cfg.Inflight, "inflight", d.Inflight, "closed loop: unacknowledged sends per sender (pipelined)")
		fs.DurationVar(&cfg.AckDelay, "ack-delay", d.AckDelay, "members acknowledge pushes this long after the first unacknowledged one")
	case "media", "upload":
		cfg.MediaSize, cfg.ChunkSize = d.MediaSize, d.ChunkSize
		fs.Var(sizeFlag{&cfg.MediaSize}, "size", "`size` of each file: bytes, or with a unit (200KiB, 100MiB, 1GB)")
		fs.IntVar(&cfg.Streams, "streams", d.Streams, "files moved at once, each stream as its own user over its own HTTP connection")
		// 0, not d.Files: the default follows --streams.
		fs.IntVar(&cfg.Files, "files", 0, "files to upload, then download (default --streams: one per stream)")
		fs.Var(sizeFlag{&cfg.ChunkSize}, "chunk", "`size` of a tus PATCH")
		fs.BoolVar(&cfg.SimpleUpload, "simple", false, "upload each file in one POST /v1/media instead of with tus")
		fs.BoolVar(&cfg.Images, "images", false, "make every file a distinct JPEG of --size, which the node decodes for its thumbnail (default: random bytes, only stored)")
	}

	return &ffcli.Command{
		Name:       name,
		ShortUsage: "imbench " + name + " [flags]",
		ShortHelp:  help,
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix("IMBENCH")},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			cfg.Targets = targets
			cfg.NodeArgs = nodeArgs
			for _, p := range nodePIDs {
				pid, err := strconv.Atoi(p)
				if err != nil {
					return fmt.Errorf("--node-pid %q: %w", p, err)
				}
				cfg.NodePIDs = append(cfg.NodePIDs, pid)
			}
			if *secretFile != "" && cfg.Secret == "" {
				b, err := os.ReadFile(*secretFile)
				if err != nil {
					return err
				}
				cfg.Secret = strings.TrimSpace(string(b))
			}
			if cfg.Secret == "" {
				cfg.Secret = os.Getenv("ACTORIM_AUTH_SECRET") // as imnode reads it
			}
			if *adminFile != "" {
				b, err := os.ReadFile(*adminFile)
				if err != nil {
					return err
				}
				cfg.AdminSecret = strings.TrimSpace(string(b))
			} else {
				cfg.AdminSecret = os.Getenv("ACTORIM_ADMIN_SECRET")
			}
			if *sourceIPs != "" {
				ips, err := loadgen.ParseSourceIPs(*sourceIPs)
				if err != nil {
					return err
				}
				cfg.SourceIPs = ips
			}
			if !*quiet {
				cfg.Progress = stderr
			}
			rep, err := loadgen.Run(ctx, workload, cfg)
			if err != nil {
				return err
			}
			if *asJSON {
				err = rep.WriteJSON(stdout)
			} else {
				err = rep.WriteTable(stdout)
			}
			if err != nil {
				return err
			}
			if !rep.Passed {
				if *asJSON { // the table already ends with the summary
					fmt.Fprintln(stderr, rep.Summary)
				}
				return errViolated
			}
			return nil
		},
	}
}

// list is a flag that may be repeated or given a comma-separated list.
type list []string

// String implements flag.Value.
func (l *list) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: it appends each comma-separated item.
func (l *list) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// beforeSendFlag is --webhook-before-send: a delay, which turns the mode
// on (0s too: an immediate answer).
type beforeSendFlag struct{ c *loadgen.Config }

// String implements flag.Value.
func (f beforeSendFlag) String() string {
	if f.c == nil || !f.c.BeforeSend {
		return ""
	}
	return f.c.BeforeSendDelay.String()
}

// Set implements flag.Value.
func (f beforeSendFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("a delay such as 1ms, not %q", s)
	}
	f.c.BeforeSend, f.c.BeforeSendDelay = true, d
	return nil
}

// sizeFlag is a flag of a size in bytes, given with or without a unit.
type sizeFlag struct{ v *int64 }

// String implements flag.Value.
func (f sizeFlag) String() string {
	if f.v == nil {
		return ""
	}
	return loadgen.SizeString(*f.v)
}

// Set implements flag.Value.
func (f sizeFlag) Set(s string) error {
	n, err := loadgen.ParseSize(s)
	if err != nil {
		return err
	}
	*f.v = n
	return nil
}
