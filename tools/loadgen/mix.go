package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

var mixWorkload = &workload{
	check:   checkPairs,
	sockets: func(c *Config) int { return 2*c.Pairs + c.Conns },
	run:     runMix,
	setup: func(c *Config) string {
		return fmt.Sprintf("%s; plus %d idle connections; every %v %d receivers abort and resume with Login.lastSeq",
			pairsSetup(c), c.Conns, c.ReconnectEvery, c.ReconnectBatch)
	},
	summarize: summarizePairs,
}

// runMix is pairs with idle connections beside them and receivers that
// drop and resume all along: the checker must still see every message.
func runMix(ctx context.Context, e *env) error {
	t := newTraffic(e)
	return t.measured(ctx, func(ctx context.Context) func() {
		lo, hi := e.span(e.cfg.Conns)
		idle := connectMany(ctx, e, lo, hi, 2*e.cfg.Pairs, func(i int) (string, string) {
			return fmt.Sprintf("%s-%d-i", e.cfg.RunID, i), "d"
		}, e.st.hist(histLogin))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.churn(ctx, stop)
		}()
		return func() {
			close(stop)
			wg.Wait()
			closeAll(e.st, idle)
		}
	})
}

// churn aborts and resumes this process's share of cfg.ReconnectBatch
// receivers every cfg.ReconnectEvery, round robin, until stop.
func (t *traffic) churn(ctx context.Context, stop <-chan struct{}) {
	if len(t.pairs) == 0 {
		return
	}
	batch := max(1, t.e.cfg.ReconnectBatch*len(t.pairs)/max(1, t.e.cfg.Pairs))
	tick := time.NewTicker(t.e.cfg.ReconnectEvery)
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		parallel(ctx, batch, batch, func(i int) {
			p := t.pairs[(next+i)%len(t.pairs)]
			t.abort(p)
			_ = t.resume(ctx, p, false)
		})
		next += batch
	}
}
