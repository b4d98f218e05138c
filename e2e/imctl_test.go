package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// TestImctlSession drives the imctl binary the way a person or a script
// would: two users with separate profiles register, log in, and chat, one
// process listening while another sends; then history, locally minted tokens,
// provisioning, and a refused send.
func TestImctlSession(t *testing.T) {
	bin := buildImctl(t)
	alice, bob := freshID("alice"), freshID("bob")
	a, b := newImctl(t, bin), newImctl(t, bin)

	a.ok("register", alice, "--password", "pw-"+alice)
	b.ok("register", bob, "--password", "pw-"+bob)
	a.ok("login", alice, "--password", "pw-"+alice)
	var login struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	}
	b.okJSON(&login, "login", bob, "--password", "pw-"+bob, "--json")
	if login.UserID != bob || !strings.HasPrefix(login.DeviceID, "imctl-") {
		t.Fatalf("login printed %+v", login)
	}
	profile := filepath.Join(b.home, bob+".json")
	if st, err := os.Stat(profile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("profile %s: %v, mode %v", profile, st.Mode(), err)
	}

	// Bob listens in the background; with no last seq saved it starts at the
	// end of his timeline, so alice sends once it says it is listening.
	listener := b.start("--as", bob, "listen", "--json", "--count", "2")
	listener.waitStderr(t, "listening", 10*time.Second)

	if out := a.ok("--as", alice, "send", bob, "hello", "bob"); !strings.Contains(out, "client msg id imctl-") {
		t.Fatalf("send printed %q", out)
	}
	ack := &clientpb.SendAck{}
	a.okProto(ack, "--as", alice, "send", bob, "--custom", "location", "--data", `{"lat":59.3}`, "--json")
	if ack.GetConversationId() != ids.Private(alice, bob) || ack.GetSeq() != 2 {
		t.Fatalf("custom send ack %v", ack)
	}

	if err := listener.wait(); err != nil {
		t.Fatalf("listen: %v\nstderr:\n%s", err, listener.stderr.String())
	}
	var got []*clientpb.Entry
	for _, line := range strings.Split(strings.TrimSpace(listener.stdout.String()), "\n") {
		e := &clientpb.Entry{}
		if err := wire.UnmarshalJSON([]byte(line), e); err != nil {
			t.Fatalf("listen printed %q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].GetMessage().GetFrom() != alice ||
		got[0].GetMessage().GetContent().GetText() != "hello bob" ||
		got[1].GetMessage().GetContent().GetCustom().GetJson() != `{"lat":59.3}` {
		t.Fatalf("listen printed %v", got)
	}
	requireConsecutive(t, got, 1)
	var saved struct {
		LastSeq uint64 `json:"last_seq"`
	}
	readJSONFile(t, profile, &saved)
	if saved.LastSeq != 2 {
		t.Fatalf("profile last seq %d after listening, want 2", saved.LastSeq)
	}

	// History, newest first, by peer and by conversation id.
	hist := &clientpb.HistoryResult{}
	b.okProto(hist, "--as", bob, "history", "--with", alice, "--json")
	if es := hist.GetEntries(); len(es) != 2 || es[0].GetMessage().GetContent().GetCustom().GetType() != "location" ||
		es[1].GetMessage().GetContent().GetText() != "hello bob" {
		t.Fatalf("history %v", hist)
	}
	if out := a.ok("--as", alice, "history", ids.Private(alice, bob)); !strings.Contains(out, alice+" -> "+bob+": hello bob") {
		t.Fatalf("history printed %q", out)
	}

	// An application server's way in: provision carol, mint her a token,
	// and she sends with it.
	secretFile := filepath.Join(t.TempDir(), "auth.secret")
	adminFile := filepath.Join(t.TempDir(), "admin.secret")
	for f, s := range map[string]string{secretFile: testSecret, adminFile: testAdminSecret} {
		if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	carol := freshID("carol")
	c := newImctl(t, bin)
	c.ok("provision", carol, "--admin-secret-file", adminFile)
	var minted struct {
		Token string `json:"token"`
		Admin bool   `json:"admin"`
	}
	c.okJSON(&minted, "token", carol, "--secret-file", secretFile, "--save", "--json")
	if claims, err := shared.tokens.Verify(minted.Token); err != nil || claims.UserID != carol || claims.Admin {
		t.Fatalf("minted token: %+v, %v", claims, err)
	}
	c.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	if tok := strings.TrimSpace(c.ok("token", carol, "--admin", "--ttl", "1m")); tok == "" {
		t.Fatal("token printed nothing")
	} else if claims, err := shared.admin.Verify(tok); err != nil || !claims.Admin {
		t.Fatalf("admin token: %+v, %v", claims, err)
	}
	c.ok("--as", carol, "send", alice, "hi", "from", "carol")

	// A refused send: exit 1 and the server's code on stderr.
	stdout, stderr, err := a.run("--as", alice, "send", freshID("nobody"), "hello?")
	if code := exitCode(err); code != 1 || !strings.Contains(stderr, "ERR_UNKNOWN_RECIPIENT") || stdout != "" {
		t.Fatalf("send to an unknown user: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// buildImctl compiles cmd/imctl for the test.
func buildImctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "imctl")
	if out, err := exec.Command("go", "build", "-o", bin, "actorim/cmd/imctl").CombinedOutput(); err != nil {
		t.Fatalf("go build imctl: %v\n%s", err, out)
	}
	return bin
}

// freshID returns a user id unique in the run, as newUser does.
func freshID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
}

// imctlCLI runs imctl against the shared node with its own profile directory.
type imctlCLI struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

func newImctl(t *testing.T, bin string) *imctlCLI {
	return &imctlCLI{t: t, bin: bin, home: t.TempDir()}
}

func (c *imctlCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--server", specProxy(c.t), "--home", c.home}, args...)...)
	cmd.Env = append([]string{"HOME=" + c.home}, c.env...) // nothing from the developer's IMCTL_*
	return cmd
}

func (c *imctlCLI) run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := c.command(ctx(c.t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// ok runs imctl, requires success, and returns its stdout.
func (c *imctlCLI) ok(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("imctl %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

func (c *imctlCLI) okJSON(v any, args ...string) {
	c.t.Helper()
	if err := json.Unmarshal([]byte(c.ok(args...)), v); err != nil {
		c.t.Fatalf("imctl %s: %v", strings.Join(args, " "), err)
	}
}

func (c *imctlCLI) okProto(m proto.Message, args ...string) {
	c.t.Helper()
	if err := wire.UnmarshalJSON([]byte(c.ok(args...)), m); err != nil {
		c.t.Fatalf("imctl %s: %v", strings.Join(args, " "), err)
	}
}

// background is an imctl process running alongside the test.
type background struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr watchedBuffer
	done   chan error
}

func (c *imctlCLI) start(args ...string) *background {
	c.t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	b := &background{cmd: c.command(cctx, args...), done: make(chan error, 1)}
	b.stderr.changed = make(chan struct{}, 1)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	c.t.Cleanup(func() { _ = b.cmd.Process.Kill(); <-b.done; b.done <- nil })
	return b
}

// waitStderr waits until the process has written s to stderr.
func (b *background) waitStderr(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(b.stderr.String(), s) {
		select {
		case <-b.stderr.changed:
		case err := <-b.done:
			b.done <- err
			t.Fatalf("exited (%v) before printing %q; stderr:\n%s", err, s, b.stderr.String())
		case <-deadline:
			t.Fatalf("no %q on stderr within %v; stderr:\n%s", s, within, b.stderr.String())
		}
	}
}

// wait returns the process's exit error; the buffers are complete after it.
func (b *background) wait() error {
	err := <-b.done
	b.done <- err
	return err
}

// watchedBuffer is a buffer safe for a writer and a reader that is told of writes.
type watchedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
