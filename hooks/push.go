package hooks

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Offline push: each recipient's user grain decides that a message is to be
// pushed to some of its devices (the grain knows which are online, muted
// conversations and the unread count) and hands a PushNote to the node's
// PushBatcher. The batcher gathers the notes of a short window, merges the
// recipients of one message into one push.offline event (a group message to
// 500 offline members is one request, not 500) and queues the events for
// the Deliverer in one write.

// PushMessage is what a push.offline event says of its message.
type PushMessage struct {
	MessageID        string `json:"message_id"` // decimal, like MessageData.ID
	ConversationID   string `json:"conversation_id"`
	ConversationType string `json:"conversation_type"` // "private" or "group"
	From             string `json:"from"`
	SentAtMs         int64  `json:"sent_at_ms"`
	// Kind is the content's kind: "text", "emoji", "image", "audio",
	// "video", "file" or "custom".
	Kind string `json:"kind"`
	// Preview is the start of a text (or emoji) message, at most
	// PreviewRunes characters, when the app's settings show previews.
	Preview string `json:"preview,omitempty"`
}

// PreviewRunes bounds a push's preview.
const PreviewRunes = 100

// PushMessageOf describes m for a push; preview says whether to include
// the start of its text.
func PushMessageOf(m *clientpb.Message, preview bool) PushMessage {
	pm := PushMessage{
		MessageID: strconv.FormatUint(m.GetId(), 10), ConversationID: m.GetConversationId(),
		ConversationType: "private", From: m.GetFrom(), SentAtMs: int64(m.GetSentAtMs()),
	}
	if m.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		pm.ConversationType = "group"
	}
	c := m.GetContent()
	text := ""
	switch k := c.GetKind().(type) {
	case *clientpb.Content_Text:
		pm.Kind, text = "text", k.Text
	case *clientpb.Content_Emoji:
		pm.Kind, text = "emoji", k.Emoji
	case *clientpb.Content_Image:
		pm.Kind = "image"
	case *clientpb.Content_Audio:
		pm.Kind = "audio"
	case *clientpb.Content_Video:
		pm.Kind = "video"
	case *clientpb.Content_File:
		pm.Kind = "file"
	case *clientpb.Content_Custom:
		pm.Kind = "custom"
	}
	if preview {
		pm.Preview = truncateRunes(text, PreviewRunes)
	}
	return pm
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// PushToken is one device's push registration.
type PushToken struct {
	Device   string `json:"device"`
	Platform string `json:"platform,omitempty"` // "web", "ios", "android", "desktop"
	Provider string `json:"provider"`           // "apns", "fcm" or any name the app uses
	Token    string `json:"token"`
}

// PushRecipient is a user to notify and where.
type PushRecipient struct {
	User   string      `json:"user"`
	Tokens []PushToken `json:"tokens"`
	// Badge is the user's unread total over all conversations, this
	// message included.
	Badge int `json:"badge"`
	// Count is how many messages this push stands for: more than 1 when
	// the devices' push rate limit held earlier ones back, and the push
	// names the latest.
	Count int `json:"count"`
	// Mentioned: one of those messages @mentions the user (or all).
	Mentioned bool `json:"mentioned,omitempty"`
}

// PushData is the data of push.offline.
type PushData struct {
	PushMessage
	Recipients []PushRecipient `json:"recipients"`
}

// PushOffline is push.offline; its id is "push-<app>-<message id>-" and a
// digest of the recipients' user ids, since one message's recipients may
// go in several batches.
func PushOffline(app string, d PushData, atMs int64) persistence.HookItem {
	users := make([]string, len(d.Recipients))
	for i, r := range d.Recipients {
		users[i] = r.User
	}
	return item(digestID("push-"+app+"-"+d.MessageID, "", 0, users), app, EventPushOffline, atMs, d)
}

// PushNote is one recipient's share of a push, as a user grain decides it.
type PushNote struct {
	App       string
	Message   PushMessage
	Recipient PushRecipient
}

// Enqueuer queues events durably (the Deliverer).
type Enqueuer interface {
	Enqueue(ctx context.Context, items ...persistence.HookItem) error
}

// PushConfig tunes a PushBatcher; zero fields take the defaults beside them.
type PushConfig struct {
	// Window is how long notes gather before they are queued. Zero: 50 ms.
	Window time.Duration
	// MaxRecipients bounds the recipients of one event. Zero: 500.
	MaxRecipients int
	// Buffer bounds the notes waiting; beyond it notes are dropped (and
	// counted). Zero: 100,000.
	Buffer int
	Logger *slog.Logger
}

func (c PushConfig) withDefaults() PushConfig {
	if c.Window <= 0 {
		c.Window = 50 * time.Millisecond
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 500
	}
	if c.Buffer <= 0 {
		c.Buffer = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// PushBatcher batches PushNotes into push.offline events. Add never
// blocks: a full buffer drops the note (a push is a courtesy; the message
// itself is stored and syncs). Notes still buffered when the node crashes
// are lost the same way.
type PushBatcher struct {
	q    Enqueuer
	cfg  PushConfig
	in   chan PushNote
	stop chan struct{}
	done chan struct{}
	once sync.Once
	halt sync.Once

	notes, events prometheus.Counter
	dropped       *prometheus.CounterVec
}

// NewPushBatcher returns a batcher queueing to q; Start runs it.
func NewPushBatcher(q Enqueuer, reg prometheus.Registerer, cfg PushConfig) *PushBatcher {
	cfg = cfg.withDefaults()
	b := &PushBatcher{
		q: q, cfg: cfg, in: make(chan PushNote, cfg.Buffer),
		stop: make(chan struct{}), done: make(chan struct{}),
		notes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_push_notes_total", Help: "Recipients of offline pushes handed to the push batcher."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_push_events_total", Help: "push.offline events queued for delivery."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_push_dropped_total", Help: "Offline push recipients dropped: full (the batcher's buffer was full) or store (the queue write failed)."},
			[]string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(b.notes, b.events, b.dropped)
	}
	return b
}

// Add hands a note to the batcher; false when it was dropped.
func (b *PushBatcher) Add(n PushNote) bool {
	select {
	case b.in <- n:
		b.notes.Inc()
		return true
	default:
		b.dropped.WithLabelValues("full").Inc()
		return false
	}
}

// Start runs the batcher until Shutdown. A second Start does nothing.
func (b *PushBatcher) Start() {
	b.once.Do(func() { go b.run() })
}

// Shutdown queues what is buffered and stops, within ctx.
func (b *PushBatcher) Shutdown(ctx context.Context) error {
	b.once.Do(func() { close(b.done) }) // never started: no run to wait for
	b.halt.Do(func() { close(b.stop) })
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *PushBatcher) run() {
	defer close(b.done)
	for {
		var first PushNote
		select {
		case first = <-b.in:
		case <-b.stop:
			b.flush(b.drain(nil))
			return
		}
		batch := []PushNote{first}
		timer := time.NewTimer(b.cfg.Window)
	gather:
		for len(batch) < b.cfg.Buffer {
			select {
			case n := <-b.in:
				batch = append(batch, n)
			case <-timer.C:
				break gather
			case <-b.stop:
				timer.Stop()
				b.flush(b.drain(batch))
				return
			}
		}
		timer.Stop()
		b.flush(batch)
	}
}

// drain appends every buffered note to batch.
func (b *PushBatcher) drain(batch []PushNote) []PushNote {
	for {
		select {
		case n := <-b.in:
			batch = append(batch, n)
		default:
			return batch
		}
	}
}

// flush merges the notes into events and queues them.
func (b *PushBatcher) flush(batch []PushNote) {
	if len(batch) == 0 {
		return
	}
	items := Batch(batch, b.cfg.MaxRecipients, time.Now().UnixMilli())
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := b.q.Enqueue(ctx, items...); err != nil {
		b.dropped.WithLabelValues("store").Add(float64(len(batch)))
		b.cfg.Logger.Error("push: enqueue", "notes", len(batch), "err", err)
		return
	}
	b.events.Add(float64(len(items)))
}

// Batch merges notes into push.offline events: one per app and message (in
// the order of their first note), at most maxRecipients recipients each. A
// user noted twice for one message is one recipient with the devices of
// both notes (and the later badge); a device or token named twice is named
// once.
func Batch(notes []PushNote, maxRecipients int, atMs int64) []persistence.HookItem {
	type key struct{ app, msg string }
	type group struct {
		data  PushData
		users map[string]int // index in data.Recipients
	}
	var order []key
	groups := map[key]*group{}
	for _, n := range notes {
		k := key{n.App, n.Message.MessageID}
		g := groups[k]
		if g == nil {
			g = &group{data: PushData{PushMessage: n.Message}, users: map[string]int{}}
			groups[k] = g
			order = append(order, k)
		}
		r := n.Recipient
		if i, ok := g.users[r.User]; ok {
			prev := &g.data.Recipients[i]
			prev.Tokens = mergeTokens(prev.Tokens, r.Tokens)
			prev.Badge, prev.Count = r.Badge, max(prev.Count, r.Count)
			prev.Mentioned = prev.Mentioned || r.Mentioned
			continue
		}
		r.Tokens = mergeTokens(nil, r.Tokens)
		g.users[r.User] = len(g.data.Recipients)
		g.data.Recipients = append(g.data.Recipients, r)
	}
	var items []persistence.HookItem
	for _, k := range order {
		d := groups[k].data
		for start := 0; start < len(d.Recipients); start += maxRecipients {
			part := d
			part.Recipients = d.Recipients[start:min(start+maxRecipients, len(d.Recipients))]
			items = append(items, PushOffline(k.app, part, atMs))
		}
	}
	return items
}

// mergeTokens appends to dst the tokens of add whose device and whose
// provider and token it does not hold yet.
func mergeTokens(dst, add []PushToken) []PushToken {
	for _, t := range add {
		dup := false
		for _, have := range dst {
			if have.Device == t.Device || (have.Provider == t.Provider && have.Token == t.Token) {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, t)
		}
	}
	return dst
}
