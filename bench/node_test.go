package bench

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// node is an imnode child process.
type node struct {
	cmd  *exec.Cmd
	addr string
}

// startNode builds imnode and runs it standalone on a fresh data directory,
// with the send rate limit lifted so that the node, not the limiter, is measured.
func startNode(b *testing.B) *node {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "imnode")
	if out, err := exec.Command("go", "build", "-o", bin, "actorim/cmd/imnode").CombinedOutput(); err != nil {
		b.Fatalf("build imnode: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "--data", filepath.Join(dir, "data"), "--listen", addr,
		"--send-rate", "1000000", "--send-burst", "1000000", "--request-rate", "1000000", "--request-burst", "1000000",
		"--write-budget", "1099511627776", "--write-burst", "1099511627776", "--log-level", "warn", "--pprof")
	cmd.Env = append(os.Environ(), "ACTORIM_AUTH_SECRET="+secret) // not in argv, where ps shows it
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if os.Getenv("BENCH_VERBOSE") != "" {
					b.Logf("imnode at %s (pid %d)", addr, cmd.Process.Pid)
				}
				return &node{cmd: cmd, addr: addr}
			}
		}
	}
	b.Fatal("imnode did not become ready")
	return nil
}

func (n *node) usage() (time.Duration, int64) { return procUsage(strconv.Itoa(n.cmd.Process.Pid)) }
