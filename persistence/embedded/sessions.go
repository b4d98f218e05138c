package embedded

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"actorim/persistence"
)

// sessions keeps device sessions in memory: on a single node they describe
// sockets of this very process, so none can outlive a restart. A user has
// one or a few, so a small slice each is cheaper than a map each (this is
// memory held per idle connection).
type sessions struct {
	mu     sync.Mutex
	byUser map[string][]persistence.Session // ordered by device id
}

func (ss *sessions) put(s persistence.Session, ttl time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byUser == nil {
		ss.byUser = map[string][]persistence.Session{}
	}
	s.ExpiresAtMs = uint64(time.Now().Add(ttl).UnixMilli())
	list := ss.byUser[s.UserID]
	i := sort.Search(len(list), func(i int) bool { return list[i].DeviceID >= s.DeviceID })
	if i < len(list) && list[i].DeviceID == s.DeviceID {
		list[i] = s
		return
	}
	list = slices.Insert(list, i, s)
	ss.byUser[s.UserID] = slices.Clip(list)
}

func (ss *sessions) delete(user, device, session string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	list := ss.byUser[user]
	for i, s := range list {
		if s.DeviceID == device && s.SessionID == session {
			ss.set(user, slices.Delete(list, i, i+1))
			return
		}
	}
}

func (ss *sessions) list(user string) []persistence.Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := uint64(time.Now().UnixMilli())
	list := slices.DeleteFunc(ss.byUser[user], func(s persistence.Session) bool { return s.ExpiresAtMs <= now })
	ss.set(user, list)
	return slices.Clone(list)
}

// drop forgets every session of user.
func (ss *sessions) drop(user string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byUser, user)
}

func (ss *sessions) set(user string, list []persistence.Session) {
	if len(list) == 0 {
		delete(ss.byUser, user)
		return
	}
	ss.byUser[user] = list
}

// PutSession implements persistence.Sessions.
func (s *Store) PutSession(ctx context.Context, sess persistence.Session, ttl time.Duration) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: put session: %w", err)
	}
	defer s.gate.Leave()
	s.sessions.put(sess, ttl)
	return nil
}

// DeleteSession implements persistence.Sessions.
func (s *Store) DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("embedded: delete session: %w", err)
	}
	defer s.gate.Leave()
	s.sessions.delete(userID, deviceID, sessionID)
	return nil
}

// Sessions implements persistence.Sessions.
func (s *Store) Sessions(ctx context.Context, userID string) ([]persistence.Session, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: sessions: %w", err)
	}
	defer s.gate.Leave()
	return s.sessions.list(userID), nil
}
