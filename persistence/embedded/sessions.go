package embedded

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"actorim/persistence"
)

// sessions keeps device sessions in memory: on a single node they describe
// sockets of this very process, so none can outlive a restart.
type sessions struct {
	mu     sync.Mutex
	byUser map[string]map[string]persistence.Session
}

func (ss *sessions) put(s persistence.Session, ttl time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byUser == nil {
		ss.byUser = map[string]map[string]persistence.Session{}
	}
	m := ss.byUser[s.UserID]
	if m == nil {
		m = map[string]persistence.Session{}
		ss.byUser[s.UserID] = m
	}
	s.ExpiresAtMs = uint64(time.Now().Add(ttl).UnixMilli())
	m[s.DeviceID] = s
}

func (ss *sessions) delete(user, device, session string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	m := ss.byUser[user]
	if s, ok := m[device]; ok && s.SessionID == session {
		delete(m, device)
		if len(m) == 0 {
			delete(ss.byUser, user)
		}
	}
}

func (ss *sessions) list(user string) []persistence.Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := uint64(time.Now().UnixMilli())
	m := ss.byUser[user]
	out := make([]persistence.Session, 0, len(m))
	for dev, s := range m {
		if s.ExpiresAtMs <= now {
			delete(m, dev)
			continue
		}
		out = append(out, s)
	}
	if len(m) == 0 {
		delete(ss.byUser, user)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}

// PutSession implements persistence.Store.
func (s *Store) PutSession(ctx context.Context, sess persistence.Session, ttl time.Duration) error {
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("embedded: put session: %w", err)
	}
	s.sessions.put(sess, ttl)
	return nil
}

// DeleteSession implements persistence.Store.
func (s *Store) DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error {
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("embedded: delete session: %w", err)
	}
	s.sessions.delete(userID, deviceID, sessionID)
	return nil
}

// Sessions implements persistence.Store.
func (s *Store) Sessions(ctx context.Context, userID string) ([]persistence.Session, error) {
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("embedded: sessions: %w", err)
	}
	return s.sessions.list(userID), nil
}

// usable reports a done context or a closed store.
func (s *Store) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return persistence.ErrClosed
	}
	return nil
}
