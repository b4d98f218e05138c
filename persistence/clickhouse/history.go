package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// HotStore is what History decorates: a whole store whose timelines shed
// archived entries (persistence.Trimmer).
type HotStore interface {
	persistence.Store
	persistence.Trimmer
}

// History is a persistence.Store whose reads (persistence.TimelineReader)
// reach past what the hot store keeps into the archive. Everything but
// ReadTimeline and ReadConversation goes to the hot store unchanged.
//
// The hot store keeps, per user, every entry from its trim floor on (see
// persistence.Trimmer); the Trimmer only moves a floor past entries the
// archive holds. So a timeline read that finds its first entries missing,
// and a conversation read that runs out above the floor, continue in the
// archive.
type History struct {
	persistence.Store
	trim persistence.Trimmer
	db   *DB
	log  *slog.Logger
}

var _ persistence.Store = (*History)(nil)

// NewHistory decorates hot with reads from db.
func NewHistory(hot HotStore, db *DB, logger *slog.Logger) *History {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &History{Store: hot, trim: hot, db: db, log: logger}
}

// Hot returns the decorated store.
func (h *History) Hot() persistence.Store { return h.Store }

// ReadTimeline implements persistence.TimelineReader.
func (h *History) ReadTimeline(ctx context.Context, userID string, afterSeq uint64, limit int) ([]*clientpb.Entry, error) {
	hot, err := h.Store.ReadTimeline(ctx, userID, afterSeq, limit)
	if err != nil || limit <= 0 || len(hot) == 0 || hot[0].GetSeq() == afterSeq+1 {
		// Hot reads are gapless, and the newest entry is never trimmed:
		// an empty read means there is nothing after afterSeq.
		return hot, err
	}
	// The entries from afterSeq+1 up to hot[0] were trimmed.
	first := hot[0].GetSeq()
	old, err := h.db.readTimeline(ctx, userID, afterSeq, first, min(limit, int(first-afterSeq-1)))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read archived timeline of %q: %w", userID, err)
	}
	// Return only a gapless run: what the archive has from afterSeq+1 on.
	n := 0
	for n < len(old) && old[n].GetSeq() == afterSeq+1+uint64(n) {
		n++
	}
	if n < len(old) || (n < limit && afterSeq+1+uint64(n) != first) {
		h.log.Warn("archive is missing timeline entries the hot store trimmed",
			"user", userID, "after", afterSeq, "archived", n, "hot_from", first)
	}
	if n == 0 {
		return hot, nil
	}
	out := old[:n]
	if len(out) < limit && afterSeq+1+uint64(n) == first {
		out = append(out, hot[:min(len(hot), limit-len(out))]...)
	}
	return out, nil
}

// ReadConversation implements persistence.TimelineReader.
func (h *History) ReadConversation(ctx context.Context, userID, conversationID string, beforeSeq uint64, limit int) ([]*clientpb.Entry, error) {
	hot, err := h.Store.ReadConversation(ctx, userID, conversationID, beforeSeq, limit)
	if err != nil || len(hot) >= limit {
		return hot, err
	}
	floor, err := h.trim.TrimFloor(ctx, userID)
	if err != nil || floor <= 1 {
		return hot, err
	}
	bound := floor
	if beforeSeq != 0 && beforeSeq < bound {
		bound = beforeSeq
	}
	old, err := h.db.readConversation(ctx, userID, conversationID, bound, limit-len(hot))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read archived conversation %q of %q: %w", conversationID, userID, err)
	}
	return append(hot, old...), nil
}

// timelineRow is one position read from the timeline table.
type timelineRow struct {
	seq, msgID uint64
}

// readTimeline returns up to limit archived entries of user with seq in
// (after, before), oldest first.
func (db *DB) readTimeline(ctx context.Context, user string, after, before uint64, limit int) ([]*clientpb.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	return db.readEntries(ctx, user,
		"SELECT seq, msg_id FROM timeline WHERE user_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT 1 BY seq LIMIT ?",
		user, after, before, limit)
}

// readConversation returns up to limit archived entries of user's
// conversation with seq below before, newest first.
func (db *DB) readConversation(ctx context.Context, user, conv string, before uint64, limit int) ([]*clientpb.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	return db.readEntries(ctx, user,
		"SELECT seq, msg_id FROM timeline WHERE user_id = ? AND conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1 BY seq LIMIT ?",
		user, conv, before, limit)
}

// readEntries runs a query of (seq, msg_id) positions of user and builds
// their entries, in the query's order.
func (db *DB) readEntries(ctx context.Context, user, query string, args ...any) ([]*clientpb.Entry, error) {
	rs, err := db.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var pos []timelineRow
	for rs.Next() {
		var r timelineRow
		if err := rs.Scan(&r.seq, &r.msgID); err != nil {
			_ = rs.Close()
			return nil, err
		}
		pos = append(pos, r)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	_ = rs.Close()
	if len(pos) == 0 {
		return nil, nil
	}
	var ids, eventSeqs []string
	for _, p := range pos {
		if p.msgID != 0 {
			ids = append(ids, strconv.FormatUint(p.msgID, 10))
		} else {
			eventSeqs = append(eventSeqs, strconv.FormatUint(p.seq, 10))
		}
	}
	msgs, err := db.readMessages(ctx, ids)
	if err != nil {
		return nil, err
	}
	others, err := db.readOtherItems(ctx, user, eventSeqs)
	if err != nil {
		return nil, err
	}
	out := make([]*clientpb.Entry, 0, len(pos))
	for _, p := range pos {
		if p.msgID != 0 {
			if m, ok := msgs[p.msgID]; ok {
				out = append(out, &clientpb.Entry{Seq: p.seq, Item: &clientpb.Entry_Message{Message: m}})
			}
			continue
		}
		if e, ok := others[p.seq]; ok {
			e.Seq = p.seq
			out = append(out, e)
		}
	}
	return out, nil
}

func (db *DB) readMessages(ctx context.Context, ids []string) (map[uint64]*clientpb.Message, error) {
	out := make(map[uint64]*clientpb.Message, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rs, err := db.conn.Query(ctx, "SELECT msg_id, conversation_id, conversation_type, from_user, to_id, from_device, "+
		"client_msg_id, sent_at_ms, content_kind, custom_type, content FROM messages WHERE msg_id IN ("+
		strings.Join(ids, ",")+") LIMIT 1 BY msg_id")
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var (
			m                      clientpb.Message
			ctype                  uint8
			kind, customType, body string
		)
		if err := rs.Scan(&m.Id, &m.ConversationId, &ctype, &m.From, &m.To, &m.FromDevice,
			&m.ClientMsgId, &m.SentAtMs, &kind, &customType, &body); err != nil {
			return nil, err
		}
		m.ConversationType = clientpb.ConversationType(ctype)
		m.Content = contentOf(kind, customType, body)
		out[m.Id] = &m
	}
	return out, rs.Err()
}

func (db *DB) readOtherItems(ctx context.Context, user string, seqs []string) (map[uint64]*clientpb.Entry, error) {
	out := make(map[uint64]*clientpb.Entry, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	rs, err := db.conn.Query(ctx, "SELECT seq, entry_json FROM timeline_events WHERE user_id = ? AND seq IN ("+
		strings.Join(seqs, ",")+") LIMIT 1 BY seq", user)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var (
			seq uint64
			js  string
		)
		if err := rs.Scan(&seq, &js); err != nil {
			return nil, err
		}
		e := new(clientpb.Entry)
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(js), e); err != nil {
			return nil, fmt.Errorf("archived entry %d of %q: %w", seq, user, err)
		}
		out[seq] = e
	}
	return out, rs.Err()
}

// contentOf rebuilds a Content from the messages table's columns; it is the
// inverse of contentColumns.
func contentOf(kind, customType, body string) *clientpb.Content {
	c := new(clientpb.Content)
	switch kind {
	case "":
		return c
	case "custom":
		c.Kind = &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: customType, Json: body}}
		return c
	}
	r := c.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(kind))
	if fd == nil {
		return c
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		r.Set(fd, protoreflect.ValueOfString(body))
	case protoreflect.MessageKind:
		m := r.NewField(fd).Message()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(body), m.Interface()); err == nil {
			r.Set(fd, protoreflect.ValueOfMessage(m))
		}
	}
	return c
}
