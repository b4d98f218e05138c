package loadgen

import (
	"context"
	"fmt"
	"time"

	"actorim/client"
)

var idleWorkload = &workload{
	check:   func(*Config) error { return nil },
	sockets: func(c *Config) int { return c.Conns },
	run:     runIdle,
	setup: func(c *Config) string {
		return fmt.Sprintf("%d connections logged in (at most %d connecting at once per process) and held for %v", c.Conns, c.Concurrency, c.Duration)
	},
	summarize: func(r *Report, t *total, marks map[string]Mark) {
		r.window(t, marks, "start", "held")
		secs := marks["connected"].At.Sub(marks["start"].At).Seconds()
		opened := float64(r.Conns.Opened)
		if secs > 0 {
			r.Figures["conns_per_s"] = round(opened/secs, 1)
		}
		r.Figures["time_to_connect_s"] = round(secs, 3)
		if opened > 0 {
			if m0, m1 := marks["start"].Node, marks["held"].Node; m0.OK && m1.OK {
				r.Figures["node_rss_per_conn_kib"] = round(float64(m1.RSS-m0.RSS)/opened/1024, 2)
			}
			r.Figures["client_rss_per_conn_kib"] = round(float64(t.at["held"].RSS-t.at["start"].RSS)/opened/1024, 2)
		}
	},
}

// runIdle opens cfg.Conns logged-in connections that send nothing, holds
// them, and closes them. The node's RSS is sampled before and after.
func runIdle(ctx context.Context, e *env) error {
	lo, hi := e.span(e.cfg.Conns)
	if err := e.barrier(ctx, "start"); err != nil {
		return err
	}
	conns := connectMany(ctx, e, lo, hi, 0, func(i int) (string, string) {
		return fmt.Sprintf("%s-%d-i", e.cfg.RunID, i), "d"
	}, e.st.hist(histLogin))
	defer closeAll(e.st, conns)
	if err := e.barrier(ctx, "connected"); err != nil {
		return err
	}
	if err := sleep(ctx, e.cfg.Duration); err != nil {
		return err
	}
	return e.barrier(ctx, "held")
}

// connectMany opens connections lo to hi-1 (connection index base+i) as the
// user and device who(i) names, timing each dial+login into h. Failed
// connections are nil.
func connectMany(ctx context.Context, e *env, lo, hi, base int, who func(i int) (user, device string), h *hist) []*client.Conn {
	conns := make([]*client.Conn, hi-lo)
	parallel(ctx, hi-lo, e.cfg.Concurrency, func(k int) {
		user, device := who(lo + k)
		start := time.Now()
		c, err := e.dial.connect(ctx, "connect", base+lo+k, user, device, nil, nil, 0)
		if err != nil {
			return
		}
		h.record(time.Since(start))
		e.st.opened.Add(1)
		conns[k] = c
	})
	return conns
}
