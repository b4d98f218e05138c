package clickhouse

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/persistence/storetest"
	"actorim/protos/clientpb"
)

// TestConformanceHistory runs the store suites over History on an embedded
// hot store. Before a read that follows appends, the test archives the
// outbox and trims every archived timeline below the middle of what
// ClickHouse holds, so that the Timelines suite's reads start in the archive
// and continue in the hot store.
func TestConformanceHistory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store { return openSpanning(t) }, storetest.Known{
		Test: "Timelines/AppendKeepsMentionsAndEvents",
		Why:  "the archive has no column for a message's mentions: read back from ClickHouse, they are empty",
	})
}

// TestDurabilityHistory reopens the hot store under a History on the same
// archive: what was archived and trimmed before still reads back whole.
func TestDurabilityHistory(t *testing.T) {
	db, _ := newDB(t)
	dir := t.TempDir()
	floors := map[string]uint64{}
	storetest.Durability(t, func(t *testing.T) storetest.TimelineStore {
		hot, err := embedded.Open(dir, embedded.Options{Outbox: true})
		if err != nil {
			t.Fatal(err)
		}
		s := &spanning{History: NewHistory(hot, db, nil), t: t, hot: hot, db: db, archived: floors}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func openSpanning(t *testing.T) *spanning {
	t.Helper()
	db, _ := newDB(t)
	hot, err := embedded.Open(t.TempDir(), embedded.Options{Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &spanning{History: NewHistory(hot, db, nil), t: t, hot: hot, db: db, archived: map[string]uint64{}}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// spanning is a History that moves its hot store's trim floors up before
// every read that follows appends, as a node's archiver and trimmer would
// with a very short retention.
type spanning struct {
	*History
	t     *testing.T
	hot   *embedded.Store
	db    *DB
	dirty atomic.Bool

	mu       sync.Mutex
	archived map[string]uint64 // user -> highest archived seq
}

func (s *spanning) Append(ctx context.Context, req *persistence.AppendRequest) (*persistence.AppendResult, error) {
	s.dirty.Store(true)
	return s.History.Append(ctx, req)
}

func (s *spanning) AppendAll(ctx context.Context, reqs []*persistence.AppendRequest) ([]*persistence.AppendResult, []error) {
	s.dirty.Store(true)
	return s.History.AppendAll(ctx, reqs)
}

func (s *spanning) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	s.settle(ctx)
	return s.History.ReadTimeline(ctx, userID, afterSeq, limit)
}

func (s *spanning) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	s.settle(ctx)
	return s.History.ReadConversation(ctx, userID, conversationID, beforeSeq, limit)
}

// settle archives the outbox and trims every timeline it touched below the
// middle of its archived seqs.
func (s *spanning) settle(ctx context.Context) {
	if ctx.Err() != nil || !s.dirty.Swap(false) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.archive()
	if errors.Is(err, persistence.ErrClosed) {
		return // the read will say so
	}
	if err != nil {
		s.t.Errorf("archive and trim: %v", err)
	}
}

func (s *spanning) archive() error {
	ctx := context.Background()
	for {
		items, err := s.hot.ReadOutbox(ctx, 10000)
		if err != nil || len(items) == 0 {
			break
		}
		var r rows
		for i := range items {
			r.add(&items[i])
			for _, tl := range items[i].Timelines {
				s.archived[tl.User] = max(s.archived[tl.User], tl.Seq)
			}
		}
		if err := s.db.insert(ctx, &r); err != nil {
			return err
		}
		if err := s.hot.ConfirmOutbox(ctx, items[len(items)-1].ID); err != nil {
			return err
		}
	}
	for user, top := range s.archived {
		if _, err := s.hot.TrimTimeline(ctx, user, top/2+1); err != nil {
			return err
		}
	}
	return nil
}
