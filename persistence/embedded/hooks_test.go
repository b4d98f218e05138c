package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"

	"actorim/persistence"
)

// hookCrashDirEnv names the store directory for the child process of
// TestHookKillRecovery.
const hookCrashDirEnv = "ACTORIM_EMBEDDED_HOOK_CRASH_DIR"

// TestHookKillRecovery enqueues from a child process, SIGKILLs it
// mid-stream and checks that every item whose EnqueueHooks returned is
// queued after a restart.
func TestHookKillRecovery(t *testing.T) {
	if dir := os.Getenv(hookCrashDirEnv); dir != "" {
		hookCrashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHookKillRecovery$")
	cmd.Env = append(os.Environ(), hookCrashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for len(acked) < 2000 && sc.Scan() {
		acked = append(acked, sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("child acknowledged only %d items", len(acked))
	}
	s := openTest(t, dir, Options{}, hooks{})
	// Every acknowledged id is queued: enqueueing it again queues nothing.
	for _, id := range acked {
		n, err := s.EnqueueHooks(context.Background(), persistence.HookItem{ID: id, App: "default"})
		if err != nil || n != 0 {
			t.Fatalf("acknowledged %s lost after the kill (EnqueueHooks = %d, %v)", id, n, err)
		}
	}
	st, err := s.HookStats(context.Background(), 0)
	if err != nil || st.Queued < int64(len(acked)) {
		t.Fatalf("stats %+v, %v; %d acknowledged", st, err, len(acked))
	}
}

// hookCrashChild enqueues until it is killed, printing each acknowledged id.
func hookCrashChild(dir string) {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	acked := make(chan string, 64)
	var next atomic.Uint64
	for range 16 {
		go func() {
			for {
				id := "msg-default-" + strconv.FormatUint(next.Add(1), 10)
				if _, err := s.EnqueueHooks(context.Background(), persistence.HookItem{ID: id, App: "default", Event: "message.stored", Payload: []byte("{}")}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				acked <- id
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for id := range acked {
		fmt.Fprintln(w, id)
		_ = w.Flush()
	}
}
