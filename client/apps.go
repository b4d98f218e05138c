package client

import (
	"context"
	"net/http"
	"net/url"

	"actorim/apps"
)

// The admin calls about applications (tenants), each with an admin token.
// The registry's types are the API's: apps.App and apps.Settings.

// CreateApp creates an app and returns it with its first token and
// webhook secrets.
func (h *HTTP) CreateApp(ctx context.Context, id string, s apps.Settings) (apps.App, error) {
	var a apps.App
	err := h.do(ctx, http.MethodPost, "/v1/admin/apps", map[string]any{"id": id, "settings": s}, &a)
	return a, err
}

// Apps lists the deployment's apps, the default one first.
func (h *HTTP) Apps(ctx context.Context) ([]apps.App, error) {
	var res struct {
		Apps []apps.App `json:"apps"`
	}
	err := h.do(ctx, http.MethodGet, "/v1/admin/apps", nil, &res)
	return res.Apps, err
}

// GetApp returns one app.
func (h *HTTP) GetApp(ctx context.Context, id string) (apps.App, error) {
	return h.appCall(ctx, http.MethodGet, id, "", nil)
}

// SetAppSettings replaces an app's settings.
func (h *HTTP) SetAppSettings(ctx context.Context, id string, s apps.Settings) (apps.App, error) {
	return h.appCall(ctx, http.MethodPut, id, "/settings", s)
}

// DisableApp disables an app: its tokens and logins are refused and its
// users' sockets closed. EnableApp undoes it.
func (h *HTTP) DisableApp(ctx context.Context, id string) (apps.App, error) {
	return h.appCall(ctx, http.MethodPost, id, "/disable", nil)
}

// EnableApp re-enables a disabled app.
func (h *HTTP) EnableApp(ctx context.Context, id string) (apps.App, error) {
	return h.appCall(ctx, http.MethodPost, id, "/enable", nil)
}

// RotateAppSecret gives an app a new token secret; the previous one stays
// valid until the next rotation.
func (h *HTTP) RotateAppSecret(ctx context.Context, id string) (apps.App, error) {
	return h.appCall(ctx, http.MethodPost, id, "/rotate-secret", nil)
}

// RotateWebhookSecret gives an app a new webhook signing secret; the
// previous one still signs beside it until the next rotation.
func (h *HTTP) RotateWebhookSecret(ctx context.Context, id string) (apps.App, error) {
	return h.appCall(ctx, http.MethodPost, id, "/rotate-webhook-secret", nil)
}

func (h *HTTP) appCall(ctx context.Context, method, id, suffix string, in any) (apps.App, error) {
	var a apps.App
	err := h.do(ctx, method, "/v1/admin/apps/"+url.PathEscape(id)+suffix, in, &a)
	return a, err
}

// WebhookTest is how an app's webhook answered a test event.
type WebhookTest struct {
	App       string `json:"app"`
	OK        bool   `json:"ok"`
	Status    int    `json:"status"` // the receiver's HTTP status, 0 when none came back
	LatencyMs int64  `json:"latency_ms"`
	Error     string `json:"error,omitempty"`
}

// TestWebhook sends the app's webhook a signed webhook.test event. The
// error is for the call itself (an app without a webhook is
// ERR_CONFLICT); the receiver's failure is in the result.
func (h *HTTP) TestWebhook(ctx context.Context, id string) (WebhookTest, error) {
	var res WebhookTest
	err := h.do(ctx, http.MethodPost, "/v1/admin/apps/"+url.PathEscape(id)+"/test-webhook", nil, &res)
	return res, err
}
