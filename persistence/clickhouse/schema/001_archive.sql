-- actorim's message archive. Valid on ClickHouse 18.16 and on current
-- releases: no DateTime64, Map, Bool or LowCardinality; times are UInt64
-- milliseconds beside a DateTime (seconds, server time zone) and a Date used
-- for partitioning. `imnode migrate` applies every file of this directory in
-- name order, inside the configured database; every statement is idempotent.
--
-- The archiver delivers at least once, so a row can arrive twice. Each table
-- is a ReplacingMergeTree whose sorting key identifies the row, so merges
-- drop the copies eventually; queries that must be exact deduplicate at query
-- time (uniqExact(msg_id), LIMIT 1 BY key, or FINAL); see docs/analytics.md.

-- One row per message.
CREATE TABLE IF NOT EXISTS messages
(
    msg_id            UInt64,
    conversation_id   String,
    conversation_type UInt8,   -- 1 private, 2 group
    from_user         String,
    to_id             String,  -- recipient user, or group id
    from_device       String,
    client_msg_id     String,
    sent_at_ms        UInt64,
    sent_at           DateTime,
    sent_date         Date,
    content_kind      String,  -- text, emoji, custom, event; image, audio, video, file (002_media.sql)
    custom_type       String,  -- Custom.type for custom content
    content           String   -- the text, the emoji code, or the custom JSON
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(sent_date)
ORDER BY msg_id;

-- One row per timeline position: user_id's timeline holds, at seq, the
-- message msg_id (0 for an event, whose body is in timeline_events).
CREATE TABLE IF NOT EXISTS timeline
(
    user_id         String,
    seq             UInt64,
    conversation_id String,
    msg_id          UInt64,
    kind            String,    -- message, or the event's kind
    at_ms           UInt64,
    at_date         Date
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at_date)
ORDER BY (user_id, seq);

-- Timeline items other than messages (recalls, reads, membership and friend
-- changes, ...): the whole clientpb.Entry as protojson, so that a new kind of
-- event needs no schema change.
CREATE TABLE IF NOT EXISTS timeline_events
(
    user_id         String,
    seq             UInt64,
    conversation_id String,
    kind            String,
    at_ms           UInt64,
    at_date         Date,
    entry_json      String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at_date)
ORDER BY (user_id, seq);

-- Push acknowledgements, best effort: one row per (message, user, device)
-- the device acknowledged. Latency is acked_at_ms - sent_at_ms.
CREATE TABLE IF NOT EXISTS deliveries
(
    msg_id      UInt64,
    user_id     String,
    device_id   String,
    sent_at_ms  UInt64,
    acked_at_ms UInt64,
    sent_date   Date
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(sent_date)
ORDER BY (msg_id, user_id, device_id);
