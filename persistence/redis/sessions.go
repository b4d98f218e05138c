package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Sessions live in one hash per user, P s/<user>, with a field per device
// holding "<expiresAtMs>:" and the session as JSON. Expiry times come from
// Redis's clock, so every node agrees on them. The hash expires with its
// longest-lived session; Sessions skips and deletes the expired ones before
// that.

// sessionRecord is the JSON part of a stored session; the user and device
// ids are in the key and the field.
type sessionRecord struct {
	SessionID string            `json:"sid"`
	Platform  clientpb.Platform `json:"plat,omitempty"`
	Node      string            `json:"node"`
	ConnID    string            `json:"conn"`
}

// PutSession implements persistence.Sessions.
func (s *Store) PutSession(ctx context.Context, sess persistence.Session, ttl time.Duration) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: put session: %w", err)
	}
	defer s.gate.Leave()
	rec, err := json.Marshal(sessionRecord{SessionID: sess.SessionID, Platform: sess.Platform, Node: sess.Node, ConnID: sess.ConnID})
	if err != nil {
		return fmt.Errorf("redisstore: put session: %w", err)
	}
	ms := max((ttl+time.Millisecond-1)/time.Millisecond, 0)
	err = putSessionScript.Run(ctx, s.rdb, []string{s.k.sessions(sess.UserID)},
		sess.DeviceID, int64(ms), rec).Err()
	if err != nil {
		return fmt.Errorf("redisstore: put session of %q: %w", sess.UserID, err)
	}
	return nil
}

// DeleteSession implements persistence.Sessions.
func (s *Store) DeleteSession(ctx context.Context, userID, deviceID, sessionID string) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: delete session: %w", err)
	}
	defer s.gate.Leave()
	err := deleteSessionScript.Run(ctx, s.rdb, []string{s.k.sessions(userID)}, deviceID, sessionID).Err()
	if err != nil {
		return fmt.Errorf("redisstore: delete session of %q: %w", userID, err)
	}
	return nil
}

// Sessions implements persistence.Sessions. It deletes the expired sessions it
// comes across.
func (s *Store) Sessions(ctx context.Context, userID string) ([]persistence.Session, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: sessions: %w", err)
	}
	defer s.gate.Leave()
	pairs, err := sessionsScript.Run(ctx, s.rdb, []string{s.k.sessions(userID)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: sessions of %q: %w", userID, err)
	}
	out := make([]persistence.Session, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		sess, err := decodeSession(userID, pairs[i], pairs[i+1])
		if err != nil {
			return nil, fmt.Errorf("redisstore: sessions of %q: device %q: %w", userID, pairs[i], err)
		}
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b persistence.Session) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out, nil
}

func decodeSession(userID, deviceID, v string) (persistence.Session, error) {
	exp, rest, ok := strings.Cut(v, ":")
	if !ok {
		return persistence.Session{}, fmt.Errorf("corrupt session %q", v)
	}
	expiresAt, err := strconv.ParseUint(exp, 10, 64)
	if err != nil {
		return persistence.Session{}, fmt.Errorf("corrupt session expiry: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal([]byte(rest), &rec); err != nil {
		return persistence.Session{}, fmt.Errorf("corrupt session: %w", err)
	}
	return persistence.Session{
		UserID:      userID,
		DeviceID:    deviceID,
		SessionID:   rec.SessionID,
		Platform:    rec.Platform,
		Node:        rec.Node,
		ConnID:      rec.ConnID,
		ExpiresAtMs: expiresAt,
	}, nil
}
