// Package gate is the entry check every store backend runs first: a call
// with a done context or on a closed store fails at once, and Close waits
// for the calls in progress before it releases anything they use.
package gate

import (
	"context"
	"sync"

	"actorim/persistence"
)

// Gate admits calls until it is closed. The zero value is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits a call. It returns ctx's error when ctx is done and
// persistence.ErrClosed once Close has begun; on nil the caller must call
// Leave when it no longer uses the store.
func (g *Gate) Enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return persistence.ErrClosed
	}
	return nil
}

// Leave ends a call admitted by Enter.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close shuts the gate: it waits for the calls inside, refuses every later
// one, and runs release (which frees what the calls used) before later
// calls get their ErrClosed. Only the first Close runs release; a later
// one returns nil.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return release()
}
