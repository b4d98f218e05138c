package redisstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"actorim/persistence"
)

// Directory keys, beside those in keys.go (the braces keep a scope's two
// keys in one slot of a Redis Cluster):
//
//	P n/{<scope>}   sorted set, score 0: "<name>\x00<user>", in name order
//	P N/{<scope>}   hash: user -> name (the user's entry, to replace it)

func (k keys) dirNames(scope string) string { return k.prefix + "n/{" + scope + "}" }
func (k keys) dirUsers(scope string) string { return k.prefix + "N/{" + scope + "}" }

// indexNameScript replaces the entry of user ARGV[1] in KEYS[1] (P n/) and
// KEYS[2] (P N/) by name ARGV[2], or removes it when ARGV[2] is empty.
var indexNameScript = redis.NewScript(`#!lua
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  redis.call('ZREM', KEYS[1], old .. '\0' .. ARGV[1])
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 0, ARGV[2] .. '\0' .. ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
`)

// IndexName implements persistence.Directory.
func (s *Store) IndexName(ctx context.Context, scope, user, name string) error {
	if err := persistence.CheckIndexName(scope, user, name); err != nil {
		return fmt.Errorf("redisstore: index name: %w", err)
	}
	return s.dirWrite(ctx, "index name", scope, user, name)
}

// RemoveName implements persistence.Directory.
func (s *Store) RemoveName(ctx context.Context, scope, user string) error {
	if err := persistence.CheckRemoveName(scope, user); err != nil {
		return fmt.Errorf("redisstore: remove name: %w", err)
	}
	return s.dirWrite(ctx, "remove name", scope, user, "")
}

func (s *Store) dirWrite(ctx context.Context, what, scope, user, name string) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: %s: %w", what, err)
	}
	defer s.gate.Leave()
	err := indexNameScript.Run(ctx, s.rdb, []string{s.k.dirNames(scope), s.k.dirUsers(scope)}, user, name).Err()
	if err != nil {
		return fmt.Errorf("redisstore: %s %q: %w", what, user, err)
	}
	return nil
}

// SearchNames implements persistence.Directory: one ZRANGEBYLEX.
func (s *Store) SearchNames(ctx context.Context, scope, prefix string, after persistence.Name, limit int) ([]persistence.Name, error) {
	if err := persistence.CheckDirectory(scope, "", prefix); err != nil {
		return nil, fmt.Errorf("redisstore: search names: %w", err)
	}
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: search names: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 {
		return nil, nil
	}
	lower := "[" + prefix
	if after.User != "" {
		if a := after.Name + "\x00" + after.User; a >= prefix {
			lower = "(" + a
		}
	}
	upper := "[" + prefix + "\xff" // no UTF-8 byte is 0xff
	members, err := s.rdb.ZRangeByLex(ctx, s.k.dirNames(scope), &redis.ZRangeBy{Min: lower, Max: upper, Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: search names: %w", err)
	}
	out := make([]persistence.Name, 0, len(members))
	for _, m := range members {
		i := strings.LastIndexByte(m, 0)
		if i < 0 {
			continue
		}
		out = append(out, persistence.Name{Name: m[:i], User: m[i+1:]})
	}
	return out, nil
}
