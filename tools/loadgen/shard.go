package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// spec is what a client process is told to do: its shard of a workload.
type spec struct {
	Workload      string `json:"workload"`
	Config        Config `json:"config"`
	Shard, Shards int
}

// message is one line between a worker and the coordinator. A worker sends
// barriers, progress and finally a result or an error; the coordinator
// answers each barrier with "go" once every worker has reached it.
type message struct {
	Barrier  string           `json:"barrier,omitempty"`
	Progress map[string]int64 `json:"progress,omitempty"`
	Result   *part            `json:"result,omitempty"`
	Err      string           `json:"error,omitempty"`
}

// transport carries a worker's messages; wait blocks until the coordinator
// releases the barrier just sent.
type transport interface {
	send(m message) error
	wait(ctx context.Context) error
}

// env is what a workload sees of its process.
type env struct {
	cfg           *Config
	shard, shards int
	st            *stats
	check         *Checker
	dial          *dialer
	tr            transport
	at            map[string]sample
}

// span is this process's share [lo, hi) of n items.
func (e *env) span(n int) (lo, hi int) { return n * e.shard / e.shards, n * (e.shard + 1) / e.shards }

// barrier waits until every process has reached name, then samples this
// process's CPU, RSS and counts.
func (e *env) barrier(ctx context.Context, name string) error {
	if err := e.tr.send(message{Barrier: name}); err != nil {
		return err
	}
	if err := e.tr.wait(ctx); err != nil {
		return err
	}
	cpu, rss, _ := procUsage("self")
	e.at[name] = sample{CPU: cpu, RSS: rss, Counts: e.st.snapshot()}
	return nil
}

// checkerRotate is how often the checker forgets old deliveries.
const checkerRotate = 15 * time.Second

// runShard runs one process's share of a workload and sends its result.
func runShard(ctx context.Context, sp spec, tr transport) error {
	w := workloads[sp.Workload]
	if w == nil {
		return fmt.Errorf("loadgen: unknown workload %q", sp.Workload)
	}
	st := newStats()
	d, err := newDialer(&sp.Config, st)
	if err != nil {
		return err
	}
	e := &env{cfg: &sp.Config, shard: sp.Shard, shards: sp.Shards, st: st, check: NewChecker(sp.Config.Examples),
		dial: d, tr: tr, at: map[string]sample{}}

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick, rotate := time.NewTicker(time.Second), time.NewTicker(checkerRotate)
		defer tick.Stop()
		defer rotate.Stop()
		for {
			select {
			case <-stop:
				return
			case <-rotate.C:
				e.check.Rotate()
			case <-tick.C:
				p := st.snapshot()
				p["violations"] = e.check.Violations()
				_ = tr.send(message{Progress: p})
			}
		}
	}()
	err = w.run(ctx, e)
	close(stop)
	bg.Wait()
	if err != nil {
		_ = tr.send(message{Err: err.Error()})
		return err
	}
	p, err := st.part(e.check.Result(), e.at)
	if err != nil {
		_ = tr.send(message{Err: err.Error()})
		return err
	}
	return tr.send(message{Result: p})
}

// shardEvent is a message from shard i (err: the shard failed).
type shardEvent struct {
	i   int
	m   message
	err error
}

// coordinate runs the processes of a run, releases their barriers, samples
// the nodes at each and prints progress; it returns their results.
func coordinate(ctx context.Context, name string, cfg *Config, procs int, pb *probe) ([]*part, map[string]Mark, error) {
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan shardEvent, 16*procs)
	release := make([]func() error, procs)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // on an early return, stop the others
	for i := range procs {
		sp := spec{Workload: name, Config: *cfg, Shard: i, Shards: procs}
		if procs == 1 {
			tr := &localTransport{i: i, events: events, release: make(chan struct{}, 1), done: ctx.Done()}
			release[i] = func() error { tr.release <- struct{}{}; return nil }
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = runShard(ctx, sp, tr) // a failure arrives as a message
			}()
			continue
		}
		rel, err := startWorker(ctx, cfg, sp, events, &wg)
		if err != nil {
			return nil, nil, err
		}
		release[i] = rel
	}

	prog := newProgress(cfg.Progress, name)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	arrived := map[string]int{}
	marks := map[string]Mark{}
	latest := make([]map[string]int64, procs)
	parts := make([]*part, procs)
	for done := 0; done < procs; {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-tick.C:
			prog.print(latest)
		case ev := <-events:
			switch m := ev.m; {
			case ev.err != nil:
				return nil, nil, fmt.Errorf("client process %d: %w", ev.i, ev.err)
			case m.Err != "":
				return nil, nil, fmt.Errorf("client process %d: %s", ev.i, m.Err)
			case m.Result != nil:
				parts[ev.i] = m.Result
				done++
			case m.Progress != nil:
				latest[ev.i] = m.Progress
			case m.Barrier != "":
				if arrived[m.Barrier]++; arrived[m.Barrier] < procs {
					continue
				}
				marks[m.Barrier] = Mark{At: time.Now(), Node: pb.sample()}
				prog.phase = m.Barrier
				for _, rel := range release {
					if err := rel(); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	prog.done()
	return parts, marks, nil
}

// localTransport connects a shard running in this process.
type localTransport struct {
	i       int
	events  chan<- shardEvent
	release chan struct{}
	done    <-chan struct{} // the coordinator stopped listening
}

func (t *localTransport) send(m message) error {
	select {
	case t.events <- shardEvent{i: t.i, m: m}:
		return nil
	case <-t.done:
		return context.Canceled
	}
}

func (t *localTransport) wait(ctx context.Context) error {
	select {
	case <-t.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startWorker starts a worker process for sp; its messages arrive on events.
// The returned function releases its current barrier.
func startWorker(ctx context.Context, cfg *Config, sp spec, events chan<- shardEvent, wg *sync.WaitGroup) (func() error, error) {
	argv := cfg.WorkerCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{exe}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start worker: %w", err)
	}
	if err := json.NewEncoder(stdin).Encode(sp); err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		finished := false
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = message{Err: fmt.Sprintf("bad message from worker: %v", err)}
			}
			finished = finished || m.Result != nil || m.Err != ""
			select {
			case events <- shardEvent{i: sp.Shard, m: m}:
			case <-ctx.Done():
			}
		}
		err := cmd.Wait()
		if !finished {
			select {
			case events <- shardEvent{i: sp.Shard, err: fmt.Errorf("worker exited without a result: %v", err)}:
			case <-ctx.Done():
			}
		}
	}()
	return func() error { _, err := io.WriteString(stdin, "go\n"); return err }, nil
}

// stdioTransport is a worker's side: messages as JSON lines on stdout,
// releases as lines on stdin.
type stdioTransport struct {
	mu  sync.Mutex
	enc *json.Encoder
	in  *bufio.Reader
}

func (t *stdioTransport) send(m message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.enc.Encode(m)
}

func (t *stdioTransport) wait(ctx context.Context) error {
	line, err := t.in.ReadString('\n')
	if err != nil {
		return errors.New("loadgen: coordinator went away")
	}
	if line != "go\n" {
		return fmt.Errorf("loadgen: unexpected %q from the coordinator", line)
	}
	return ctx.Err()
}

// WorkerMain runs a worker process: it reads its spec from stdin, runs its
// shard and reports on stdout. It returns the process's exit status.
func WorkerMain(ctx context.Context) int {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	var sp spec
	if err == nil {
		err = json.Unmarshal(line, &sp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imbench worker: reading spec:", err)
		return 2
	}
	if err := runShard(ctx, sp, &stdioTransport{enc: json.NewEncoder(os.Stdout), in: in}); err != nil {
		fmt.Fprintf(os.Stderr, "imbench worker %d: %v\n", sp.Shard, err)
		return 1
	}
	return 0
}
