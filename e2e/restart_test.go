package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"actorim/client"
	"actorim/protos/clientpb"
)

var (
	buildOnce sync.Once
	imnodeBin string
	buildErr  error
)

// buildImnode compiles cmd/imnode once per test run.
func buildImnode(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imnode-bin-*")
		if err != nil {
			buildErr = err
			return
		}
		imnodeBin = filepath.Join(dir, "imnode")
		out, err := exec.Command("go", "build", "-o", imnodeBin, "actorim/cmd/imnode").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return imnodeBin
}

// process is an imnode child process.
type process struct {
	cmd    *exec.Cmd
	addr   string
	log    *os.File
	exited chan struct{}
	// signaled is set when the test itself ends the process.
	signaled atomic.Bool
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startProcess(t *testing.T, dataDir, addr string, extra ...string) *process {
	t.Helper()
	p, err := launch(buildImnode(t), dataDir, addr, filepath.Join(t.TempDir(), "imnode.log"), extra...)
	if p != nil {
		t.Cleanup(func() {
			if err := p.stop(); err != nil {
				t.Errorf("imnode %s: %v", addr, err)
			}
			if t.Failed() || os.Getenv("E2E_NODE_LOGS") != "" {
				if b, err := os.ReadFile(p.log.Name()); err == nil {
					t.Logf("imnode log:\n%s", b)
				}
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch starts an imnode process logging to logPath and waits until it is
// ready. On a readiness failure it returns the process too, to be stopped.
func launch(bin, dataDir, addr, logPath string, extra ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--data", dataDir, "--listen", addr}, extra...)
	cmd := exec.Command(bin, args...)
	// Secrets by the environment: a command line shows in ps.
	cmd.Env = append(os.Environ(), "ACTORIM_AUTH_SECRET="+testSecret, "ACTORIM_ADMIN_SECRET="+testAdminSecret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, addr: addr, log: logf, exited: make(chan struct{})}
	go func() { _, _ = cmd.Process.Wait(); close(p.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, fmt.Errorf("imnode on %s not ready", addr)
}

// stop kills the process and reports whether it logged a panic or an
// actor restart, or had exited without being told to.
func (p *process) stop() error {
	died := !p.alive() && !p.signaled.Load()
	_ = p.cmd.Process.Kill()
	<-p.exited
	if b, err := os.ReadFile(p.log.Name()); err == nil {
		if problem := logProblem(string(b)); problem != "" {
			return fmt.Errorf("%s (see its log %s)", problem, p.log.Name())
		}
	}
	if died {
		return fmt.Errorf("exited by itself: %v (see its log %s)", p.cmd.ProcessState, p.log.Name())
	}
	return nil
}

// logProblem names what in a node's log fails a test run whatever the test
// concluded: an actor that panicked and was restarted by its supervisor, a
// panic that ended the process, or a fatal runtime error. "" when none.
func logProblem(log string) string {
	for _, p := range []struct{ marker, what string }{
		{"[ACTOR] Recovering", "an actor panicked and was restarted"},
		{"\npanic: ", "the process panicked"},
		{"\nfatal error: ", "the Go runtime failed"},
	} {
		if strings.Contains("\n"+log, p.marker) {
			return p.what
		}
	}
	return ""
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	p.signaled.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// terminate sends SIGTERM and waits for the process to exit.
func (p *process) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	p.signaled.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("imnode %s did not exit within %v of SIGTERM", p.addr, within)
	}
}

func (p *process) node() *testNode {
	tokens, _ := newTokens(testSecret)
	admin, _ := newTokens(testAdminSecret)
	return &testNode{ws: "ws://" + p.addr + "/ws", http: "http://" + p.addr, tokens: tokens, admin: admin}
}

// TestRestartAfterSIGKILL: senders run flat out; the node is killed with
// SIGKILL; restarted on the same data directory, every acked message is
// there, in both timelines, and sequence numbers continue without gap or
// repeat. Retries of acked messages are still recognised.
func TestRestartAfterSIGKILL(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, data, addr)
	n := p.node()
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")

	type acked struct {
		cmid string
		ack  *clientpb.SendAck
	}
	var mu sync.Mutex
	var acks []acked
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		d := n.connect(t, alice, fmt.Sprintf("dev%d", w), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ack, err := d.SendText(c, bob, id, id)
				cancel()
				if client.CodeOf(err) == clientpb.ErrorCode_ERR_RATE_LIMITED {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if err != nil {
					return // the node died under us: this send was never acked
				}
				mu.Lock()
				acks = append(acks, acked{id, ack})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill9(t)
	close(stop)
	wg.Wait()
	if len(acks) < 100 {
		t.Fatalf("only %d acked sends before the kill", len(acks))
	}
	t.Logf("%d sends acked before SIGKILL", len(acks))

	p2 := startProcess(t, data, addr)
	n2 := p2.node()

	// Alice's timeline: gapless, and every ack points at its message.
	a := n2.connect(t, alice, "check", nil)
	var timeline []*clientpb.Entry
	for after := uint64(0); ; {
		res, err := a.Sync(ctx(t), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		timeline = append(timeline, res.GetEntries()...)
		if !res.GetHasMore() {
			break
		}
		after = timeline[len(timeline)-1].GetSeq()
	}
	requireConsecutive(t, timeline, 1)
	bySeq := map[uint64]*clientpb.Entry{}
	for _, e := range timeline {
		bySeq[e.GetSeq()] = e
	}
	for _, x := range acks {
		e := bySeq[x.ack.GetSeq()]
		if e == nil || e.GetMessage().GetId() != x.ack.GetMsgId() || e.GetMessage().GetClientMsgId() != x.cmid {
			t.Fatalf("acked %s (seq %d, id %d) is not in alice's timeline after restart: %v", x.cmid, x.ack.GetSeq(), x.ack.GetMsgId(), e)
		}
	}

	// Bob's timeline holds each of them exactly once, in alice's order.
	b := n2.connect(t, bob, "phone", u64(0))
	got := b.collect(t, len(timeline), 20*time.Second)
	requireConsecutive(t, got, 1)
	seen := map[uint64]int{}
	for i, e := range got {
		seen[e.GetMessage().GetId()]++
		if e.GetMessage().GetId() != timeline[i].GetMessage().GetId() {
			t.Fatalf("bob's entry %d is message %d, alice's is %d", i, e.GetMessage().GetId(), timeline[i].GetMessage().GetId())
		}
	}
	for _, x := range acks {
		if seen[x.ack.GetMsgId()] != 1 {
			t.Fatalf("bob has message %d %d times", x.ack.GetMsgId(), seen[x.ack.GetMsgId()])
		}
	}

	// Sequences and ids continue; retries of acked sends stay deduplicated.
	next := a.send(t, bob, "after restart")
	if next.GetSeq() != uint64(len(timeline))+1 {
		t.Fatalf("first seq after restart %d, want %d", next.GetSeq(), len(timeline)+1)
	}
	for _, x := range acks {
		if next.GetMsgId() <= x.ack.GetMsgId() {
			t.Fatalf("message id %d reused or went backwards (had %d)", next.GetMsgId(), x.ack.GetMsgId())
		}
	}
	retry, err := a.SendText(ctx(t), bob, acks[0].cmid, acks[0].cmid)
	if err != nil || !retry.GetDuplicate() || retry.GetMsgId() != acks[0].ack.GetMsgId() {
		t.Fatalf("retry of %s after restart: %v, %v", acks[0].cmid, retry, err)
	}
	last := b.collect(t, 1, 5*time.Second)
	if last[0].GetSeq() != uint64(len(timeline))+1 {
		t.Fatalf("bob's next entry has seq %d", last[0].GetSeq())
	}
	b.quiet(t, 300*time.Millisecond)
}

// TestHarnessFailsOnPanicLogs: the harness's log check flags each kind of
// failure a node can log, and nothing in a clean log.
func TestHarnessFailsOnPanicLogs(t *testing.T) {
	clean := "time=... level=INFO msg=\"actorim node ready\"\ntime=... level=WARN msg=\"slow re-attach\" note=\"panic: in a value is fine\"\n"
	if p := logProblem(clean); p != "" {
		t.Errorf("clean log flagged: %s", p)
	}
	for _, bad := range []string{
		clean + "time=... level=ERROR msg=\"[ACTOR] Recovering\" self=... reason=\"runtime error: invalid memory address\"\n",
		clean + "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 7 [running]:\n",
		"fatal error: concurrent map writes\n",
	} {
		if logProblem(bad) == "" {
			t.Errorf("not flagged: %q", bad)
		}
	}
}
