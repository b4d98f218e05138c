package clickhouse

import (
	"context"
	"sync"
)

// worker is the lifecycle of the archive's background goroutines (the
// archiver, the trimmer, the delivery recorder): start runs one, shutdown
// stops it and waits for it.
type worker struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newWorker() worker {
	return worker{stop: make(chan struct{}), done: make(chan struct{})}
}

// start runs run in a goroutine with a context that shutdown cancels.
func (w *worker) start(run func(ctx context.Context)) {
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-w.stop:
				cancel()
			case <-w.done:
			}
		}()
		run(ctx)
	}()
}

// shutdown cancels the run's context and waits for it to return, or for
// ctx to end.
func (w *worker) shutdown(ctx context.Context) error {
	w.once.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
