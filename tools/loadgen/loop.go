package loadgen

import (
	"context"
	"errors"
	"sync"
	"time"

	"actorim/client"
)

// loop runs and stops the senders of a message workload (pairs, fanout).
type loop struct {
	e    *env
	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoop(e *env) loop { return loop{e: e, stop: make(chan struct{})} }

// start begins sending over n senders: open loop at rate msgs/s in all
// (message k from sender k mod n), or, when rate is 0, closed loop with
// cfg.Inflight sends outstanding per sender. send(i, due) sends one message
// from sender i, timed from due.
func (l *loop) start(ctx context.Context, rate float64, n int, send func(i int, due time.Time) error) {
	if n == 0 {
		return
	}
	if rate <= 0 {
		for i := range n {
			for range l.e.cfg.Inflight {
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					for !l.stopped() {
						if err := send(i, time.Now()); errors.Is(err, client.ErrClosed) || ctx.Err() != nil {
							return
						} else if err != nil {
							time.Sleep(50 * time.Millisecond) // don't spin on a failing connection
						}
					}
				}()
			}
		}
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.openLoop(rate, func(k int, due time.Time) { _ = send(k%n, due) })
	}()
}

// maxOpenInflight bounds the sends of the open loop outstanding at once in a
// process, so an overwhelmed node cannot exhaust the client's memory; a send
// that waits for a slot is still timed from its scheduled time.
const maxOpenInflight = 50_000

// openLoop calls send(k, due) on its own goroutine for message k, due at
// start + k/rate, until halted.
func (l *loop) openLoop(rate float64, send func(k int, due time.Time)) {
	interval := time.Duration(float64(time.Second) / rate)
	slots := make(chan struct{}, maxOpenInflight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-l.stop:
				return
			}
		} else if l.stopped() {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-l.stop:
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			send(k, due)
			<-slots
		}()
	}
}

func (l *loop) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// halt stops sending and waits for the sends under way to be answered.
func (l *loop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// drain waits until every acknowledged message has reached every recipient
// device, or cfg.Drain has passed.
func (l *loop) drain(ctx context.Context) {
	for deadline := time.Now().Add(l.e.cfg.Drain); time.Now().Before(deadline) && ctx.Err() == nil; {
		if l.e.check.Outstanding() == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
