package node

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/apps"
	"actorim/gateway"
	"actorim/hooks"
	"actorim/persistence"
	"actorim/protos/clientpb"
)

// appTargets are the apps' webhook targets (hooks.Targets), read from
// their settings in the registry. A target is built once per version of
// its app's record (built: app id → *builtTarget), as every before-send
// call asks for it.
type appTargets struct {
	reg   *apps.Registry
	built *sync.Map
}

// builtTarget is the target built from one version of an app's record.
type builtTarget struct {
	version targetVersion
	t       hooks.Target
	ok      bool
}

// targetVersion tells the records a target was built from apart.
type targetVersion struct {
	updatedAtMs uint64
	disabled    bool
	secret      string // the first webhook secret
	url         string
}

func versionOf(a apps.App) targetVersion {
	v := targetVersion{updatedAtMs: a.UpdatedAtMs, disabled: a.Disabled, url: a.Settings.Webhook.URL}
	if len(a.WebhookSecrets) > 0 {
		v.secret = a.WebhookSecrets[0]
	}
	return v
}

// afterEvents are the after-the-fact events, every one of which an app
// whose settings list none subscribes to.
var afterEvents = []string{hooks.EventMessageStored, hooks.EventUserOnline, hooks.EventUserOffline,
	hooks.EventGroupChanged, hooks.EventFriendChanged, hooks.EventPushOffline}

// HookTarget implements hooks.Targets.
func (t appTargets) HookTarget(ctx context.Context, app string) (hooks.Target, bool, error) {
	a, err := t.reg.Get(ctx, app)
	switch {
	case errors.Is(err, apps.ErrNotFound):
		return hooks.Target{}, false, nil
	case err != nil:
		return hooks.Target{}, false, err
	}
	v := versionOf(a)
	if b, ok := t.built.Load(app); ok && b.(*builtTarget).version == v {
		return b.(*builtTarget).t, b.(*builtTarget).ok, nil
	}
	target, ok := buildTarget(a)
	t.built.Store(app, &builtTarget{version: v, t: target, ok: ok})
	return target, ok, nil
}

// buildTarget is app's webhook target; false when it has none.
func buildTarget(a apps.App) (hooks.Target, bool) {
	w := a.Settings.Webhook
	if w.URL == "" || len(a.WebhookSecrets) == 0 || a.Disabled {
		return hooks.Target{}, false
	}
	events := w.Events
	if w.BeforeSend {
		if len(events) == 0 {
			events = afterEvents
		}
		events = append(append([]string(nil), events...), hooks.EventBeforeSend)
	}
	// Offline push is switched by its own setting, whatever the list says.
	if len(events) > 0 && a.Settings.Push.Enabled && !slices.Contains(events, hooks.EventPushOffline) {
		events = append(append([]string(nil), events...), hooks.EventPushOffline)
	}
	return hooks.Target{URL: w.URL, Secrets: a.WebhookSecrets, Timeout: time.Duration(w.TimeoutMs) * time.Millisecond,
		FailOpen: w.FailOpen, Events: events}, true
}

// webhooks is what the actors call (actors.Webhooks): the before-send
// Caller, the Deliverer's durable queue and the offline push batcher (which
// queues to the Deliverer).
type webhooks struct {
	caller  *hooks.Caller
	deliver *hooks.Deliverer
	push    *hooks.PushBatcher
}

func (w webhooks) Push(n hooks.PushNote) { w.push.Add(n) }

// TestWebhook sends the app's webhook a webhook.test event
// (gateway.WebhookTester).
func (w webhooks) TestWebhook(ctx context.Context, app string) gateway.WebhookTest {
	res, err := w.caller.Test(ctx, app)
	if errors.Is(err, hooks.ErrNoTarget) {
		return gateway.WebhookTest{}
	}
	out := gateway.WebhookTest{Configured: true, Status: res.Status, Latency: res.Latency}
	if err != nil {
		out.Err = err.Error()
	}
	return out
}

// shutdown queues the pushes still batched, then stops the deliverer.
func (w webhooks) shutdown(ctx context.Context) error {
	return errors.Join(w.push.Shutdown(ctx), w.deliver.Shutdown(ctx))
}

func (w webhooks) BeforeSend(ctx context.Context, app string, m *clientpb.Message) hooks.Decision {
	return w.caller.BeforeSend(ctx, app, m)
}

func (w webhooks) Enqueue(ctx context.Context, items ...persistence.HookItem) error {
	return w.deliver.Enqueue(ctx, items...)
}

// openWebhooks builds the node's webhook caller and deliverer over the
// store's hook queue; the deliverer's workers start at once.
func openWebhooks(st persistence.HookQueue, reg *apps.Registry, metrics prometheus.Registerer, logger *slog.Logger) webhooks {
	targets := appTargets{reg: reg, built: &sync.Map{}}
	client := hooks.NewClient()
	cfg := hooks.Config{Logger: logger}
	w := webhooks{
		caller:  hooks.NewCaller(targets, nil, metrics, cfg), // its own connections for before-send
		deliver: hooks.NewDeliverer(st, targets, client, metrics, cfg),
	}
	w.push = hooks.NewPushBatcher(w.deliver, metrics, hooks.PushConfig{Logger: logger})
	w.deliver.Start(context.Background())
	w.push.Start()
	return w
}
