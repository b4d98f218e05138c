package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically: Redis executes nothing else
// meanwhile, which is what lets several imnode processes share one Redis
// without two of them ever deciding the same seq, msg id or dedup key.
//
// Every script starts with a shebang so that Redis checks maxmemory before
// running it rather than at its first write: a script that ran out of memory
// half way would leave half an append behind, since Redis does not roll
// scripts back. no-cluster states that keys of many users are touched at
// once (see keys); the media scripts (media.go) are Cluster safe and carry
// no flag. Redis 7.0 or newer is needed for the shebang.
//
// Lua numbers are doubles. Seqs, msg ids and millisecond times stay far below
// 2^53, where doubles are exact; numbers are turned into strings with
// string.format('%d') so that no exponent notation ever reaches a key or a
// member.

// appendScript appends one message; see Store.Append.
//
//	KEYS[1]                       P m
//	KEYS[3i-1], KEYS[3i], KEYS[3i+1]  for timeline i (1-based):
//	                              P a/<user>, P t/<user>, P c/<user>/<conversation>
//	KEYS[#KEYS]                   P d/<sender>/<clientMsgID>, present when #KEYS % 3 == 2
//	ARGV[1]                       the Message marshalled without id and time
//	ARGV[2]                       ttl of the dedup record in ms, 0 for none
//	ARGV[3]                       '1' when KEYS[#KEYS] is the outbox stream
//	                              (P o, see outbox.go) and ARGV[4] the
//	                              timelines' user ids joined by spaces
//
// It returns {0, msg id, sent at, seq of timeline 1, ...} for a new message,
// {1, member} for a duplicate (the original's entry in the first requested
// timeline that holds it), {2, i} when timeline i has no account and {3, msg
// id} when the original is in none of the requested timelines.
var appendScript = redis.NewScript(`#!lua flags=no-cluster
local nk = #KEYS
local outbox = nil
if ARGV[3] == '1' then outbox = KEYS[nk]; nk = nk - 1 end
local n = math.floor((nk - 1) / 3)
local dedup = nil
if nk % 3 == 2 then dedup = KEYS[nk] end

if dedup then
  local ref = redis.call('GET', dedup)
  if ref then
    local seq, id = string.match(ref, '^(%d+):(%d+)$')
    for i = 1, n do
      local e = redis.call('ZRANGE', KEYS[3*i], seq, seq, 'BYSCORE')[1]
      if e and string.match(e, '^%d+:(%d+):') == id then
        return {1, e}
      end
    end
    return {3, tonumber(id)}
  end
end

-- Check everything before assigning anything: a rejected append consumes
-- no seq, no msg id and no dedup key.
for i = 1, n do
  if redis.call('EXISTS', KEYS[3*i-1]) == 0 then
    return {2, i}
  end
end

local id = redis.call('HINCRBY', KEYS[1], 'id', 1)
-- One clock for all nodes: Redis's. It may step back (NTP, failover to a
-- replica on another host), so SentAtMs never drops below the last one
-- handed out and stays in msg id order.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[1], 'ts') or 0)
if now > last then
  redis.call('HSET', KEYS[1], 'ts', string.format('%d', now))
else
  now = last
end

local out = {0, id, now}
local tail = string.format(':%d:%d:', id, now) .. ARGV[1]
for i = 1, n do
  local seq = string.format('%d', redis.call('HINCRBY', KEYS[3*i-1], 'seq', 1))
  redis.call('ZADD', KEYS[3*i], seq, seq .. tail)
  redis.call('ZADD', KEYS[3*i+1], seq, seq)
  out[i+3] = tonumber(seq)
end
if dedup then
  local ref = string.format('%d:%d', out[4], id)
  if ARGV[2] == '0' then
    redis.call('SET', dedup, ref)
  else
    redis.call('SET', dedup, ref, 'PX', ARGV[2])
  end
end
if outbox then
  local seqs = {}
  for i = 1, n do seqs[i] = string.format('%d', out[i+3]) end
  redis.call('XADD', outbox, '*', 'h', string.format('%d:%d', id, now), 'b', ARGV[1],
    'u', ARGV[4], 's', table.concat(seqs, ' '))
end
return out
`)

// createAccountScript creates an account unless one exists; it returns 1 when
// it did. KEYS[1] is P a/<user>, KEYS[2] P users (the sorted set of user
// ids, internal '#' accounts left out), KEYS[3] P internal (those), ARGV
// the password hash, created-at ms and user id.
var createAccountScript = redis.NewScript(`#!lua flags=no-cluster
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'pw', ARGV[1], 'ct', ARGV[2])
if string.sub(ARGV[3], 1, 1) ~= '#' then
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
else
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
end
return 1
`)

// readConversationScript returns, newest first, up to ARGV[2] timeline
// members of KEYS[2] (P t/<user>) that the index KEYS[1] (P c/<user>/<conv>)
// lists with a seq at or below the score bound ARGV[1] ("+inf" or "(<seq>").
var readConversationScript = redis.NewScript(`#!lua flags=no-writes,no-cluster
local seqs = redis.call('ZRANGE', KEYS[1], ARGV[1], '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, ARGV[2])
local out = {}
for i, seq in ipairs(seqs) do
  local e = redis.call('ZRANGE', KEYS[2], seq, seq, 'BYSCORE')[1]
  if not e then
    return redis.error_reply('entry ' .. seq .. ' of ' .. KEYS[2] .. ' indexed but missing')
  end
  out[i] = e
end
return out
`)

// expireAtLatest is Lua shared by the session scripts: it makes the session
// hash KEYS[1] expire with its longest-lived session. Redis 7.0 has no
// per-field expiry, so Sessions also skips and deletes expired fields.
const expireAtLatest = `
local function expire_at_latest()
  local latest = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
    local exp = tonumber(string.match(v, '^(%d+):'))
    if exp and exp > latest then latest = exp end
  end
  if latest > 0 then
    redis.call('PEXPIREAT', KEYS[1], string.format('%d', latest))
  end
end
`

// putSessionScript stores a device's session, KEYS[1] being P s/<user> and
// ARGV the device id, the ttl in ms and the session as JSON. It returns the
// expiry it stored.
var putSessionScript = redis.NewScript(`#!lua flags=no-cluster
` + expireAtLatest + `
local t = redis.call('TIME')
local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:', exp) .. ARGV[3])
expire_at_latest()
return exp
`)

// deleteSessionScript deletes the session of device ARGV[1] in KEYS[1] if
// its session id is ARGV[2], so that a newer session of the same device
// stays; it returns 1 when it deleted.
var deleteSessionScript = redis.NewScript(`#!lua flags=no-cluster
` + expireAtLatest + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return 0
end
local sep = string.find(v, ':', 1, true)
local ok, rec = pcall(cjson.decode, string.sub(v, (sep or 0) + 1))
if ok and type(rec) == 'table' and rec.sid == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  expire_at_latest()
  return 1
end
return 0
`)

// sessionsScript returns the unexpired sessions in KEYS[1] as device id,
// value pairs and deletes the expired ones, by Redis's clock, the one
// putSessionScript set them with.
var sessionsScript = redis.NewScript(`#!lua flags=no-cluster
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local exp = tonumber(string.match(all[i+1], '^(%d+):'))
  if exp and exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out+1] = all[i]
    out[#out+1] = all[i+1]
  end
end
return out
`)

var allScripts = []*redis.Script{
	appendScript, createAccountScript, readConversationScript,
	putSessionScript, deleteSessionScript, sessionsScript,
	acquireBlobScript, releaseBlobScript, chargeMediaScript,
	putMediaScript, markMediaSentScript, deleteUnsentMediaScript,
	indexNameScript,
}
