package actors

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// workerDispatcher runs mailboxes on long-lived goroutines. protoactor's
// default dispatcher starts a goroutine per mailbox run, whose small stack
// then grows again through our handlers (protobuf, WebSocket writes, store
// calls) on every message: that copying cost several percent of CPU under
// load. A run goes to an idle worker when one is waiting, otherwise to a new
// worker (up to max), otherwise to a plain goroutine, so handlers that block
// never starve the others. Shutdown ends the workers; runs scheduled after
// it get plain goroutines.
type workerDispatcher struct {
	throughput int
	max        int32
	workers    atomic.Int32
	work       chan func()

	mu      sync.Mutex // guards stopped and running.Add against Shutdown
	stopped bool
	quit    chan struct{}
	running sync.WaitGroup
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

func newWorkerDispatcher(max, throughput int) *workerDispatcher {
	return &workerDispatcher{throughput: throughput, max: int32(max), work: make(chan func()), quit: make(chan struct{})}
}

func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
		return
	default:
	}
	if d.workers.Add(1) <= d.max && d.startWorker(fn) {
		return
	}
	d.workers.Add(-1)
	go fn()
}

// startWorker starts a worker running fn first, unless the dispatcher is
// shut down.
func (d *workerDispatcher) startWorker(fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.running.Add(1)
	go d.loop(fn)
	return true
}

func (d *workerDispatcher) loop(fn func()) {
	defer d.running.Done()
	defer d.workers.Add(-1)
	for {
		fn()
		select {
		case fn = <-d.work:
		case <-d.quit:
			return
		}
	}
}

func (d *workerDispatcher) Throughput() int { return d.throughput }

// Shutdown ends the idle workers at once and the busy ones when their run
// returns, and waits for them until ctx ends.
func (d *workerDispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if !d.stopped {
		d.stopped = true
		close(d.quit)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
