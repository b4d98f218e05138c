package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"actorim/persistence"
)

// The webhook queue (persistence.HookQueue):
//
//	P hi/<id>    hash, a queued item: app, ev (event), p (payload),
//	             a (attempts), n (next at ms), c (created at ms), e (last error)
//	P hz         zset of queued ids, score next at ms (HookStats)
//	P hq/<app>   zset of the app's queued ids, score next at ms
//	P ha         zset of apps with queued items, score the earliest next at
//	             ms of the app's items (apps take turns in ClaimHooks by it)
//	P hx/<id>    string: the id was acked or dead-lettered; PX the dedup window
//	P hl         list of dead ids, newest first, at most HookDeadCap
//	P hk/<id>    hash, a dead item, fields as hi/
//
// Every operation is one script, so two nodes never claim the same item
// within a lease and the indexes never disagree. The scripts build key names
// from the prefix, hence no-cluster (like the append script).

var _ persistence.HookQueue = (*Store)(nil)

// hookFix is the scripts' helper that sets an app's score in P ha to its
// earliest item, or removes it when it has none.
const hookFix = `
local P = ARGV[1]
local function fix(app)
  local f = redis.call('ZRANGE', P..'hq/'..app, 0, 0, 'WITHSCORES')
  if f[1] then redis.call('ZADD', P..'ha', f[2], app) else redis.call('ZREM', P..'ha', app) end
end
`

// hookEnqueueScript: ARGV[1] prefix, then per item id, app, event, payload,
// next at, created at. Returns how many were queued.
var hookEnqueueScript = redis.NewScript(`#!lua flags=no-cluster` + hookFix + `
local added = 0
for i = 2, #ARGV, 6 do
  local id, app, next = ARGV[i], ARGV[i+1], ARGV[i+4]
  local ik = P..'hi/'..id
  if redis.call('EXISTS', ik) == 0 and redis.call('EXISTS', P..'hx/'..id) == 0 then
    redis.call('HSET', ik, 'app', app, 'ev', ARGV[i+2], 'p', ARGV[i+3], 'a', 0, 'n', next, 'c', ARGV[i+5], 'e', '')
    redis.call('ZADD', P..'hz', next, id)
    redis.call('ZADD', P..'hq/'..app, next, id)
    redis.call('ZADD', P..'ha', 'LT', next, app)
    added = added + 1
  end
end
return added
`)

// hookClaimScript: ARGV[1] prefix, [2] now, [3] lease, [4] limit, [5] per
// app, [6...] apps to skip. Returns {id, app, event, payload, attempts,
// next at, created at, last error} per item.
var hookClaimScript = redis.NewScript(`#!lua flags=no-cluster` + hookFix + `
local limit, per = tonumber(ARGV[4]), tonumber(ARGV[5])
local skip = {}
for i = 6, #ARGV do skip[ARGV[i]] = true end
local next = string.format('%d', tonumber(ARGV[2]) + tonumber(ARGV[3]))
local apps = redis.call('ZRANGE', P..'ha', '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, limit + #ARGV - 5)
local out = {}
for _, app in ipairs(apps) do
  if #out >= limit then break end
  if not skip[app] then
    local qk = P..'hq/'..app
    local ids = redis.call('ZRANGE', qk, '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, math.min(per, limit - #out))
    for _, id in ipairs(ids) do
      local ik = P..'hi/'..id
      local a = redis.call('HINCRBY', ik, 'a', 1)
      redis.call('HSET', ik, 'n', next)
      redis.call('ZADD', qk, next, id)
      redis.call('ZADD', P..'hz', next, id)
      local h = redis.call('HMGET', ik, 'ev', 'p', 'c', 'e')
      out[#out+1] = {id, app, h[1], h[2], a, next, h[3], h[4]}
    end
    fix(app)
  end
end
return out
`)

// hookFinishScript acks or dead-letters: ARGV[1] prefix, [2] id, [3] '1'
// to dead-letter, [4] last error, [5] dead cap, [6] dedup window ms.
var hookFinishScript = redis.NewScript(`#!lua flags=no-cluster` + hookFix + `
local id = ARGV[2]
local ik = P..'hi/'..id
local app = redis.call('HGET', ik, 'app')
if not app then return 0 end
redis.call('ZREM', P..'hz', id)
redis.call('ZREM', P..'hq/'..app, id)
fix(app)
redis.call('SET', P..'hx/'..id, '1', 'PX', ARGV[6])
if ARGV[3] ~= '1' then
  redis.call('DEL', ik)
  return 1
end
redis.call('HSET', ik, 'e', ARGV[4])
redis.call('RENAME', ik, P..'hk/'..id)
redis.call('LREM', P..'hl', 0, id)
redis.call('LPUSH', P..'hl', id)
while redis.call('LLEN', P..'hl') > tonumber(ARGV[5]) do
  redis.call('DEL', P..'hk/'..redis.call('RPOP', P..'hl'))
end
return 1
`)

// hookRetryScript: ARGV[1] prefix, [2] id, [3] next at, [4] last error.
var hookRetryScript = redis.NewScript(`#!lua flags=no-cluster` + hookFix + `
local id = ARGV[2]
local ik = P..'hi/'..id
local app = redis.call('HGET', ik, 'app')
if not app then return 0 end
redis.call('HSET', ik, 'n', ARGV[3], 'e', ARGV[4])
redis.call('ZADD', P..'hz', ARGV[3], id)
redis.call('ZADD', P..'hq/'..app, ARGV[3], id)
fix(app)
return 1
`)

// hookCall runs f inside the gate; what names the operation in errors.
func (s *Store) hookCall(ctx context.Context, what string, f func() error) error {
	if err := s.gate.Enter(ctx); err != nil {
		return fmt.Errorf("redisstore: %s: %w", what, err)
	}
	defer s.gate.Leave()
	if err := f(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", what, err)
	}
	return nil
}

// EnqueueHooks implements persistence.HookQueue.
func (s *Store) EnqueueHooks(ctx context.Context, items ...persistence.HookItem) (int, error) {
	for _, it := range items {
		if err := persistence.CheckHook(it); err != nil {
			return 0, fmt.Errorf("redisstore: enqueue hooks: %w", err)
		}
	}
	var added int
	err := s.hookCall(ctx, "enqueue hooks", func() error {
		if len(items) == 0 {
			return nil
		}
		now := time.Now().UnixMilli()
		args := make([]any, 0, 1+6*len(items))
		args = append(args, s.k.prefix)
		for _, it := range items {
			it = persistence.HookDefaults(it, now)
			args = append(args, it.ID, it.App, it.Event, it.Payload, it.NextAtMs, it.CreatedAtMs)
		}
		var err error
		added, err = hookEnqueueScript.Run(ctx, s.rdb, nil, args...).Int()
		return err
	})
	return added, err
}

// ClaimHooks implements persistence.HookQueue.
func (s *Store) ClaimHooks(ctx context.Context, c persistence.HookClaim) ([]persistence.HookItem, error) {
	var out []persistence.HookItem
	err := s.hookCall(ctx, "claim hooks", func() error {
		if c.Limit <= 0 {
			return nil
		}
		perApp := c.PerApp
		if perApp <= 0 {
			perApp = c.Limit
		}
		args := []any{s.k.prefix, c.NowMs, max(c.LeaseMs, 1), c.Limit, perApp}
		for _, app := range c.Skip {
			args = append(args, app)
		}
		res, err := hookClaimScript.Run(ctx, s.rdb, nil, args...).Slice()
		if err != nil {
			return err
		}
		for _, r := range res {
			f, ok := r.([]any)
			if !ok || len(f) != 8 {
				return fmt.Errorf("unexpected reply %v", r)
			}
			str := func(i int) string { v, _ := f[i].(string); return v }
			attempts, _ := f[4].(int64)
			out = append(out, persistence.HookItem{
				ID: str(0), App: str(1), Event: str(2), Payload: []byte(str(3)),
				Attempts: int(attempts), NextAtMs: parseInt(str(5)), CreatedAtMs: parseInt(str(6)),
				LastError: str(7),
			})
		}
		return nil
	})
	return out, err
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// AckHook implements persistence.HookQueue.
func (s *Store) AckHook(ctx context.Context, id string) error {
	return s.hookCall(ctx, "ack hook", func() error {
		return hookFinishScript.Run(ctx, s.rdb, nil, s.k.prefix, id, "0", "", persistence.HookDeadCap, persistence.HookDedupWindowMs).Err()
	})
}

// DeadLetterHook implements persistence.HookQueue.
func (s *Store) DeadLetterHook(ctx context.Context, id, lastErr string) error {
	return s.hookCall(ctx, "dead-letter hook", func() error {
		return hookFinishScript.Run(ctx, s.rdb, nil, s.k.prefix, id, "1", lastErr, persistence.HookDeadCap, persistence.HookDedupWindowMs).Err()
	})
}

// RetryHook implements persistence.HookQueue.
func (s *Store) RetryHook(ctx context.Context, id string, nextAtMs int64, lastErr string) error {
	return s.hookCall(ctx, "retry hook", func() error {
		return hookRetryScript.Run(ctx, s.rdb, nil, s.k.prefix, id, nextAtMs, lastErr).Err()
	})
}

// HookStats implements persistence.HookQueue.
func (s *Store) HookStats(ctx context.Context, nowMs int64) (persistence.HookStats, error) {
	var st persistence.HookStats
	err := s.hookCall(ctx, "hook stats", func() error {
		pipe := s.rdb.Pipeline()
		queued := pipe.ZCard(ctx, s.k.prefix+"hz")
		due := pipe.ZCount(ctx, s.k.prefix+"hz", "-inf", strconv.FormatInt(nowMs, 10))
		dead := pipe.LLen(ctx, s.k.prefix+"hl")
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		st = persistence.HookStats{Queued: queued.Val(), Due: due.Val(), Dead: dead.Val()}
		return nil
	})
	return st, err
}

// DeadHooks implements persistence.HookQueue.
func (s *Store) DeadHooks(ctx context.Context, limit int) ([]persistence.HookItem, error) {
	var out []persistence.HookItem
	err := s.hookCall(ctx, "dead hooks", func() error {
		if limit <= 0 {
			return nil
		}
		ids, err := s.rdb.LRange(ctx, s.k.prefix+"hl", 0, int64(limit-1)).Result()
		if err != nil || len(ids) == 0 {
			return err
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, s.k.prefix+"hk/"+id)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, c := range cmds {
			h := c.Val()
			if h["app"] == "" { // trimmed off the list meanwhile
				continue
			}
			attempts, _ := strconv.Atoi(h["a"])
			out = append(out, persistence.HookItem{
				ID: ids[i], App: h["app"], Event: h["ev"], Payload: []byte(h["p"]), Attempts: attempts,
				NextAtMs: parseInt(h["n"]), CreatedAtMs: parseInt(h["c"]), LastError: h["e"],
			})
		}
		return nil
	})
	return out, err
}
