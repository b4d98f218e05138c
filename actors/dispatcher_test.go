package actors

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestDispatcherShutdownEndsWorkers: Shutdown ends the idle workers and a
// busy one once its run returns; runs scheduled afterwards still run.
func TestDispatcherShutdownEndsWorkers(t *testing.T) {
	t.Parallel()
	d := newWorkerDispatcher(4, 10)
	var wg sync.WaitGroup
	release, busy := make(chan struct{}), make(chan struct{})
	wg.Add(3)
	for i := 0; i < 3; i++ {
		d.Schedule(wg.Done)
	}
	d.Schedule(func() { close(busy); <-release }) // busy during Shutdown
	wg.Wait()
	<-busy
	// The dispatcher's workers are idle, or busy until released.
	if n := d.workers.Load(); n == 0 {
		t.Fatal("no worker started")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned while a worker was busy")
	}
	close(release)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := d.workers.Load(); n != 0 {
		t.Fatalf("%d workers left after Shutdown", n)
	}
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a run scheduled after Shutdown did not run")
	}
}
