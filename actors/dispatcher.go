package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// workerDispatcher runs mailboxes on long-lived goroutines. protoactor's
// default dispatcher starts a goroutine per mailbox run, whose small stack
// then grows again through our handlers (protobuf, WebSocket writes, store
// calls) on every message: that copying cost several percent of CPU under
// load. A run goes to an idle worker when one is waiting, otherwise to a new
// worker (up to max), otherwise to a plain goroutine, so handlers that block
// never starve the others.
type workerDispatcher struct {
	throughput int
	max        int32
	workers    atomic.Int32
	work       chan func()
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

func newWorkerDispatcher(max, throughput int) *workerDispatcher {
	return &workerDispatcher{throughput: throughput, max: int32(max), work: make(chan func())}
}

func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
		return
	default:
	}
	if d.workers.Add(1) <= d.max {
		go d.loop(fn)
		return
	}
	d.workers.Add(-1)
	go fn()
}

func (d *workerDispatcher) loop(fn func()) {
	for {
		fn()
		fn = <-d.work
	}
}

func (d *workerDispatcher) Throughput() int { return d.throughput }
