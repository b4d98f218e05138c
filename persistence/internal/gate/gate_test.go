package gate

import (
	"context"
	"errors"
	"testing"
	"time"

	"actorim/persistence"
)

func TestGate(t *testing.T) {
	var g Gate
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Enter(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enter with a canceled context = %v", err)
	}
	if err := g.Enter(context.Background()); err != nil {
		t.Fatalf("Enter = %v", err)
	}
	released := make(chan struct{})
	closed := make(chan error)
	go func() {
		closed <- g.Close(func() error { close(released); return errors.New("released") })
	}()
	select {
	case <-released:
		t.Fatal("Close released the store under a call in progress")
	case <-time.After(50 * time.Millisecond):
	}
	g.Leave()
	if err := <-closed; err == nil || err.Error() != "released" {
		t.Fatalf("Close = %v, want release's error", err)
	}
	if err := g.Enter(context.Background()); !errors.Is(err, persistence.ErrClosed) {
		t.Fatalf("Enter after Close = %v, want ErrClosed", err)
	}
	if err := g.Close(func() error { t.Fatal("released twice"); return nil }); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}
