package loadgen

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"actorim/client"
)

// Histogram names: latencies recorded by the workloads, in microseconds.
const (
	histAck       = "send_ack"      // scheduled send to SendAck
	histDelivery  = "send_delivery" // scheduled send to the push at the recipient
	histLogin     = "login"         // dial + Login + LoginOK
	histReconnect = "reconnect"     // abort to LoginOK of the new connection
	histResync    = "resync"        // reconnect start to every missed message delivered
	histRecover   = "send_recover"  // a sender's first failed attempt to the ack of its retry
	// histRecoveryAt records when each recovery (a sender's retry acked, a
	// receiver reconnected) happened, measured from the start of the traffic:
	// its max is when the last client got full service back.
	histRecoveryAt = "recovery_at"
	histUpload     = "upload"   // one file's upload, first request to the file's description (media)
	histDownload   = "download" // one file's download, request to last byte (media)
)

// counters are one process's running totals; progress lines and barrier
// samples read them while the load runs.
type counters struct {
	open, opened, connFailed, refused atomic.Int64
	sent, acked, sendFailed           atomic.Int64
	delivered, reconnects             atomic.Int64
	// The media workload's transfers: bytes as they go, files when done.
	upBytes, downBytes, upFiles, downFiles, mediaFailed atomic.Int64
	// The bytes of the media workload's reference phases (mediaref.go).
	refUpBytes, refDownBytes atomic.Int64
}

func (c *counters) snapshot() map[string]int64 {
	return map[string]int64{
		"open": c.open.Load(), "opened": c.opened.Load(), "conn_failed": c.connFailed.Load(), "refused": c.refused.Load(),
		"sent": c.sent.Load(), "acked": c.acked.Load(), "send_failed": c.sendFailed.Load(),
		"delivered": c.delivered.Load(), "reconnects": c.reconnects.Load(),
		"up_bytes": c.upBytes.Load(), "down_bytes": c.downBytes.Load(), "up_files": c.upFiles.Load(), "down_files": c.downFiles.Load(),
		"media_failed": c.mediaFailed.Load(), "ref_up_bytes": c.refUpBytes.Load(), "ref_down_bytes": c.refDownBytes.Load(),
	}
}

// stats collects one process's measurements.
type stats struct {
	counters
	measuring atomic.Bool // latencies of sends and deliveries are recorded only in the measured window

	hmu   sync.Mutex
	hists map[string]*hist

	emu  sync.Mutex
	errs map[string]int64
}

type hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 3_600_000_000, 3) } // 1 µs to 1 h (a large upload)

func newStats() *stats { return &stats{hists: map[string]*hist{}, errs: map[string]int64{}} }

// hist returns the named histogram, creating it on first use. Callers on hot
// paths keep the pointer.
func (s *stats) hist(name string) *hist {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	h := s.hists[name]
	if h == nil {
		h = &hist{h: newHist()}
		s.hists[name] = h
	}
	return h
}

func (h *hist) record(d time.Duration) {
	h.mu.Lock()
	_ = h.h.RecordValue(max(1, d.Microseconds()))
	h.mu.Unlock()
}

// recordAll records several latencies under one lock (a Push's entries).
func (h *hist) recordAll(ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	h.mu.Lock()
	for _, d := range ds {
		_ = h.h.RecordValue(max(1, d.Microseconds()))
	}
	h.mu.Unlock()
}

// fail counts an error of op (dial, login, send, ...) by its kind.
func (s *stats) fail(op string, err error) {
	kind := errorKind(err)
	if kind == "HTTP 503" {
		s.refused.Add(1)
	}
	s.emu.Lock()
	s.errs[op+": "+kind]++
	s.emu.Unlock()
}

var httpStatus = regexp.MustCompile(`\(HTTP (\d+)\)`)

// errorKind names an error by what a reader needs to know: the protocol
// error code, the HTTP status of a refused upgrade, or the system error.
func errorKind(err error) string {
	if code := client.CodeOf(err); code != 0 {
		return code.String()
	}
	if m := httpStatus.FindStringSubmatch(err.Error()); m != nil {
		return "HTTP " + m[1]
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, client.ErrClosed):
		return "connection closed"
	case errors.As(err, &errno):
		return errno.Error()
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// part is one process's share of a run's results, as a worker sends it to
// the coordinator.
type part struct {
	Counts map[string]int64  `json:"counts"`
	Errors map[string]int64  `json:"errors"`
	Hists  map[string][]byte `json:"hists"` // HDR V2 compressed
	Check  CheckResult       `json:"check"`
	// At holds the process's own CPU, RSS and counts at each barrier.
	At map[string]sample `json:"at"`
}

// sample is a process's state at a barrier.
type sample struct {
	CPU    float64          `json:"cpu_s"`
	RSS    int64            `json:"rss"`
	Counts map[string]int64 `json:"counts,omitempty"`
}

func (s *stats) part(check CheckResult, at map[string]sample) (*part, error) {
	p := &part{Counts: s.snapshot(), Errors: map[string]int64{}, Hists: map[string][]byte{}, Check: check, At: at}
	s.emu.Lock()
	for k, v := range s.errs {
		p.Errors[k] = v
	}
	s.emu.Unlock()
	s.hmu.Lock()
	defer s.hmu.Unlock()
	for name, h := range s.hists {
		h.mu.Lock()
		b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		h.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("loadgen: encode histogram %s: %w", name, err)
		}
		p.Hists[name] = b
	}
	return p, nil
}

// total is the parts of a run merged.
type total struct {
	counts map[string]int64
	errs   map[string]int64
	hists  map[string]*hdrhistogram.Histogram
	check  CheckResult
	at     map[string]sample // summed over processes
}

func merge(parts []*part, examples int) (*total, error) {
	t := &total{counts: map[string]int64{}, errs: map[string]int64{}, hists: map[string]*hdrhistogram.Histogram{}, at: map[string]sample{}}
	for _, p := range parts {
		addCounts(t.counts, p.Counts)
		addCounts(t.errs, p.Errors)
		t.check.merge(p.Check, examples)
		for name, b := range p.Hists {
			h, err := hdrhistogram.Decode(b)
			if err != nil {
				return nil, fmt.Errorf("loadgen: decode histogram %s: %w", name, err)
			}
			if t.hists[name] == nil {
				t.hists[name] = newHist()
			}
			t.hists[name].Merge(h)
		}
		for name, s := range p.At {
			a := t.at[name]
			a.CPU += s.CPU
			a.RSS += s.RSS
			if a.Counts == nil {
				a.Counts = map[string]int64{}
			}
			addCounts(a.Counts, s.Counts)
			t.at[name] = a
		}
	}
	return t, nil
}

func addCounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// Percentiles summarise a latency distribution in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}
