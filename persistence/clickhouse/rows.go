package clickhouse

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Kinds of timeline items in the timeline table's kind column.
const (
	kindMessage = "message"
	// Events are messages whose content is an Event; their kind is the
	// event type's name, e.g. EVENT_MEMBER_JOINED.
)

// The INSERT statements; 18.16 needs the column lists.
const (
	insertMessages = "INSERT INTO messages (msg_id, conversation_id, conversation_type, from_user, to_id, from_device, " +
		"client_msg_id, sent_at_ms, sent_at, sent_date, content_kind, custom_type, content, " +
		"media_file_id, media_mime, media_size, media_sha256)"
	insertTimeline   = "INSERT INTO timeline (user_id, seq, conversation_id, msg_id, kind, at_ms, at_date)"
	insertEvents     = "INSERT INTO timeline_events (user_id, seq, conversation_id, kind, at_ms, at_date, entry_json)"
	insertDeliveries = "INSERT INTO deliveries (msg_id, user_id, device_id, sent_at_ms, acked_at_ms, sent_date)"
)

// messageColumns are the columns of the messages table.
type messageColumns struct {
	id, sentAtMs              []uint64
	conv, from, to, dev, cmid []string
	ctype                     []uint8
	sentAt, sentDate          []time.Time
	kind, customType, content []string
	// The media columns; empty (0) for other contents.
	mediaFile, mediaMIME, mediaSHA []string
	mediaSize                      []uint64
}

// rows holds a batch of outbox items as columns, ready to insert.
type rows struct {
	m messageColumns
	t struct {
		user, conv, kind []string
		seq, msgID, atMs []uint64
		atDate           []time.Time
	}
	e struct {
		user, conv, kind, json []string
		seq, atMs              []uint64
		atDate                 []time.Time
	}
	messages int
}

func (r *rows) reset() {
	m, t, e := &r.m, &r.t, &r.e
	m.id, m.sentAtMs, m.conv, m.from, m.to, m.dev, m.cmid = m.id[:0], m.sentAtMs[:0], m.conv[:0], m.from[:0], m.to[:0], m.dev[:0], m.cmid[:0]
	m.ctype, m.sentAt, m.sentDate, m.kind, m.customType, m.content = m.ctype[:0], m.sentAt[:0], m.sentDate[:0], m.kind[:0], m.customType[:0], m.content[:0]
	m.mediaFile, m.mediaMIME, m.mediaSHA, m.mediaSize = m.mediaFile[:0], m.mediaMIME[:0], m.mediaSHA[:0], m.mediaSize[:0]
	t.user, t.conv, t.kind, t.seq, t.msgID, t.atMs, t.atDate = t.user[:0], t.conv[:0], t.kind[:0], t.seq[:0], t.msgID[:0], t.atMs[:0], t.atDate[:0]
	e.user, e.conv, e.kind, e.json, e.seq, e.atMs, e.atDate = e.user[:0], e.conv[:0], e.kind[:0], e.json[:0], e.seq[:0], e.atMs[:0], e.atDate[:0]
	r.messages = 0
}

// add turns one outbox item into rows.
func (r *rows) add(it *persistence.OutboxItem) {
	at := time.UnixMilli(int64(it.AtMs)).UTC()
	day := at.Truncate(24 * time.Hour)
	if msg := it.Entry.GetMessage(); msg != nil {
		kind, customType, content := contentColumns(msg.GetContent())
		m := &r.m
		sentAt := time.UnixMilli(int64(msg.GetSentAtMs())).UTC()
		m.id = append(m.id, msg.GetId())
		m.conv = append(m.conv, msg.GetConversationId())
		m.ctype = append(m.ctype, conversationType(msg))
		m.from = append(m.from, msg.GetFrom())
		m.to = append(m.to, msg.GetTo())
		m.dev = append(m.dev, msg.GetFromDevice())
		m.cmid = append(m.cmid, msg.GetClientMsgId())
		m.sentAtMs = append(m.sentAtMs, msg.GetSentAtMs())
		m.sentAt = append(m.sentAt, sentAt.Truncate(time.Second))
		m.sentDate = append(m.sentDate, sentAt.Truncate(24*time.Hour))
		m.kind = append(m.kind, kind)
		m.customType = append(m.customType, customType)
		m.content = append(m.content, content)
		md, _ := clientpb.MediaOf(msg.GetContent())
		m.addMedia(md)
		r.messages++
		tkind := kindMessage
		if ev := msg.GetContent().GetEvent(); ev != nil {
			tkind = ev.GetType().String()
		}
		for _, tl := range it.Timelines {
			r.timeline(tl, msg.GetConversationId(), msg.GetId(), tkind, it.AtMs, day)
		}
		return
	}
	// Any other kind of item: kept whole as JSON, found by its position.
	kind, conv := itemKind(it.Entry)
	js, err := protojson.Marshal(it.Entry)
	if err != nil {
		js = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	for _, tl := range it.Timelines {
		r.timeline(tl, conv, 0, kind, it.AtMs, day)
		e := &r.e
		e.user = append(e.user, tl.User)
		e.seq = append(e.seq, tl.Seq)
		e.conv = append(e.conv, conv)
		e.kind = append(e.kind, kind)
		e.atMs = append(e.atMs, it.AtMs)
		e.atDate = append(e.atDate, day)
		e.json = append(e.json, string(js))
	}
}

// addMedia appends the media columns of one message; md is nil for a
// content that is not media.
func (m *messageColumns) addMedia(md *clientpb.Media) {
	m.mediaFile = append(m.mediaFile, md.GetFileId())
	m.mediaMIME = append(m.mediaMIME, md.GetMimeType())
	m.mediaSize = append(m.mediaSize, md.GetSize())
	m.mediaSHA = append(m.mediaSHA, md.GetSha256())
}

func (r *rows) timeline(tl persistence.TimelineSeq, conv string, msgID uint64, kind string, atMs uint64, day time.Time) {
	t := &r.t
	t.user = append(t.user, tl.User)
	t.seq = append(t.seq, tl.Seq)
	t.conv = append(t.conv, conv)
	t.msgID = append(t.msgID, msgID)
	t.kind = append(t.kind, kind)
	t.atMs = append(t.atMs, atMs)
	t.atDate = append(t.atDate, day)
}

// conversationType is 1 for private, 2 for group, 3 for system; unset means
// private, as in the protocol.
func conversationType(m *clientpb.Message) uint8 {
	t := m.GetConversationType()
	if t == clientpb.ConversationType_CONVERSATION_TYPE_UNSPECIFIED {
		return uint8(clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE)
	}
	return uint8(t)
}

// contentColumns returns the kind, custom type and body of a content. The
// kind is the name of the content's oneof field (text, emoji, custom, event,
// image, audio, video, file); the body of a message-typed kind (an event,
// a media) is its protojson, which contentOf turns back into the content.
func contentColumns(c *clientpb.Content) (kind, customType, body string) {
	if c == nil || c.GetKind() == nil {
		return "", "", ""
	}
	switch k := c.GetKind().(type) {
	case *clientpb.Content_Text:
		return "text", "", k.Text
	case *clientpb.Content_Emoji:
		return "emoji", "", k.Emoji
	case *clientpb.Content_Custom:
		return "custom", k.Custom.GetType(), k.Custom.GetJson()
	}
	// Events and kinds added later: the oneof field's name and its JSON.
	fd := c.ProtoReflect().WhichOneof(c.ProtoReflect().Descriptor().Oneofs().ByName("kind"))
	if fd == nil {
		return "", "", ""
	}
	v := c.ProtoReflect().Get(fd)
	if fd.Kind() == protoreflect.MessageKind {
		js, _ := protojson.Marshal(v.Message().Interface())
		return string(fd.Name()), "", string(js)
	}
	return string(fd.Name()), "", v.String()
}

// itemKind names the set field of an entry's item oneof and finds a
// conversation_id in it, if it has one.
func itemKind(e *clientpb.Entry) (kind, conv string) {
	r := e.ProtoReflect()
	od := r.Descriptor().Oneofs().ByName("item")
	if od == nil {
		return "unknown", ""
	}
	fd := r.WhichOneof(od)
	if fd == nil {
		return "unknown", ""
	}
	if fd.Kind() == protoreflect.MessageKind {
		m := r.Get(fd).Message()
		if cf := m.Descriptor().Fields().ByName("conversation_id"); cf != nil && cf.Kind() == protoreflect.StringKind {
			conv = m.Get(cf).String()
		}
	}
	return string(fd.Name()), conv
}

// insert writes the batch: messages first, then the timeline positions and
// events. A failure leaves some tables written and others not; the whole
// batch is sent again and the copies deduplicated.
func (db *DB) insert(ctx context.Context, r *rows) error {
	if len(r.m.id) > 0 {
		m := &r.m
		if err := db.sendColumns(ctx, insertMessages, m.id, m.conv, m.ctype, m.from, m.to, m.dev, m.cmid,
			m.sentAtMs, m.sentAt, m.sentDate, m.kind, m.customType, m.content,
			m.mediaFile, m.mediaMIME, m.mediaSize, m.mediaSHA); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
	}
	if len(r.t.user) > 0 {
		t := &r.t
		if err := db.sendColumns(ctx, insertTimeline, t.user, t.seq, t.conv, t.msgID, t.kind, t.atMs, t.atDate); err != nil {
			return fmt.Errorf("insert timeline: %w", err)
		}
	}
	if len(r.e.user) > 0 {
		e := &r.e
		if err := db.sendColumns(ctx, insertEvents, e.user, e.seq, e.conv, e.kind, e.atMs, e.atDate, e.json); err != nil {
			return fmt.Errorf("insert timeline events: %w", err)
		}
	}
	return nil
}

// sendColumns inserts whole columns at once, which is much cheaper than
// appending row by row.
func (db *DB) sendColumns(ctx context.Context, query string, cols ...any) error {
	b, err := db.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			_ = b.Abort()
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return b.Send()
}
