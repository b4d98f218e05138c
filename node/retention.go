package node

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/apps"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Message retention (an app's retention_ms): a sweeper deletes the entries
// older than their app's retention from the hot store, every
// Config.RetentionInterval, over every timeline (users' and groups' own),
// with the store's TrimTimeline (which keeps a timeline's newest entry, so
// that its last seq stays known; reads hide it once expired, see
// actors.Config.Retention). Every node sweeps: a pass repeated by another
// node trims nothing more.

// retentionStore is what the sweeper needs of the node's store.
type retentionStore interface {
	Users(ctx context.Context, after string, limit int) ([]string, error)
	InternalAccounts(ctx context.Context, after string, limit int) ([]string, error)
	ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error)
	LastSeq(ctx context.Context, userID string) (uint64, error)
	persistence.Trimmer
}

// appLister lists the apps with their settings (apps.Registry).
type appLister interface {
	List(ctx context.Context) ([]apps.App, error)
}

type retention struct {
	st      retentionStore
	apps    appLister
	every   time.Duration
	log     *slog.Logger
	trimmed prometheus.Counter
	// run is cancelled by shutdown, which ends the pass under way too;
	// done is closed when the loop has returned.
	run    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// retentionPage is how many timelines a pass lists at a time.
const retentionPage = 1000

func newRetention(st retentionStore, al appLister, every time.Duration, reg prometheus.Registerer, logger *slog.Logger) *retention {
	r := &retention{st: st, apps: al, every: every, log: logger, done: make(chan struct{}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_retention_trimmed_timelines_total", Help: "Timelines whose entries older than their app's retention were deleted."})}
	if reg != nil {
		reg.MustRegister(r.trimmed)
	}
	r.run, r.cancel = context.WithCancel(context.Background())
	return r
}

// start runs a pass every r.every until shutdown.
func (r *retention) start() {
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-r.run.Done():
				return
			}
			if n, err := r.pass(r.run, time.Now()); err != nil && r.run.Err() == nil {
				r.log.Warn("retention: pass failed", "err", err)
			} else if n > 0 {
				r.log.Debug("retention: trimmed", "timelines", n)
			}
		}
	}()
}

func (r *retention) shutdown(ctx context.Context) error {
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pass trims every timeline of an app with a retention, and returns how
// many it trimmed.
func (r *retention) pass(ctx context.Context, now time.Time) (int, error) {
	list, err := r.apps.List(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := map[string]uint64{}
	for _, a := range list {
		if ms := a.Settings.RetentionMs; ms > 0 {
			cutoff[a.ID] = uint64(now.UnixMilli() - ms)
		}
	}
	if len(cutoff) == 0 {
		return 0, nil
	}
	// Every app's users and other apps' groups ("acme:#g:..."), then the
	// default app's groups, internal accounts ("#g:...").
	trimmed, err := r.sweep(ctx, r.st.Users, "", cutoff)
	if err != nil {
		return trimmed, err
	}
	if _, ok := cutoff[ids.DefaultApp]; ok {
		n, err := r.sweep(ctx, r.st.InternalAccounts, "#g:", cutoff)
		return trimmed + n, err
	}
	return trimmed, nil
}

// sweep trims the timelines list names, from after on, whose app has a
// cutoff; an internal account ('#') is the default app's.
func (r *retention) sweep(ctx context.Context, list func(ctx context.Context, after string, limit int) ([]string, error),
	after string, cutoff map[string]uint64) (int, error) {
	trimmed := 0
	for {
		page, err := list(ctx, after, retentionPage)
		if err != nil {
			return trimmed, err
		}
		for _, id := range page {
			app, _ := ids.Unqualify(id)
			c, ok := cutoff[app]
			if !ok {
				continue
			}
			did, err := r.trim(ctx, id, c)
			if err != nil {
				return trimmed, err
			}
			if did {
				trimmed++
				r.trimmed.Inc()
			}
		}
		if len(page) < retentionPage {
			return trimmed, nil
		}
		after = page[len(page)-1]
	}
}

// errNoEntry: a timeline holds no entry at or after a seq it should.
var errNoEntry = errors.New("retention: no entry where the timeline's last seq says one is")

// trim deletes timeline's entries sent before cutoff (Unix ms): it finds
// the first seq sent at or after cutoff (seqs and times grow together) by
// a binary search of point reads, and trims below it.
func (r *retention) trim(ctx context.Context, timeline string, cutoff uint64) (bool, error) {
	last, err := r.st.LastSeq(ctx, timeline)
	if err != nil || last == 0 {
		return false, err
	}
	floor, err := r.st.TrimFloor(ctx, timeline)
	if err != nil {
		return false, err
	}
	// at returns the first entry at or after seq and its time.
	at := func(seq uint64) (uint64, uint64, error) {
		es, err := r.st.ReadTimeline(ctx, timeline, seq-1, 1)
		if err != nil {
			return 0, 0, err
		}
		if len(es) == 0 {
			return 0, 0, errNoEntry
		}
		return es[0].GetSeq(), es[0].GetMessage().GetSentAtMs(), nil
	}
	lo, loAt, err := at(max(floor, 1))
	if err != nil || loAt >= cutoff || lo >= last {
		return false, err
	}
	// Entry lo is older than cutoff; find the first entry that is not,
	// between lo and last (the newest is kept in any case).
	hi := last
	if _, lastAt, err := at(last); err != nil {
		return false, err
	} else if lastAt >= cutoff {
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			seq, t, err := at(mid)
			if err != nil {
				return false, err
			}
			if t < cutoff {
				lo = seq
				if seq >= hi {
					break
				}
			} else {
				hi = seq
			}
		}
	}
	if _, err := r.st.TrimTimeline(ctx, timeline, hi); err != nil {
		return false, err
	}
	return true, nil
}
