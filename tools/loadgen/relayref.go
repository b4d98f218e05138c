package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"actorim/internal/nodeproc"
	"actorim/tools/relay"
)

// The reference relay mode (Config.VsRelay): the workload runs first
// against the bundled minimal relay (package relay: no storage, its acks
// mean only "relayed"), spawned as a process of its own whose CPU and RSS
// are read from /proc like a spawned node's, and then against actorim (a
// spawned node or the targets). The report is actorim's, with the relay's
// beside it (Reference) and the ratios in Figures: vs_ref (delivered
// messages/s over the relay's) and node_cpu_vs_ref (server CPU per
// delivered message over the relay's).

// RelayEnv is set in the environment of a relay child process: a binary
// that spawns the relay (Config.VsRelay) must call RelayMain first thing
// when it is set, as it calls WorkerMain for WorkerEnv.
const RelayEnv = "IMBENCH_RELAY"

// IsRelay reports whether this process was started as the reference relay.
func IsRelay() bool { return os.Getenv(RelayEnv) != "" }

// RelayMain serves the reference relay on --listen ADDR (from args) until
// ctx ends; it returns the exit status.
func RelayMain(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "`address` to serve the relay's WebSocket (/ws) on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := relay.New().ListenAndServe(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "imbench relay:", err)
		return 2
	}
	return 0
}

// spawnRelay starts the relay child (argv, default this executable, with
// RelayEnv set) on a free loopback port and waits until it answers.
func spawnRelay(ctx context.Context, argv []string) (*nodeproc.Process, error) {
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{exe}
	}
	addr, err := nodeproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	// nodeproc passes --listen addr, which RelayMain reads.
	p, err := nodeproc.Start(nodeproc.Config{Bin: argv[0], Args: argv[1:], Listen: addr, Env: []string{RelayEnv + "=1"}, Output: os.Stderr})
	if err != nil {
		return nil, fmt.Errorf("loadgen: start the relay: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(rctx); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, fmt.Errorf("loadgen: relay: %w", err)
	}
	return p, nil
}

// runVsRelay runs the workload against a fresh relay, then against
// actorim, and returns actorim's report with the relay's beside it.
func runVsRelay(ctx context.Context, name string, w *workload, cfg Config) (*Report, error) {
	if name != "pairs" {
		return nil, fmt.Errorf("loadgen: --vs-relay works with pairs, not %s", name)
	}
	if cfg.BeforeSend {
		return nil, errors.New("loadgen: --vs-relay and --webhook-before-send each bring their own reference: give one")
	}
	if !cfg.Spawn && len(cfg.Targets) == 0 {
		return nil, errors.New("loadgen: no target: give --target URL or --spawn")
	}
	p, err := spawnRelay(ctx, cfg.RelayCommand)
	if err != nil {
		return nil, err
	}
	rc := cfg
	rc.Spawn, rc.App, rc.NodeArgs = false, "", nil
	rc.Targets, rc.NodePIDs = []string{"ws://" + p.Addr() + "/ws"}, []int{p.Pid()}
	rc.Secret = randomSecret() // tokens as for the node; the relay reads their sub unverified
	progressf(cfg.Progress, "reference: the bundled relay on %s (pid %d)\n", p.Addr(), p.Pid())
	ref, err := runOn(ctx, name, w, rc, nil)
	_ = p.Stop(10 * time.Second) // before actorim's run, so it does not share the CPU
	if err != nil {
		return nil, fmt.Errorf("relay reference: %w", err)
	}
	ref.Setup += "; against the bundled reference relay (tools/relay: no storage, a SendAck means only relayed)"
	progressf(cfg.Progress, "actorim\n")
	r, err := runOn(ctx, name, w, cfg, nil)
	if err != nil {
		return nil, err
	}
	r.Setup += "; after the same run against the bundled reference relay (reference, vs_ref)"
	compareWithRef(r, ref, "relay", "actorim")
	return r, nil
}

// compareWithRef puts ref beside r: its figures (ref_*), the ratios of r's
// to them (vs_ref: delivered/s; node_cpu_vs_ref: node CPU per delivered
// message) and both verdicts, labelled refName and name in the summary.
func compareWithRef(r, ref *Report, refName, name string) {
	r.Reference = ref
	r.Figures["ref_delivered_per_s"] = ref.Window.Throughput
	r.Figures["ref_node_cpu_s_per_million"] = ref.Node.CPUPerMillion
	r.Figures["ref_client_cpu_s_per_million"] = ref.Client.CPUPerMillion
	if ref.Window.Throughput > 0 {
		r.Figures["vs_ref"] = round(r.Window.Throughput/ref.Window.Throughput, 3)
	}
	if ref.Node.CPUPerMillion > 0 {
		r.Figures["node_cpu_vs_ref"] = round(r.Node.CPUPerMillion/ref.Node.CPUPerMillion, 3)
	}
	r.Passed = r.Passed && ref.Passed
	r.Summary = refName + " " + ref.Summary + "; " + name + " " + r.Summary
}
