package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"actorim/persistence"
)

// State keys, beside those in keys.go:
//
//	P x/<key>   string, an opaque state value
//	P y/<set>   set
//	P users     sorted set of every user id (score 0, ordered by id)
//	P internal  sorted set of every internal account id ('#'), likewise
//	P internal-indexed  set once the accounts created before "internal"
//	            existed were added to it (Open)

const maxStateKey = 512

func (k keys) state(key string) string { return k.prefix + "x/" + key }
func (k keys) set(name string) string  { return k.prefix + "y/" + name }
func (k keys) users() string           { return k.prefix + "users" }
func (k keys) internal() string        { return k.prefix + "internal" }
func (k keys) internalIndexed() string { return k.prefix + "internal-indexed" }

func checkStateKey(key string) error {
	if key == "" || len(key) > maxStateKey {
		return fmt.Errorf("redisstore: invalid state key %q", key)
	}
	return nil
}

// GetState implements persistence.Records.
func (s *Store) GetState(ctx context.Context, key string) ([]byte, error) {
	if err := checkStateKey(key); err != nil {
		return nil, err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: get state: %w", err)
	}
	defer s.gate.Leave()
	v, err := s.rdb.Get(ctx, s.k.state(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: state %q: %w", key, persistence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get state %q: %w", key, err)
	}
	return v, nil
}

// PutState implements persistence.Records.
func (s *Store) PutState(ctx context.Context, key string, value []byte) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: put state: %w", err)
	}
	defer s.gate.Leave()
	if err := s.rdb.Set(ctx, s.k.state(key), value, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: put state %q: %w", key, err)
	}
	return nil
}

// DeleteState implements persistence.Records.
func (s *Store) DeleteState(ctx context.Context, key string) error {
	if err := checkStateKey(key); err != nil {
		return err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: delete state: %w", err)
	}
	defer s.gate.Leave()
	if err := s.rdb.Del(ctx, s.k.state(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: delete state %q: %w", key, err)
	}
	return nil
}

// AddToSet implements persistence.Records.
func (s *Store) AddToSet(ctx context.Context, set, member string) error {
	if err := checkStateKey(set); err != nil {
		return err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: add to set: %w", err)
	}
	defer s.gate.Leave()
	if err := s.rdb.SAdd(ctx, s.k.set(set), member).Err(); err != nil {
		return fmt.Errorf("redisstore: add to set %q: %w", set, err)
	}
	return nil
}

// SetMembers implements persistence.Records.
func (s *Store) SetMembers(ctx context.Context, set string) ([]string, error) {
	if err := checkStateKey(set); err != nil {
		return nil, err
	}
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: set members: %w", err)
	}
	defer s.gate.Leave()
	out, err := s.rdb.SMembers(ctx, s.k.set(set)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: set members %q: %w", set, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	slices.Sort(out)
	return out, nil
}

// InternalAccounts implements persistence.Accounts.
func (s *Store) InternalAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: internal accounts: %w", err)
	}
	defer s.gate.Leave()
	lower := "-"
	if after != "" {
		lower = "(" + after
	}
	out, err := s.rdb.ZRangeByLex(ctx, s.k.internal(), &redis.ZRangeBy{Min: lower, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: internal accounts: %w", err)
	}
	return out, nil
}

// indexInternal adds the internal accounts created before the "internal"
// index existed to it, once per store (a SCAN of the account keys). A
// crash midway repeats it at the next Open; adding again changes nothing.
func (s *Store) indexInternal(ctx context.Context) error {
	done, err := s.rdb.Exists(ctx, s.k.internalIndexed()).Result()
	if err != nil || done == 1 {
		return err
	}
	pattern := globEscape(s.k.account("#")) + "*"
	strip := len(s.k.account(""))
	iter := s.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []redis.Z
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.rdb.ZAdd(ctx, s.k.internal(), batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, redis.Z{Member: iter.Val()[strip:]})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.k.internalIndexed(), "1", 0).Err()
}

// Users implements persistence.Accounts.
func (s *Store) Users(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: users: %w", err)
	}
	defer s.gate.Leave()
	lower := "-"
	if after != "" {
		lower = "(" + after
	}
	out, err := s.rdb.ZRangeByLex(ctx, s.k.users(), &redis.ZRangeBy{Min: lower, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: users: %w", err)
	}
	return out, nil
}
