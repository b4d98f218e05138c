package nodeproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEnv makes the test binary play imnode (see fakeNode), so that these
// tests need no build of the real one.
const fakeEnv = "NODEPROC_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeNode(mode))
	}
	os.Exit(m.Run())
}

// fakeNode serves /readyz on --listen and behaves as mode says: "serve"
// until SIGTERM, "stubborn" ignoring SIGTERM, "panic" logging a panic and
// exiting once ready, "exit" exiting before it is ready.
func fakeNode(mode string) int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	_ = fs.String("data", "", "")
	_ = fs.String("log-level", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	fmt.Printf("fake imnode: auth secret %q, admin secret %q\n", os.Getenv("ACTORIM_AUTH_SECRET"), os.Getenv("ACTORIM_ADMIN_SECRET"))
	if mode == "exit" {
		return 3
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
	go func() { _ = http.ListenAndServe(*listen, mux) }()
	switch mode {
	case "panic":
		time.Sleep(300 * time.Millisecond)
		fmt.Fprintln(os.Stderr, "panic: boom")
		return 2
	case "stubborn":
		for range term {
		}
	}
	<-term
	return 0
}

func fake(t *testing.T, mode string, args ...string) Config {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Bin: os.Args[0], DataDir: t.TempDir(), Listen: addr, Args: args,
		AuthSecret: "auth-0123", AdminSecret: "admin-4567", Env: []string{fakeEnv + "=" + mode},
		LogFile: filepath.Join(t.TempDir(), "imnode.log")}
}

func start(t *testing.T, c Config) *Process {
	t.Helper()
	p, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func ready(t *testing.T, p *Process) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.WaitReady(ctx)
}

// TestStartStop: ready, secrets in the environment and not in argv, a clean
// stop, and a clean check.
func TestStartStop(t *testing.T) {
	p := start(t, fake(t, "serve", "--log-level", "warn"))
	if err := ready(t, p); err != nil {
		t.Fatal(err)
	}
	args := p.Args()
	if !slices.Contains(args, "--log-level") || !slices.Contains(args, p.Addr()) || slices.ContainsFunc(args, func(a string) bool {
		return strings.Contains(a, "auth-0123") || strings.Contains(a, "admin-4567")
	}) {
		t.Fatalf("command line %q", args)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Alive() {
		t.Fatal("alive after Stop")
	}
	if err := p.Check(); err != nil {
		t.Fatalf("check after a clean stop: %v", err)
	}
	if b, _ := os.ReadFile(p.LogFile()); !strings.Contains(string(b), `auth secret "auth-0123", admin secret "admin-4567"`) {
		t.Fatalf("the secrets did not reach the environment; log:\n%s", b)
	}
}

func TestSecretArgRefused(t *testing.T) {
	for _, arg := range []string{"--auth-secret", "-admin-secret=x", "--redis-password", "--consul-token=t", "--clickhouse-password"} {
		if _, err := Start(fake(t, "serve", arg, "value")); !errors.Is(err, ErrSecretArg) {
			t.Errorf("%s: %v, want ErrSecretArg", arg, err)
		}
		if _, err := Run(context.Background(), fake(t, "serve", arg, "value")); !errors.Is(err, ErrSecretArg) {
			t.Errorf("Run %s: %v, want ErrSecretArg", arg, err)
		}
	}
}

// TestStopKillsStubborn: a node that ignores SIGTERM is killed after the
// grace period, and Stop says so.
func TestStopKillsStubborn(t *testing.T) {
	p := start(t, fake(t, "stubborn"))
	if err := ready(t, p); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(300 * time.Millisecond); err == nil || p.Alive() {
		t.Fatalf("Stop of a node ignoring SIGTERM: %v, alive %v", err, p.Alive())
	}
	if err := p.Check(); err != nil {
		t.Fatalf("a node the caller ended is no failure: %v", err)
	}
}

// TestCheckFailsOnSelfExitAndPanic: a node that panics after it was ready
// fails the check (its log and its exit); one that exits before it is ready
// fails WaitReady at once, and the check.
func TestCheckFailsOnSelfExitAndPanic(t *testing.T) {
	p := start(t, fake(t, "panic"))
	if err := ready(t, p); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "the process panicked") {
		t.Fatalf("check: %v", err)
	}

	p = start(t, fake(t, "exit"))
	t0 := time.Now()
	if err := ready(t, p); err == nil || !strings.Contains(err.Error(), "exited before it was ready") || time.Since(t0) > 5*time.Second {
		t.Fatalf("WaitReady of a node that exits: %v after %v", err, time.Since(t0))
	}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "exited by itself") {
		t.Fatalf("check: %v", err)
	}
}

func TestKill(t *testing.T) {
	p := start(t, fake(t, "stubborn"))
	if err := ready(t, p); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if p.Alive() {
		t.Fatal("alive after Kill")
	}
	if err := p.Check(); err != nil {
		t.Fatalf("a node the caller killed is no failure: %v", err)
	}
}

func TestRun(t *testing.T) {
	c := fake(t, "exit")
	c.LogFile = ""
	out, err := Run(context.Background(), c)
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), `auth secret "auth-0123"`) {
		t.Fatalf("Run: %v\n%s", err, out)
	}
}

// TestLogProblem: the log check flags each kind of failure a node can log,
// and nothing in a clean log.
func TestLogProblem(t *testing.T) {
	clean := "time=... level=INFO msg=\"actorim node ready\"\ntime=... level=WARN msg=\"slow re-attach\" note=\"panic: in a value is fine\"\n"
	if p := LogProblem(clean); p != "" {
		t.Errorf("clean log flagged: %s", p)
	}
	for _, bad := range []string{
		clean + "time=... level=ERROR msg=\"[ACTOR] Recovering\" self=... reason=\"runtime error: invalid memory address\"\n",
		clean + "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 7 [running]:\n",
		"fatal error: concurrent map writes\n",
	} {
		if LogProblem(bad) == "" {
			t.Errorf("not flagged: %q", bad)
		}
	}
}
