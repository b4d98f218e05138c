package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the result of a run: what people read as a table (WriteTable)
// and machines as one JSON object (WriteJSON).
type Report struct {
	Workload  string    `json:"workload"`
	Setup     string    `json:"setup"`
	Date      time.Time `json:"date"`
	Targets   []string  `json:"targets"`
	Procs     int       `json:"procs"`
	SourceIPs int       `json:"source_ips,omitempty"`

	Conns    ConnStats     `json:"connections"`
	Messages *MessageStats `json:"messages,omitempty"`
	// Window is the measured interval between two barriers: rates and
	// resource use are taken over it.
	Window Window `json:"window"`
	// Latency holds the distributions recorded, by name: send_ack and
	// send_delivery (from each message's scheduled send time), login,
	// reconnect, resync, ...
	Latency map[string]Percentiles `json:"latency_ms,omitempty"`
	// Figures are the workload's own numbers (logins_per_s, rss_per_conn_kib, ...).
	Figures map[string]float64 `json:"figures,omitempty"`
	// Errors counts failures by operation and kind: protocol error codes
	// ("send: ERR_RATE_LIMITED"), refused upgrades ("connect dial: HTTP 503"),
	// system errors.
	Errors map[string]int64 `json:"errors"`
	Node   NodeStats        `json:"node"`
	Client ClientStats      `json:"client"`
	Marks  map[string]Mark  `json:"marks"`
	// Reference is the run this one is compared with, when there is one:
	// the same workload without the before-send webhook, or against the
	// bundled reference relay (VsRelay); Figures hold the ratios (vs_ref,
	// node_cpu_vs_ref).
	Reference *Report `json:"reference,omitempty"`

	// Checks is what the guarantee checker found; Passed is true when it
	// found no violation, and Summary says so in one line.
	Checks  CheckResult `json:"violations"`
	Passed  bool        `json:"passed"`
	Summary string      `json:"summary"`
}

// ConnStats counts connections.
type ConnStats struct {
	Opened int64 `json:"opened"`
	Failed int64 `json:"failed"`
	// Refused counts upgrades the node refused with HTTP 503 (its
	// connection limit); they are among Failed.
	Refused    int64 `json:"refused_503"`
	Reconnects int64 `json:"reconnects,omitempty"`
}

// MessageStats counts messages over the whole run.
type MessageStats struct {
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	SendFailed int64 `json:"send_failed"`
	Delivered  int64 `json:"delivered"`
	Repushed   int64 `json:"repushed"`
}

// Window is the measured interval.
type Window struct {
	From       string  `json:"from"`
	To         string  `json:"to"`
	Seconds    float64 `json:"seconds"`
	Delivered  int64   `json:"delivered"`
	Throughput float64 `json:"delivered_per_s"`
}

// NodeStats is the nodes' resource use over the window (summed over nodes).
type NodeStats struct {
	Source        string  `json:"source"`
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million,omitempty"`
	RSS           int64   `json:"rss"`
	RSSStart      int64   `json:"rss_at_start"`
	// RSSPeak is the nodes' highest RSS since they started (VmHWM), when
	// their pids are known (--spawn, --node-pid).
	RSSPeak int64 `json:"rss_peak,omitempty"`
}

// ClientStats is the client processes' resource use over the window.
type ClientStats struct {
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million,omitempty"`
	RSS           int64   `json:"rss"`
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// latencyOrder lists the distributions in the order people read them.
var latencyOrder = []string{histAck, histDelivery, histLogin, "login_cold", "login_warm", histReconnect, histResync, histRecover, histRecoveryAt,
	histUpload, histDownload}

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("imbench %s: %s\n", r.Workload, r.Setup)
	p("  %d client process(es), targets %s", r.Procs, strings.Join(r.Targets, ", "))
	if r.SourceIPs > 0 {
		p(", %d source addresses", r.SourceIPs)
	}
	p("\n\n")
	if r.Workload != "media" { // HTTP only: no WebSocket connections
		p("%-14s %s opened, %s failed (%s refused with HTTP 503)", "connections", num(r.Conns.Opened), num(r.Conns.Failed), num(r.Conns.Refused))
		if r.Conns.Reconnects > 0 {
			p(", %s reconnects", num(r.Conns.Reconnects))
		}
		p("\n")
	}
	if m := r.Messages; m != nil {
		p("%-14s sent %s, acked %s, send failures %s, delivered %s, re-pushed %s, delivered unacked %s\n", "messages",
			num(m.Sent), num(m.Acked), num(m.SendFailed), num(m.Delivered), num(m.Repushed), num(r.Checks.Unacked))
	}
	if r.Window.Delivered > 0 {
		p("%-14s %s delivered msgs/s (%s in %.1f s, %s to %s)\n", "throughput", num(int64(r.Window.Throughput)),
			num(r.Window.Delivered), r.Window.Seconds, r.Window.From, r.Window.To)
	}
	if len(r.Latency) > 0 {
		p("\n%-16s %10s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max")
		for _, name := range latencyOrder {
			if l, ok := r.Latency[name]; ok {
				p("  %-14s %10s %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, num(l.Count), l.P50, l.P90, l.P99, l.P999, l.Max)
			}
		}
	}
	if len(r.Figures) > 0 {
		p("\n")
		for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
			p("%-28s %s\n", k, fnum(r.Figures[k]))
		}
	}
	p("\n%-14s %.2f CPU-s", "node", r.Node.CPUSeconds)
	if r.Node.CPUPerMillion > 0 {
		p(" (%.1f CPU-s per million delivered)", r.Node.CPUPerMillion)
	}
	p(", RSS %s at start, %s at %s", mib(r.Node.RSSStart), mib(r.Node.RSS), r.Window.To)
	if r.Node.RSSPeak > 0 {
		p(", peak %s", mib(r.Node.RSSPeak))
	}
	p(" [%s]\n", r.Node.Source)
	p("%-14s %.2f CPU-s", "client", r.Client.CPUSeconds)
	if r.Client.CPUPerMillion > 0 {
		p(" (%.1f CPU-s per million delivered)", r.Client.CPUPerMillion)
	}
	p(", RSS %s\n", mib(r.Client.RSS))
	if len(r.Errors) == 0 {
		p("%-14s none\n", "errors")
	} else {
		p("%-14s\n", "errors")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			p("  %-40s %s\n", k, num(r.Errors[k]))
		}
	}
	p("\n%s\n", r.Summary)
	for _, v := range r.Checks.Examples {
		p("  %s\n", v)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// num formats n with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fnum(v float64) string {
	if v == float64(int64(v)) || math.Abs(v) >= 1000 {
		return num(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// progress prints one line a second while a run lasts: on a terminal it
// rewrites the line in place.
type progress struct {
	w        io.Writer
	name     string
	phase    string
	start    time.Time
	tty      bool
	last     int64
	printed  bool
	lastTime time.Time
}

func newProgress(w io.Writer, name string) *progress {
	p := &progress{w: w, name: name, phase: "connecting", start: time.Now(), lastTime: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) print(latest []map[string]int64) {
	if p.w == nil {
		return
	}
	sum := map[string]int64{}
	for _, m := range latest {
		addCounts(sum, m)
	}
	now := time.Now()
	rate := float64(sum["delivered"]-p.last) / now.Sub(p.lastTime).Seconds()
	p.last, p.lastTime = sum["delivered"], now
	if p.name == "media" {
		p.printMedia(sum, now)
		return
	}
	line := fmt.Sprintf("imbench %s [%s] %3.0fs  open %s  failed %s  sent %s  acked %s  delivered %s (%s/s)  errors %s  violations %s",
		p.name, p.phase, now.Sub(p.start).Seconds(), num(sum["open"]), num(sum["conn_failed"]), num(sum["sent"]), num(sum["acked"]),
		num(sum["delivered"]), num(int64(rate)), num(sum["send_failed"]), num(sum["violations"]))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// printMedia is the media workload's progress line: files and bytes each way.
func (p *progress) printMedia(sum map[string]int64, now time.Time) {
	moved := sum["up_bytes"] + sum["down_bytes"]
	rate := float64(moved-p.last) / now.Sub(p.lastTime).Seconds()
	p.last, p.lastTime = moved, now
	p.line(fmt.Sprintf("imbench media [%s] %3.0fs  uploaded %s files, %s  downloaded %s files, %s  (%s/s)  errors %s  violations %s",
		p.phase, now.Sub(p.start).Seconds(), num(sum["up_files"]), mib(sum["up_bytes"]), num(sum["down_files"]), mib(sum["down_bytes"]),
		mib(int64(rate)), num(sum["media_failed"]), num(sum["violations"])))
}

func (p *progress) line(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
	} else {
		fmt.Fprintln(p.w, s)
	}
	p.printed = true
}

func (p *progress) done() {
	if p.w != nil && p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}
