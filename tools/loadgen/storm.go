package loadgen

import (
	"context"
	"errors"
	"fmt"
)

var loginStormWorkload = &workload{
	check: func(c *Config) error {
		if c.Conns < c.Users {
			return fmt.Errorf("loadgen: login-storm: --conns (%d) must be at least --users (%d)", c.Conns, c.Users)
		}
		return nil
	},
	sockets: func(c *Config) int { return c.Conns },
	run:     runLoginStorm,
	setup: func(c *Config) string {
		return fmt.Sprintf("%d logins of %d users (devices d0, d1, ...), at most %d connecting at once per process; "+
			"a cold round (first logins, which provision the users) then a warm round", c.Conns, c.Users, c.Concurrency)
	},
	summarize: func(r *Report, t *total, marks map[string]Mark) {
		r.window(t, marks, "warm-start", "warm-done")
		for _, rnd := range stormRounds {
			from, to := rnd+"-start", rnd+"-done"
			secs := marks[to].At.Sub(marks[from].At).Seconds()
			logins := t.at[to].Counts["opened"] - t.at[from].Counts["opened"]
			r.Figures["logins_"+rnd] = float64(logins)
			if secs > 0 {
				r.Figures["logins_per_s_"+rnd] = round(float64(logins)/secs, 1)
			}
			if m0, m1 := marks[from].Node, marks[to].Node; m0.OK && m1.OK && logins > 0 {
				r.Figures["node_cpu_ms_per_login_"+rnd] = round((m1.CPU-m0.CPU)*1000/float64(logins), 3)
			}
		}
	},
}

// stormRounds are login-storm's rounds: first logins of new users, then the
// same users again.
var stormRounds = []string{"cold", "warm"}

// runLoginStorm logs cfg.Conns connections in as fast as the node takes
// them, holds them until all are in, closes them, and does it again.
func runLoginStorm(ctx context.Context, e *env) error {
	lo, hi := e.span(e.cfg.Conns)
	for _, round := range stormRounds {
		if err := e.barrier(ctx, round+"-start"); err != nil {
			return err
		}
		conns := connectMany(ctx, e, lo, hi, 0, func(i int) (string, string) {
			return fmt.Sprintf("%s-%d-u", e.cfg.RunID, i%e.cfg.Users), fmt.Sprintf("d%d", i/e.cfg.Users)
		}, e.st.hist("login_"+round))
		err := e.barrier(ctx, round+"-done")
		closeAll(e.st, conns)
		if err != nil {
			return err
		}
	}
	return nil
}

var reconnectStormWorkload = &workload{
	check: func(c *Config) error {
		if c.Rate < 0 {
			return errors.New("loadgen: --rate must not be negative")
		}
		if c.Rate == 0 {
			c.Rate = float64(c.Devices) // one message a second per device
		}
		c.Pairs = c.Devices
		return nil
	},
	sockets: func(c *Config) int { return 2 * c.Devices },
	run:     runReconnectStorm,
	setup: func(c *Config) string {
		return fmt.Sprintf("%d receiving devices (each with its own sender, %s msgs/s in total) drop at once after %v, "+
			"stay away %v while messages keep coming, then all reconnect at once with Login.lastSeq; %v to resync",
			c.Devices, fnum(c.Rate), c.Warmup, c.Offline, c.Drain)
	},
	summarize: func(r *Report, t *total, marks map[string]Mark) {
		r.Messages = &MessageStats{Sent: t.counts["sent"], Acked: t.counts["acked"], SendFailed: t.counts["send_failed"],
			Delivered: t.check.Delivered, Repushed: t.check.Repushed}
		r.window(t, marks, "reconnect", "resynced")
		at := func(name string) float64 { return marks[name].At.Sub(marks["reconnect"].At).Seconds() }
		r.Figures["time_to_reconnect_all_s"] = round(at("reconnected"), 3)
		r.Figures["time_to_resync_all_s"] = round(at("resynced"), 3)
		if s := at("reconnected"); s > 0 {
			r.Figures["reconnects_per_s"] = round(float64(t.counts["reconnects"])/s, 1)
		}
		r.Figures["missed_then_delivered"] = float64(r.Window.Delivered)
	},
}

// runReconnectStorm: pairs exchange messages; at "drop" every receiver
// aborts its connection; messages keep coming for cfg.Offline; then the
// senders stop and every receiver reconnects at once, resuming from the last
// seq it processed. "reconnected" is when all are logged in again,
// "resynced" when every acknowledged message has been delivered.
func runReconnectStorm(ctx context.Context, e *env) error {
	t := newTraffic(e)
	t.connect(ctx)
	defer func() {
		t.halt()
		t.close()
	}()
	if err := t.warm(ctx); err != nil {
		return err
	}
	if err := e.barrier(ctx, "drop"); err != nil {
		return err
	}
	parallel(ctx, len(t.pairs), 1000, func(i int) { t.abort(t.pairs[i]) })
	if err := sleep(ctx, e.cfg.Offline); err != nil {
		return err
	}
	t.halt() // so that "resynced" has a fixed set of messages to wait for
	if err := e.barrier(ctx, "reconnect"); err != nil {
		return err
	}
	parallel(ctx, len(t.pairs), e.cfg.Concurrency, func(i int) { _ = t.resume(ctx, t.pairs[i], true) })
	if err := e.barrier(ctx, "reconnected"); err != nil {
		return err
	}
	t.drain(ctx)
	return e.barrier(ctx, "resynced")
}
