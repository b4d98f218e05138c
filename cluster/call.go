package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// attemptTimeout bounds one try of a grain call. Grain handlers answer in
// milliseconds; a request to a dead node's PID would otherwise wait for the
// whole call timeout before the retry could pick the grain's new home.
const attemptTimeout = 2 * time.Second

// Get returns the PID of grain (identity, kind), activating it if needed.
// Results are cached; call Evict when a cached PID turns out to be dead.
//
// In a cluster a PID is only returned when it lives on the member the latest
// topology makes the grain's owner: a cached PID of an activation that moved
// (or whose node is leaving) is dropped and looked up again. Otherwise a
// caller could reach an old activation about to stop, and one that attached
// to it there would never hear of the stop from a node that shuts down.
func (m *Member) Get(ctx context.Context, identity, kind string) (*actor.PID, error) {
	if pid, ok := m.cluster.PidCache.Get(identity, kind); ok {
		if m.current(pid, identity, kind) {
			return pid, nil
		}
		m.Evict(identity, kind, pid)
	}
	for attempt := 0; ; attempt++ {
		if pid := m.lookup(ctx, identity, kind); pid != nil && m.current(pid, identity, kind) {
			m.cluster.PidCache.Set(identity, kind, pid)
			return pid, nil
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %v", ErrUnavailable, kind, identity, err)
		}
	}
}

// lookupAttempt bounds one identity lookup. The lookup asks the identity's
// owner, chosen by hashing over the members; when that owner just died it
// does not answer, and protoactor waits a hard-coded 5 s. Giving up sooner
// lets the next attempt hash over the membership as soon as the death is
// known (about a second with the Consul TTL), which is what makes failover
// take about two seconds rather than six.
const lookupAttempt = 400 * time.Millisecond

// lookup asks the identity lookup, which ignores any timeout we pass:
// waiting in a goroutine lets the attempt's deadline (or ctx) win; the
// abandoned lookup ends by itself within protoactor's 5 s.
func (m *Member) lookup(ctx context.Context, identity, kind string) *actor.PID {
	ctx, cancel := context.WithTimeout(ctx, lookupAttempt)
	defer cancel()
	res := make(chan *actor.PID, 1)
	go func() { res <- m.cluster.Get(identity, kind) }()
	select {
	case pid := <-res:
		return pid
	case <-ctx.Done():
		return nil
	}
}

// Evict forgets a cached PID of (identity, kind) if it is still pid.
func (m *Member) Evict(identity, kind string, pid *actor.PID) {
	m.cluster.PidCache.RemoveByValue(identity, kind, pid)
}

// Request sends msg to grain (identity, kind) and waits for its reply. It
// retries with backoff when the grain's PID is dead or does not answer (the
// grain moved or its node died), until ctx ends or the configured request
// timeout passes. Handlers must therefore be idempotent, as every actorim
// grain operation is.
func (m *Member) Request(ctx context.Context, identity, kind string, msg any) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.RequestTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	var lastErr error
	for attempt := 0; ; attempt++ {
		pid, err := m.Get(ctx, identity, kind)
		if err != nil {
			return nil, errors.Join(err, lastErr)
		}
		wait := min(time.Until(deadline), attemptTimeout)
		if wait <= 0 {
			break
		}
		res, err := m.system.Root.RequestFuture(pid, msg, wait).Result()
		if err == nil {
			return res, nil
		}
		if !retryable(err) {
			return nil, fmt.Errorf("cluster: request %s/%s: %w", kind, identity, err)
		}
		lastErr = err
		m.Evict(identity, kind, pid)
		if sleep(ctx, backoff(attempt)) != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %s/%s: %v", ErrUnavailable, kind, identity, lastErr)
}

// Send delivers msg to grain (identity, kind) without waiting for a reply.
// Delivery is best effort: a message to a grain that is moving can be lost,
// which is why grains treat such messages as hints backed by the store.
func (m *Member) Send(ctx context.Context, sender actor.SenderContext, identity, kind string, msg any) error {
	pid, err := m.Get(ctx, identity, kind)
	if err != nil {
		return err
	}
	sender.Send(pid, msg)
	return nil
}

func retryable(err error) bool {
	return errors.Is(err, actor.ErrTimeout) || errors.Is(err, actor.ErrDeadLetter) ||
		errors.Is(err, remote.ErrTimeout) || errors.Is(err, remote.ErrDeadLetter)
}

// backoff is exponential from 20 ms to 500 ms with full jitter: protoactor's
// own default sleeps i*i*50 nanoseconds, which is no backoff at all.
func backoff(attempt int) time.Duration {
	d := 20 * time.Millisecond << min(attempt, 5)
	d = min(d, 500*time.Millisecond)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
