package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"actorim/internal/nodeproc"
)

var (
	buildOnce sync.Once
	imnodeDir string // holds the binary; TestMain removes it
	imnodeBin string
	buildErr  error
)

// imnodeBinary compiles cmd/imnode once per test run.
func imnodeBinary() (string, error) {
	buildOnce.Do(func() {
		if imnodeDir, buildErr = os.MkdirTemp("", "imnode-bin-*"); buildErr == nil {
			imnodeBin, buildErr = nodeproc.Build(context.Background(), imnodeDir)
		}
	})
	return imnodeBin, buildErr
}

// buildImnode is imnodeBinary for a test.
func buildImnode(t *testing.T) string {
	t.Helper()
	bin, err := imnodeBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// process is an imnode child process, with the test's secrets.
type process struct{ *nodeproc.Process }

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := nodeproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startProcess starts an imnode process private to the test; the test fails
// if the node logs a panic or exits by itself (see stop).
func startProcess(t *testing.T, dataDir, addr string, extra ...string) *process {
	t.Helper()
	p, err := launch(buildImnode(t), dataDir, addr, filepath.Join(t.TempDir(), "imnode.log"), extra...)
	if p != nil {
		t.Cleanup(func() {
			if err := p.stop(); err != nil {
				t.Errorf("imnode %s: %v", addr, err)
			}
			if t.Failed() || os.Getenv("E2E_NODE_LOGS") != "" {
				if b, err := os.ReadFile(p.LogFile()); err == nil {
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
	np, err := nodeproc.Start(nodeproc.Config{Bin: bin, DataDir: dataDir, Listen: addr, Args: extra,
		AuthSecret: testSecret, AdminSecret: testAdminSecret, LogFile: logPath})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return &process{np}, np.WaitReady(ctx)
}

// stop kills the process and reports whether it logged a panic or an
// actor restart, or had exited without being told to.
func (p *process) stop() error {
	p.Kill()
	return p.Check()
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	p.Kill()
}

// terminate sends SIGTERM and waits for the process to exit.
func (p *process) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.Stop(within); err != nil {
		t.Fatal(err)
	}
}

func (p *process) node() *testNode {
	tokens, _ := newTokens(testSecret)
	admin, _ := newTokens(testAdminSecret)
	return &testNode{ws: "ws://" + p.Addr() + "/ws", http: "http://" + p.Addr(), tokens: tokens, admin: admin}
}

// runImnode runs imnode to its end (a subcommand, or a node expected to
// refuse its configuration) with the test's auth secret, and returns its
// output.
func runImnode(ctx context.Context, t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	return nodeproc.Run(ctx, nodeproc.Config{Bin: buildImnode(t), Args: args, AuthSecret: testSecret})
}
