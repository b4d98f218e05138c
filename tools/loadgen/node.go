package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"actorim/internal/nodeproc"
)

// spawned is an imnode child process on a fresh data directory.
type spawned struct {
	*nodeproc.Process
	dir    string
	secret string
	// adminSecret signs admin tokens for the node's admin API.
	adminSecret string
}

// spawnNode starts a standalone imnode (bin, or one built from the module in
// the working directory) with its rate limits and write budget lifted, so
// that the node and not its limiters is measured.
func spawnNode(ctx context.Context, bin string, extra []string, stderr io.Writer) (*spawned, error) {
	dir, err := os.MkdirTemp("", "imbench-node-*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*spawned, error) { _ = os.RemoveAll(dir); return nil, err }
	if bin == "" {
		if bin, err = nodeproc.Build(ctx, dir); err != nil {
			return fail(fmt.Errorf("loadgen: build imnode (run imbench in the actorim module, or give --imnode): %w", err))
		}
	}
	addr, err := nodeproc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	secret, adminSecret := randomSecret(), randomSecret()
	args := append([]string{"--send-rate", "1000000", "--send-burst", "1000000", "--request-rate", "1000000", "--request-burst", "1000000",
		"--write-budget", "1099511627776", "--write-burst", "1099511627776", "--log-level", "warn"}, extra...)
	p, err := nodeproc.Start(nodeproc.Config{Bin: bin, DataDir: filepath.Join(dir, "data"), Listen: addr, Args: args,
		AuthSecret: secret, AdminSecret: adminSecret, Output: stderr})
	if err != nil {
		return fail(fmt.Errorf("loadgen: start imnode: %w", err))
	}
	s := &spawned{Process: p, dir: dir, secret: secret, adminSecret: adminSecret}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(rctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return s, nil
}

func randomSecret() string {
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// stop shuts the node down (killing it if it takes long) and removes its data.
func (s *spawned) stop() {
	_ = s.Stop(20 * time.Second)
	_ = os.RemoveAll(s.dir)
}

// NodeSample is the nodes' resource use at one moment, summed over nodes.
type NodeSample struct {
	CPU float64 `json:"cpu_s"` // CPU-seconds used since start
	RSS int64   `json:"rss"`   // resident set, bytes
	// RSSPeak is the highest resident set since start (VmHWM), bytes; only
	// for local pids.
	RSSPeak int64 `json:"rss_peak,omitempty"`
	OK      bool  `json:"ok"`
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
		s.RSSPeak += procPeakRSS(strconv.Itoa(pid))
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
func metricsURL(target string) (string, error) { return httpURL(target, "/metrics") }

// httpURL is the http(s) URL of path on the node whose WebSocket URL is
// target.
func httpURL(target, path string) (string, error) {
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
	u.Path, u.RawQuery = path, ""
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

// procPeakRSS returns the highest RSS of process pid since it started
// (VmHWM in /proc/<pid>/status), or 0 when unknown.
func procPeakRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}
