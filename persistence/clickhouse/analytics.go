package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Analytics queries over the archive. Every one covers messages sent in
// [From, To), counts each message once however often it was archived (FINAL
// collapses rows of one msg_id, the sorting key, while reading; distinct
// counts of users need no dedup), and leaves out events (membership, recall, read and
// friend notices, content kind "event"), which are not messages people wrote.
// Times are UTC.

// Range is a half-open time range [From, To).
type Range struct {
	From, To time.Time
}

// Point is one bucket of a time series.
type Point struct {
	Start time.Time `json:"start"`
	Count uint64    `json:"count"`
}

// Count is a count under a key.
type Count struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// Latency summarises delivery latency: push acknowledged minus sent, per
// (message, user, device), in milliseconds.
type Latency struct {
	Deliveries uint64  `json:"deliveries"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p999_ms"`
	Max        float64 `json:"max_ms"`
}

// KindDay counts the messages of one content kind sent on one day, and
// their bytes: the file sizes of media (media_size), the content's length
// for the other kinds (text, emoji code, custom JSON).
type KindDay struct {
	Day      time.Time `json:"day"`
	Kind     string    `json:"kind"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
}

// Queries names the analytics queries Query runs.
var Queries = []string{"messages", "active-users", "top-conversations", "top-groups", "content-mix", "content-kinds",
	"conversation-share", "delivery-latency"}

// ErrUnknownQuery reports a query name Query does not know.
var ErrUnknownQuery = errors.New("clickhouse: unknown analytics query")

// ErrBadQuery reports invalid query parameters.
var ErrBadQuery = errors.New("clickhouse: bad analytics query")

// Query runs the named query (see Queries). bucket is "hour" or "day" for
// messages, "day" or "month" for active-users; limit bounds the top lists.
func (db *DB) Query(ctx context.Context, name string, r Range, bucket string, limit int) (any, error) {
	if !r.To.After(r.From) {
		return nil, fmt.Errorf("%w: empty time range %v .. %v", ErrBadQuery, r.From, r.To)
	}
	switch name {
	case "messages":
		return db.MessagesPer(ctx, r, bucket)
	case "active-users":
		return db.ActiveUsers(ctx, r, bucket)
	case "top-conversations":
		return db.TopConversations(ctx, r, limit, false)
	case "top-groups":
		return db.TopConversations(ctx, r, limit, true)
	case "content-mix":
		return db.ContentMix(ctx, r)
	case "content-kinds":
		return db.ContentKinds(ctx, r)
	case "conversation-share":
		return db.ConversationShare(ctx, r)
	case "delivery-latency":
		return db.DeliveryLatency(ctx, r)
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownQuery, name, Queries)
}

// where restricts messages to r: the dates prune partitions, the
// milliseconds are exact.
const where = ` sent_date >= toDate(?) AND sent_date <= toDate(?) AND sent_at_ms >= ? AND sent_at_ms < ? AND content_kind != 'event' `

func rangeArgs(r Range) []any {
	return []any{r.From.UTC().Format("2006-01-02"), r.To.UTC().Format("2006-01-02"),
		uint64(r.From.UnixMilli()), uint64(r.To.UnixMilli())}
}

// MessagesPer counts messages per hour or day.
func (db *DB) MessagesPer(ctx context.Context, r Range, bucket string) ([]Point, error) {
	var expr string
	switch bucket {
	case "hour", "":
		expr = "toStartOfHour(sent_at)"
	case "day":
		expr = "toDateTime(sent_date)"
	default:
		return nil, fmt.Errorf("%w: bucket %q (want hour or day)", ErrBadQuery, bucket)
	}
	return db.series(ctx, "SELECT "+expr+" AS b, count() FROM messages FINAL WHERE"+where+"GROUP BY b ORDER BY b", r)
}

// ActiveUsers counts distinct senders per day (DAU) or month (MAU).
func (db *DB) ActiveUsers(ctx context.Context, r Range, period string) ([]Point, error) {
	var expr string
	switch period {
	case "day", "":
		expr = "toDateTime(sent_date)"
	case "month":
		expr = "toDateTime(toStartOfMonth(sent_date))"
	default:
		return nil, fmt.Errorf("%w: period %q (want day or month)", ErrBadQuery, period)
	}
	return db.series(ctx, "SELECT "+expr+" AS b, uniqExact(from_user) FROM messages WHERE"+where+"GROUP BY b ORDER BY b", r)
}

// TopConversations lists the conversations (only groups when groups is set)
// with the most messages, most first.
func (db *DB) TopConversations(ctx context.Context, r Range, limit int, groups bool) ([]Count, error) {
	if limit <= 0 {
		limit = 10
	}
	cond := ""
	if groups {
		cond = "AND conversation_type = 2 "
	}
	return db.counts(ctx, "SELECT conversation_id, count() AS n FROM messages FINAL WHERE"+where+cond+
		"GROUP BY conversation_id ORDER BY n DESC, conversation_id LIMIT "+fmt.Sprint(limit), r)
}

// ContentMix counts messages per content kind (text, emoji, custom:<type>).
func (db *DB) ContentMix(ctx context.Context, r Range) ([]Count, error) {
	return db.counts(ctx, "SELECT if(content_kind = 'custom', concat('custom:', custom_type), content_kind) AS k, "+
		"count() AS n FROM messages FINAL WHERE"+where+"GROUP BY k ORDER BY n DESC, k", r)
}

// ContentKinds counts messages and their bytes per day and content kind
// (text, emoji, custom, image, audio, video, file), by day then kind.
func (db *DB) ContentKinds(ctx context.Context, r Range) ([]KindDay, error) {
	q := "SELECT toDateTime(sent_date) AS d, content_kind AS k, count(), " +
		"sum(if(k IN ('image', 'audio', 'video', 'file'), media_size, toUInt64(length(content)))) " +
		"FROM messages FINAL WHERE" + where + "GROUP BY d, k ORDER BY d, k"
	rs, err := db.conn.Query(ctx, q, rangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer rs.Close()
	out := []KindDay{}
	for rs.Next() {
		var c KindDay
		if err := rs.Scan(&c.Day, &c.Kind, &c.Messages, &c.Bytes); err != nil {
			return nil, err
		}
		c.Day = c.Day.UTC()
		out = append(out, c)
	}
	return out, rs.Err()
}

// ConversationShare counts messages in private, group and system conversations.
func (db *DB) ConversationShare(ctx context.Context, r Range) ([]Count, error) {
	return db.counts(ctx, "SELECT multiIf(conversation_type = 2, 'group', conversation_type = 3, 'system', 'private') AS k, "+
		"count() AS n FROM messages FINAL WHERE"+where+"GROUP BY k ORDER BY n DESC, k", r)
}

// DeliveryLatency summarises push-ack latency of messages sent in r, one
// delivery per (message, user, device): when a device acknowledged a message
// twice (it was pushed again after a reconnect), the row recorded last
// counts. The percentiles are exact: the latency at rank floor(level * n)
// (0-based) of the sorted latencies, as ClickHouse's quantilesExact defines
// them.
func (db *DB) DeliveryLatency(ctx context.Context, r Range) (Latency, error) {
	var l Latency
	q := `SELECT count(), quantilesExact(0.5, 0.9, 0.99, 0.999)(lat), max(lat) FROM (
		SELECT toInt64(acked_at_ms) - toInt64(sent_at_ms) AS lat
		FROM deliveries FINAL
		WHERE sent_date >= toDate(?) AND sent_date <= toDate(?) AND sent_at_ms >= ? AND sent_at_ms < ?)`
	row := db.conn.QueryRow(ctx, q, rangeArgs(r)...)
	var qs []int64
	var maxLat int64
	if err := row.Scan(&l.Deliveries, &qs, &maxLat); err != nil {
		return l, fmt.Errorf("clickhouse: delivery latency: %w", err)
	}
	if l.Deliveries > 0 && len(qs) == 4 {
		l.P50, l.P90, l.P99, l.P999, l.Max = float64(qs[0]), float64(qs[1]), float64(qs[2]), float64(qs[3]), float64(maxLat)
	}
	return l, nil
}

func (db *DB) series(ctx context.Context, q string, r Range) ([]Point, error) {
	rs, err := db.conn.Query(ctx, q, rangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer rs.Close()
	out := []Point{}
	for rs.Next() {
		var p Point
		if err := rs.Scan(&p.Start, &p.Count); err != nil {
			return nil, err
		}
		p.Start = p.Start.UTC()
		out = append(out, p)
	}
	return out, rs.Err()
}

func (db *DB) counts(ctx context.Context, q string, r Range) ([]Count, error) {
	rs, err := db.conn.Query(ctx, q, rangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer rs.Close()
	out := []Count{}
	for rs.Next() {
		var c Count
		if err := rs.Scan(&c.Key, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}
