package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// spawned is an imnode child process on a fresh data directory.
type spawned struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	secret string
	exited chan struct{}
}

// spawnNode starts a standalone imnode (bin, or one built from the module in
// the working directory) with the send rate limit lifted, as bench/ does, so
// that the node and not its limiter is measured.
func spawnNode(ctx context.Context, bin string, extra []string, stderr io.Writer) (*spawned, error) {
	dir, err := os.MkdirTemp("", "imbench-node-*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*spawned, error) { _ = os.RemoveAll(dir); return nil, err }
	if bin == "" {
		bin = filepath.Join(dir, "imnode")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "actorim/cmd/imnode").CombinedOutput()
		if err != nil {
			return fail(fmt.Errorf("loadgen: build imnode (run imbench in the actorim module, or give --imnode): %v\n%s", err, out))
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	args := append([]string{"--data", filepath.Join(dir, "data"), "--listen", addr,
		"--send-rate", "1000000", "--send-burst", "1000000", "--request-rate", "1000000", "--request-burst", "1000000",
		"--write-budget", "1099511627776", "--write-burst", "1099511627776", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	// The secret goes by the environment: a command line shows in ps.
	cmd.Env = append(os.Environ(), "ACTORIM_AUTH_SECRET="+secret)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("loadgen: start imnode: %w", err))
	}
	s := &spawned{cmd: cmd, dir: dir, addr: addr, secret: secret, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-s.exited:
			s.stop()
			return nil, errors.New("loadgen: imnode exited before it was ready")
		default:
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.stop()
	return nil, errors.New("loadgen: imnode did not become ready in 30s")
}

// stop interrupts the node, kills it if it takes long, and removes its data.
func (s *spawned) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

// NodeSample is the nodes' resource use at one moment, summed over nodes.
type NodeSample struct {
	CPU float64 `json:"cpu_s"` // CPU-seconds used since start
	RSS int64   `json:"rss"`   // resident set, bytes
	OK  bool    `json:"ok"`
}

// probe reads the nodes' CPU time and RSS: from /proc/<pid>/stat for local
// pids, or from each node's Prometheus /metrics (process collector).
type probe struct {
	pids    []int
	metrics []string
	http    *http.Client
}

func (p *probe) source() string {
	switch {
	case len(p.pids) > 0:
		return fmt.Sprintf("/proc of pid %v", p.pids)
	case len(p.metrics) > 0:
		return strings.Join(p.metrics, ", ")
	}
	return "none"
}

func (p *probe) sample() NodeSample {
	var s NodeSample
	for _, pid := range p.pids {
		cpu, rss, err := procUsage(strconv.Itoa(pid))
		if err != nil {
			return NodeSample{}
		}
		s.CPU, s.RSS = s.CPU+cpu, s.RSS+rss
	}
	for _, u := range p.metrics {
		cpu, rss, err := p.scrape(u)
		if err != nil {
			return NodeSample{}
		}
		s.CPU, s.RSS = s.CPU+cpu, s.RSS+rss
	}
	s.OK = len(p.pids)+len(p.metrics) > 0
	return s
}

func (p *probe) scrape(u string) (cpu float64, rss int64, err error) {
	resp, err := p.http.Get(u)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || (name != "process_cpu_seconds_total" && name != "process_resident_memory_bytes") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, 0, err
		}
		if name == "process_cpu_seconds_total" {
			cpu = v
		} else {
			rss = int64(v)
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("%s: no process metrics", u)
	}
	return cpu, rss, sc.Err()
}

// metricsURL derives a node's /metrics address from its WebSocket URL.
func metricsURL(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("loadgen: target %q is not a ws:// or wss:// URL", target)
	}
	u.Path, u.RawQuery = "/metrics", ""
	return u.String(), nil
}

// procUsage returns the CPU time (user+system, seconds) and RSS of process
// pid ("self" for this one), read from /proc.
func procUsage(pid string) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The fields after the command name, which is parenthesised and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("loadgen: /proc/%s/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return float64(utime+stime) / ticks, pages * int64(os.Getpagesize()), nil
}
