package actors

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"actorim/apps"
	"actorim/hooks"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Webhooks is what the actors need of the app server's webhooks (package
// hooks): the before-send call, made on the sender's connection actor
// before a message goes to its grain, and the durable queue of the
// after-the-fact events, written before a send is acked so that an acked
// message's event survives a crash. Nil: no webhooks.
type Webhooks interface {
	BeforeSend(ctx context.Context, app string, m *clientpb.Message) hooks.Decision
	Enqueue(ctx context.Context, items ...persistence.HookItem) error
	// Push hands an offline push to the node's batcher (push.go); it never
	// blocks.
	Push(n hooks.PushNote)
}

// wantsHook reports whether the app's webhook subscribes to an
// after-the-fact event: only then is it queued (a queue write per message
// for an app that wants none would be waste).
func (d *deps) wantsHook(event string) bool {
	w := d.settings.Webhook
	return d.webhooks != nil && w.URL != "" && (len(w.Events) == 0 || slices.Contains(w.Events, event))
}

// enqueueHooks queues events durably; a failure is logged and counted,
// never fails the send (the message is stored; the event is what may be
// lost, and a client's retry of the send queues it again).
func (d *deps) enqueueHooks(items ...persistence.HookItem) {
	if len(items) == 0 {
		return
	}
	ctx, cancel := d.storeCtx()
	defer cancel()
	if err := d.webhooks.Enqueue(ctx, items...); err != nil {
		d.metrics.HookEnqueueErrors.Inc()
		d.log.Error("webhook: enqueue", "app", d.app, "event", items[0].Event, "err", err)
	}
}

// messageStored queues message.stored for a stored (or duplicate: its id
// dedups) message, when the app wants it.
func (d *deps) messageStored(msgs ...*clientpb.Message) {
	if !d.wantsHook(hooks.EventMessageStored) {
		return
	}
	items := make([]persistence.HookItem, len(msgs))
	for i, m := range msgs {
		items[i] = hooks.MessageStored(d.app, m)
	}
	d.enqueueHooks(items...)
}

// Errors of the screening of a send.
var (
	errWordBlocked = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "send: the message contains a word this app does not allow")
)

// screen applies the app's word filter and before-send webhook to a send
// on the sender's connection actor (which waits, so that the device's
// sends stay in order; other devices and grains do not). It returns the
// send to store (its content may be replaced or masked) or the refusal.
func (c *connActor) screen(s *clientpb.Send) (*clientpb.Send, *clientpb.Error) {
	set := c.d.settings
	if len(set.WordFilter.Words) > 0 {
		if text, hit := filterWords(s.GetContent().GetText(), set.WordFilter); hit {
			if set.WordFilter.Action != "mask" {
				return nil, errWordBlocked
			}
			s = cloneWithText(s, text)
		}
	}
	if c.d.webhooks == nil || !set.Webhook.BeforeSend || set.Webhook.URL == "" {
		return s, nil
	}
	m := &clientpb.Message{
		ConversationType: s.GetConversationType(), From: c.sess.UserID, To: s.GetTo(), FromDevice: c.sess.DeviceID,
		ClientMsgId: s.GetClientMsgId(), Content: s.GetContent(), Mentions: s.GetMentions(), Silent: s.GetSilent(),
	}
	dec := c.d.webhooks.BeforeSend(context.Background(), c.d.app, m)
	switch dec.Action {
	case hooks.Allow:
		return s, nil
	case hooks.Replace:
		if dec.Replacement == nil {
			return s, nil
		}
		out := cloneSend(s)
		out.Content = dec.Replacement
		if e := validateContent(out.GetContent(), c.d.cfg.MaxContentBytes); e != nil {
			return nil, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "send: the app's replacement content is not valid: "+e.GetMessage())
		}
		return out, nil
	}
	if dec.Code == hooks.CodeUnavailable {
		return nil, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "send: "+dec.Reason)
	}
	return nil, clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "send: "+dec.Reason)
}

// screenSend screens a send and answers a refused one itself.
func (c *connActor) screenSend(id uint32, s *clientpb.Send) (*clientpb.Send, bool) {
	out, e := c.screen(s)
	if e != nil {
		c.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
		c.write(errorFrame(id, e))
		return nil, false
	}
	return out, true
}

func cloneSend(s *clientpb.Send) *clientpb.Send {
	return proto.Clone(s).(*clientpb.Send)
}

func cloneWithText(s *clientpb.Send, text string) *clientpb.Send {
	out := cloneSend(s)
	out.Content.Kind = &clientpb.Content_Text{Text: text}
	return out
}

// filterWords finds the filter's words in text, case-insensitively where
// lower-casing keeps the text's length (so that offsets match), and
// returns text with each occurrence masked by asterisks, one per rune.
func filterWords(text string, f apps.WordFilter) (string, bool) {
	if text == "" {
		return text, false
	}
	lower := strings.ToLower(text)
	fold := len(lower) == len(text)
	if !fold {
		lower = text
	}
	hit := false
	for _, w := range f.Words {
		needle := w
		if fold {
			needle = strings.ToLower(w)
		}
		if needle == "" {
			continue
		}
		for from := 0; from < len(lower); {
			i := strings.Index(lower[from:], needle)
			if i < 0 {
				break
			}
			i += from
			hit = true
			mask := strings.Repeat("*", utf8.RuneCountInString(text[i:i+len(needle)]))
			text = text[:i] + mask + text[i+len(needle):]
			lower = lower[:i] + mask + lower[i+len(needle):]
			from = i + len(mask)
		}
	}
	return text, hit
}
