// Package nodeproc runs imnode as a child process, for the tests and
// benchmarks that need a node in a process of its own (one that can be
// killed, or whose CPU and memory are measured apart from the clients'). It
// builds the binary, starts it with its secrets in the environment (never on
// the command line, where ps shows them to every local user), waits until it
// is ready, stops or kills it, and checks its log for what must fail a run
// whatever the caller concluded: an actor that panicked, a process that
// panicked or failed in the runtime, an exit nobody asked for.
package nodeproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrSecretArg refuses a secret given as a flag: pass it in Config.AuthSecret
// or Config.AdminSecret (the environment) or as a *-file flag instead.
var ErrSecretArg = errors.New("nodeproc: a secret on the command line is visible to every local user")

// secretFlags are imnode's flags whose value is a secret.
var secretFlags = map[string]bool{
	"auth-secret": true, "admin-secret": true, "redis-password": true,
	"clickhouse-password": true, "consul-token": true,
}

// Build compiles actorim/cmd/imnode into dir and returns the binary's path.
// It runs the go tool, so the working directory must be inside the actorim
// module.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "imnode")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "actorim/cmd/imnode").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nodeproc: go build actorim/cmd/imnode: %v\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Config describes an imnode child.
type Config struct {
	// Bin is the imnode binary (see Build).
	Bin string
	// DataDir and Listen, when set, are passed as --data and --listen.
	// WaitReady polls http://Listen/readyz.
	DataDir, Listen string
	// Args are further arguments. Flags whose value is a secret are refused
	// (ErrSecretArg).
	Args []string
	// AuthSecret and AdminSecret, when set, reach the node as
	// $ACTORIM_AUTH_SECRET and $ACTORIM_ADMIN_SECRET.
	AuthSecret, AdminSecret string
	// Env holds further environment variables ("NAME=value") on top of this
	// process's.
	Env []string
	// LogFile, when set, receives the node's stdout and stderr (appended);
	// Check reads it.
	LogFile string
	// Output, when set, receives them too.
	Output io.Writer
}

// command returns the exec.Cmd for c, without its output wired.
func (c Config) command(ctx context.Context) (*exec.Cmd, error) {
	var args []string
	if c.DataDir != "" {
		args = append(args, "--data", c.DataDir)
	}
	if c.Listen != "" {
		args = append(args, "--listen", c.Listen)
	}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && secretFlags[name] {
			return nil, fmt.Errorf("%w: --%s", ErrSecretArg, name)
		}
	}
	args = append(args, c.Args...)
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	if c.AuthSecret != "" {
		cmd.Env = append(cmd.Env, "ACTORIM_AUTH_SECRET="+c.AuthSecret)
	}
	if c.AdminSecret != "" {
		cmd.Env = append(cmd.Env, "ACTORIM_ADMIN_SECRET="+c.AdminSecret)
	}
	return cmd, nil
}

// Run runs imnode to its end (a subcommand such as cluster-certs, or a node
// expected to refuse its configuration) and returns its combined output.
// ctx ending kills it.
func Run(ctx context.Context, c Config) ([]byte, error) {
	cmd, err := c.command(ctx)
	if err != nil {
		return nil, err
	}
	return cmd.CombinedOutput()
}

// Process is a running imnode child.
type Process struct {
	cmd     *exec.Cmd
	addr    string
	logFile string
	exited  chan struct{}
	// ended is set when the caller ends the process (Kill, Stop).
	ended atomic.Bool
	// selfExit is whether it exited before the caller ended it; written
	// before exited is closed.
	selfExit bool
}

// Start starts the node; it does not wait for it to be ready (WaitReady).
// The caller ends it with Kill or Stop.
func Start(c Config) (*Process, error) {
	cmd, err := c.command(context.Background())
	if err != nil {
		return nil, err
	}
	var logf *os.File
	var out []io.Writer
	if c.LogFile != "" {
		if logf, err = os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, err
		}
		out = append(out, logf)
	}
	if c.Output != nil {
		out = append(out, c.Output)
	}
	switch len(out) {
	case 1:
		cmd.Stdout, cmd.Stderr = out[0], out[0]
	case 2:
		w := io.MultiWriter(out...)
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		if logf != nil {
			_ = logf.Close()
		}
		return nil, fmt.Errorf("nodeproc: start %s: %w", c.Bin, err)
	}
	p := &Process{cmd: cmd, addr: c.Listen, logFile: c.LogFile, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.selfExit = !p.ended.Load()
		if logf != nil {
			_ = logf.Close()
		}
		close(p.exited)
	}()
	return p, nil
}

// WaitReady waits until the node answers GET /readyz with 200 on its Listen
// address. It fails when the process exits first or ctx ends.
func (p *Process) WaitReady(ctx context.Context) error {
	if p.addr == "" {
		return errors.New("nodeproc: WaitReady needs Config.Listen")
	}
	// http.DefaultClient's transport: a test suite that checks every answer
	// (e2e's docs/openapi.yaml check) sees these too.
	hc := &http.Client{Timeout: time.Second, Transport: http.DefaultClient.Transport}
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("nodeproc: imnode on %s exited before it was ready: %v%s", p.addr, p.cmd.ProcessState, p.seeLog())
		default:
		}
		if resp, err := hc.Get("http://" + p.addr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodeproc: imnode on %s not ready: %w%s", p.addr, ctx.Err(), p.seeLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Process) seeLog() string {
	if p.logFile == "" {
		return ""
	}
	return " (see its log " + p.logFile + ")"
}

// Addr is the node's Listen address.
func (p *Process) Addr() string { return p.addr }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Args is the node's command line, the binary first.
func (p *Process) Args() []string { return append([]string(nil), p.cmd.Args...) }

// LogFile is the file the node logs to ("" when none).
func (p *Process) LogFile() string { return p.logFile }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill kills the process with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	p.ended.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks the process to shut down (SIGTERM) and waits up to grace for it
// to exit; then it kills it and reports that it had to.
func (p *Process) Stop(grace time.Duration) error {
	p.ended.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("nodeproc: imnode on %s did not exit within %v of SIGTERM; killed", p.addr, grace)
}

// Check waits for the process to exit and reports what must fail a run:
// a problem in its log (LogProblem) or an exit before Kill or Stop.
func (p *Process) Check() error {
	<-p.exited
	if p.logFile != "" {
		if b, err := os.ReadFile(p.logFile); err == nil {
			if problem := LogProblem(string(b)); problem != "" {
				return fmt.Errorf("%s (see its log %s)", problem, p.logFile)
			}
		}
	}
	if p.selfExit {
		return fmt.Errorf("exited by itself: %v%s", p.cmd.ProcessState, p.seeLog())
	}
	return nil
}

// LogProblem names what in a node's log fails a run whatever the test
// concluded: an actor that panicked and was restarted by its supervisor, a
// panic that ended the process, or a fatal runtime error. "" when none.
func LogProblem(log string) string {
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
