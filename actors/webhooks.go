package actors

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"actorim/apps"
	"actorim/hooks"
	"actorim/ids"
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

// filter applies the app's word filter: the send as it may be stored, or
// the refusal.
func (c *connActor) filter(s *clientpb.Send) (*clientpb.Send, *clientpb.Error) {
	set := c.d.settings
	if len(set.WordFilter.Words) > 0 {
		if text, hit := filterWords(s.GetContent().GetText(), set.WordFilter); hit {
			if set.WordFilter.Action != "mask" {
				return nil, errWordBlocked
			}
			s = cloneWithText(s, text)
		}
	}
	return s, nil
}

// asksWebhook reports whether the app's before-send webhook screens sends.
func (c *connActor) asksWebhook() bool {
	set := c.d.settings
	return c.d.webhooks != nil && set.Webhook.BeforeSend && set.Webhook.URL != ""
}

// beforeSendMessage is the message the webhook is asked about.
func (c *connActor) beforeSendMessage(s *clientpb.Send) *clientpb.Message {
	conv := ids.Private(c.sess.UserID, s.GetTo())
	if s.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		conv = ids.Group(s.GetTo())
	}
	return &clientpb.Message{
		ConversationId: conv, ConversationType: s.GetConversationType(), From: c.sess.UserID, To: s.GetTo(), FromDevice: c.sess.DeviceID,
		ClientMsgId: s.GetClientMsgId(), Content: s.GetContent(), Mentions: s.GetMentions(), Silent: s.GetSilent(),
	}
}

// decide applies the webhook's decision to a filtered send.
func (c *connActor) decide(s *clientpb.Send, dec hooks.Decision) (*clientpb.Send, *clientpb.Error) {
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

// screenSend applies the word filter to a send of an app whose webhook
// does not screen sends (those go through screenLater), and answers a
// refused one itself.
func (c *connActor) screenSend(id uint32, s *clientpb.Send) (*clientpb.Send, bool) {
	out, e := c.filter(s)
	if e != nil {
		c.refuseSend(id, e)
		return nil, false
	}
	return out, true
}

func (c *connActor) refuseSend(id uint32, e *clientpb.Error) {
	c.d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
	c.write(errorFrame(id, e))
}

// screenJob is a send waiting for its before-send call.
type screenJob struct {
	id    uint32
	s     *clientpb.Send
	done  func() // the frame's release
	group bool
}

// screened is the before-send decision on the head of screenQ, sent to
// the connection actor by the goroutine that made the call.
type screened struct{ dec hooks.Decision }

// screensLater reports whether a send goes through screenLater: when the
// app's webhook screens sends, or sends wait for it already (they keep
// their order).
func (c *connActor) screensLater() bool {
	return c.asksWebhook() || len(c.screenQ) > 0
}

// screenLater queues a send for the before-send webhook. The call runs on
// a goroutine of its own, so that the connection actor keeps serving the
// device meanwhile (pushes, acks of earlier sends, other requests); the
// device's sends are asked one at a time and forwarded in the order it
// sent them (a device's messages are stored in that order). The call is
// bounded by the target's timeout, after which the decision is the
// target's fail-open or fail-closed one.
func (c *connActor) screenLater(ctx actor.Context, job screenJob) {
	c.screenQ = append(c.screenQ, job)
	c.nextScreen(ctx)
}

// nextScreen starts the call of the head of screenQ unless one runs.
func (c *connActor) nextScreen(ctx actor.Context) {
	for !c.screening && len(c.screenQ) > 0 && !c.done {
		job := c.screenQ[0]
		s, e := c.filter(job.s)
		if e != nil {
			c.popScreen()
			c.refuseSend(job.id, e)
			job.done()
			continue
		}
		if !c.asksWebhook() {
			c.popScreen()
			c.forwardScreened(ctx, job, s)
			continue
		}
		c.screenQ[0].s = s
		c.screening = true
		webhooks, app, m := c.d.webhooks, c.d.app, c.beforeSendMessage(s)
		self, root := ctx.Self(), ctx.ActorSystem().Root
		go func() {
			root.Send(self, screened{dec: webhooks.BeforeSend(context.Background(), app, m)})
		}()
	}
}

func (c *connActor) popScreen() screenJob {
	job := c.screenQ[0]
	c.screenQ[0] = screenJob{}
	c.screenQ = c.screenQ[1:]
	if len(c.screenQ) == 0 {
		c.screenQ = nil // let the backing array go
	}
	return job
}

// onScreened applies the decision on the head of screenQ, forwards or
// refuses it, and starts the next call.
func (c *connActor) onScreened(ctx actor.Context, r screened) {
	if !c.screening || len(c.screenQ) == 0 {
		return
	}
	c.screening = false
	job := c.popScreen()
	if c.done {
		job.done()
		return
	}
	if s, e := c.decide(job.s, r.dec); e != nil {
		c.refuseSend(job.id, e)
		job.done()
	} else {
		c.forwardScreened(ctx, job, s)
	}
	c.nextScreen(ctx)
}

// forwardScreened sends a screened send on to its grain.
func (c *connActor) forwardScreened(ctx actor.Context, job screenJob, s *clientpb.Send) {
	var kept bool
	if job.group {
		kept = c.sendGroup(ctx, job.id, s, job.done)
	} else {
		kept = c.sendPrivate(ctx, job.id, s, job.done)
	}
	if !kept {
		job.done()
	}
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
