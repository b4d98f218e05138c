package hooks

import (
	"context"
	"slices"
	"time"
)

// Target is an app's webhook endpoint.
type Target struct {
	// URL receives every request (POST); the Actorim-Event header tells the
	// events apart.
	URL string
	// Secrets sign every request, newest first; all of them sign it during
	// a rotation, so the receiver may check with either. At least one.
	Secrets []string
	// Timeout bounds one request; zero means Config.Timeout (deliveries)
	// or Config.BeforeSendTimeout (before-send calls).
	Timeout time.Duration
	// FailOpen says what a failed before-send call decides: true allows the
	// message, false refuses it.
	FailOpen bool
	// Events lists the events the app subscribes to; empty means every
	// after-the-fact event. The before-send call (EventBeforeSend) is made
	// only when listed: it adds a round trip to every message.
	Events []string
}

// Wants reports whether t subscribes to event.
func (t Target) Wants(event string) bool {
	if event == EventBeforeSend {
		return slices.Contains(t.Events, event)
	}
	return len(t.Events) == 0 || slices.Contains(t.Events, event)
}

// Targets tells the apps' webhook targets. The node implements it over the
// apps' settings.
type Targets interface {
	// HookTarget returns app's target, or false when the app has none.
	HookTarget(ctx context.Context, app string) (Target, bool, error)
}

// StaticTargets is a Targets from a map, for tests and single-app setups.
type StaticTargets map[string]Target

// HookTarget implements Targets.
func (s StaticTargets) HookTarget(_ context.Context, app string) (Target, bool, error) {
	t, ok := s[app]
	return t, ok, nil
}
