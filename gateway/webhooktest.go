package gateway

import (
	"context"
	"net/http"
	"time"

	"actorim/protos/clientpb"
)

// WebhookTester sends an app's webhook a signed test event (the node's
// hooks.Caller). Without one (SetWebhookTester not called) the test action
// answers 501.
type WebhookTester interface {
	TestWebhook(ctx context.Context, app string) WebhookTest
}

// WebhookTest is the outcome of a test event.
type WebhookTest struct {
	// Configured is false when the app has no webhook URL (or is disabled):
	// nothing was sent.
	Configured bool
	// Status is the receiver's HTTP status, 0 when none came back.
	Status  int
	Latency time.Duration
	// Err says why the test failed (a transport error, a non-2xx status);
	// empty when the receiver answered 2xx.
	Err string
}

type testerHolder struct{ t WebhookTester }

// SetWebhookTester enables POST /v1/admin/apps/{app}/test-webhook.
func (s *Server) SetWebhookTester(t WebhookTester) { s.tester.Store(&testerHolder{t}) }

var (
	errNoTester  = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "webhooks are not available on this node") // answered 501
	errNoWebhook = clientError(clientpb.ErrorCode_ERR_CONFLICT, "the app has no webhook url (or is disabled)")
)

// maxTestError bounds the error text of a failed test in the answer.
const maxTestError = 512

// handleTestWebhook sends the app's webhook a signed webhook.test event
// (POST /v1/admin/apps/{app}/test-webhook) and answers how the receiver
// answered: 200 {"app", "ok", "status", "latency_ms", "error"} whether or
// not it succeeded; 409 when the app has no webhook; 404 an unknown app.
func (s *Server) handleTestWebhook(w http.ResponseWriter, r *http.Request) {
	h := s.tester.Load()
	if h == nil {
		writeErrorStatus(w, http.StatusNotImplemented, errNoTester)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	app, ok := s.lookupApp(w, ctx, r.PathValue("app"))
	if !ok {
		return
	}
	res := h.t.TestWebhook(ctx, app.ID)
	if !res.Configured {
		writeError(w, errNoWebhook)
		return
	}
	out := map[string]any{"app": app.ID, "ok": res.Err == "", "status": res.Status, "latency_ms": res.Latency.Milliseconds()}
	if res.Err != "" {
		if len(res.Err) > maxTestError {
			res.Err = res.Err[:maxTestError]
		}
		out["error"] = res.Err
	}
	writeJSON(w, http.StatusOK, out)
}
