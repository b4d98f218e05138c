package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"actorim/protos/clientpb"
)

// Action is what a before-send call decides.
type Action string

// The actions.
const (
	Allow   Action = "allow"   // store the message as sent
	Refuse  Action = "refuse"  // do not store it; the sender gets Decision.Reason
	Replace Action = "replace" // store it with Decision.Replacement as its content
)

// The codes of a refusal, in Decision.Code; each one's default text is
// beside it.
const (
	// CodeRefused: the app server refused the message; Reason is its text
	// (or "refused by the application" when it gave none).
	CodeRefused = "WEBHOOK_REFUSED"
	// CodeUnavailable: the call failed (timeout, connection error, non-2xx,
	// malformed answer). With a fail-closed target the message is refused
	// with reasonUnavailable; with a fail-open one it is allowed and the
	// code only says why Failed is set.
	CodeUnavailable = "WEBHOOK_UNAVAILABLE"

	reasonRefused     = "refused by the application"
	reasonUnavailable = "the application's webhook is unavailable, retry later"
)

// ErrNoTarget is returned by Caller.Test for an app without a webhook.
var ErrNoTarget = errors.New("hooks: the app has no webhook target")

// Decision is the outcome of a before-send call.
type Decision struct {
	Action Action
	// Code is CodeRefused or CodeUnavailable for a refusal, and
	// CodeUnavailable for an allow after a failure; empty otherwise.
	Code string
	// Reason is what the sender sees of a refusal.
	Reason string
	// Content is the replacement content as the app server sent it
	// (clientpb.Content in proto3 JSON) and Replacement its decoding; both
	// set for Replace only.
	Content     json.RawMessage
	Replacement *clientpb.Content
	// Failed is true when the call failed and the target's FailOpen chose
	// the Action; Err says why.
	Failed bool
	Err    error
}

// allowAnswer is the usual allow, recognised without decoding.
const allowAnswer = `{"action":"allow"}`

// beforeSendResponse is the JSON a receiver answers a before-send call
// with; an empty 2xx body means allow.
type beforeSendResponse struct {
	Action  Action          `json:"action"`
	Reason  string          `json:"reason"`
	Content json.RawMessage `json:"content"`
}

// Caller makes the synchronous webhook calls: before-send and test. It is
// safe for concurrent use; a call holds no lock and starts no goroutine,
// and its request is bounded by the target's timeout.
type Caller struct {
	targets Targets
	client  *http.Client
	fast    *fastClient // before-send calls, when NewCaller chose the client
	cfg     Config
	m       *callerMetrics
}

// NewCaller returns a Caller that finds targets with targets and calls them
// with client. When client is nil, before-send calls go through fasthttp's
// client, pooled HTTP/1.1 connections of the Caller's own (see fastClient:
// the same requests and limits as NewClient's, for a fraction of the CPU),
// and the others through NewClient's. Its metrics go to reg (nil: not registered).
func NewCaller(targets Targets, client *http.Client, reg prometheus.Registerer, cfg Config) *Caller {
	c := &Caller{targets: targets, client: client, cfg: cfg.WithDefaults(), m: newCallerMetrics(reg)}
	if client == nil {
		c.client = NewClient()
		c.fast = newFastClient(c.cfg.BeforeSendConns, c.cfg.MaxResponseBytes, c.client)
	}
	return c
}

// BeforeSendID is the id of the before-send call for a message: a retry of
// the same send (same sender and client msg id) has the same id.
func BeforeSendID(app string, m *clientpb.Message) string {
	if m.GetClientMsgId() == "" {
		return digestID("bs", app, 0, MessageOf(m))
	}
	return "bs-" + app + "-" + m.GetFrom() + "-" + m.GetClientMsgId()
}

// BeforeSend asks app's webhook whether to store m, which is not stored
// yet. An app without a target, or whose target does not subscribe to
// EventBeforeSend, allows everything.
func (c *Caller) BeforeSend(ctx context.Context, app string, m *clientpb.Message) Decision {
	t, ok, err := c.targets.HookTarget(ctx, app)
	if err != nil {
		// Without the target its FailOpen is unknown: refuse, the safe side.
		return c.count(app, c.failed(Target{}, fmt.Errorf("target: %w", err)))
	}
	if !ok || !t.Wants(EventBeforeSend) {
		return Decision{Action: Allow}
	}
	start := time.Now()
	id := BeforeSendID(app, m)
	body := appendBeforeSendPayload(make([]byte, 0, 512), app, id, start.UnixMilli(), m)
	d := c.call(ctx, t, id, body)
	c.m.seconds.Observe(time.Since(start).Seconds())
	return c.count(app, d)
}

func (c *Caller) count(app string, d Decision) Decision {
	c.m.decisions.WithLabelValues(app, string(d.Action), strconv.FormatBool(d.Failed)).Inc()
	return d
}

// call makes one before-send request and decodes its answer.
func (c *Caller) call(ctx context.Context, t Target, id string, body []byte) Decision {
	var status int
	var resp []byte
	var err error
	if c.fast != nil {
		status, resp, err = c.fast.post(ctx, t, c.cfg.BeforeSendTimeout, id, EventBeforeSend, body, c.cfg.MaxResponseBytes)
	} else {
		status, resp, err = post(ctx, c.client, t, c.cfg.BeforeSendTimeout, id, EventBeforeSend, body, c.cfg.MaxResponseBytes)
	}
	if err != nil {
		return c.failed(t, err)
	}
	if status < 200 || status > 299 {
		return c.failed(t, fmt.Errorf("status %d", status))
	}
	resp = bytes.TrimSpace(resp)
	if len(resp) == 0 || string(resp) == allowAnswer || string(resp) == "{}" {
		return Decision{Action: Allow} // the usual answers, without a decoder
	}
	var r beforeSendResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return c.failed(t, fmt.Errorf("answer: %w", err))
	}
	switch r.Action {
	case "", Allow:
		return Decision{Action: Allow}
	case Refuse:
		reason := r.Reason
		if reason == "" {
			reason = reasonRefused
		}
		return Decision{Action: Refuse, Code: CodeRefused, Reason: reason}
	case Replace:
		content := new(clientpb.Content)
		if len(r.Content) == 0 {
			return c.failed(t, errors.New("answer: replace without content"))
		}
		if err := protojson.Unmarshal(r.Content, content); err != nil {
			return c.failed(t, fmt.Errorf("answer: content: %w", err))
		}
		return Decision{Action: Replace, Content: r.Content, Replacement: content}
	default:
		return c.failed(t, fmt.Errorf("answer: unknown action %q", r.Action))
	}
}

// failed is the decision of a failed call to t.
func (c *Caller) failed(t Target, err error) Decision {
	if t.FailOpen {
		return Decision{Action: Allow, Code: CodeUnavailable, Failed: true, Err: err}
	}
	return Decision{Action: Refuse, Code: CodeUnavailable, Reason: reasonUnavailable, Failed: true, Err: err}
}

// TestResult is what Caller.Test measured.
type TestResult struct {
	Status  int           // the receiver's HTTP status
	Latency time.Duration // of the whole request
}

// Test sends app's target a signed webhook.test event and reports its
// answer; it fails on a transport error or a non-2xx status (the result
// still says which).
func (c *Caller) Test(ctx context.Context, app string) (TestResult, error) {
	t, ok, err := c.targets.HookTarget(ctx, app)
	if err != nil {
		return TestResult{}, fmt.Errorf("hooks: test %s: %w", app, err)
	}
	if !ok {
		return TestResult{}, ErrNoTarget
	}
	start := time.Now()
	id := digestID("test", app, start.UnixNano(), nil)
	body := item(id, app, EventTest, start.UnixMilli(), struct{}{}).Payload
	status, _, err := post(ctx, c.client, t, c.cfg.Timeout, id, EventTest, body, 0)
	res := TestResult{Status: status, Latency: time.Since(start)}
	if err != nil {
		return res, fmt.Errorf("hooks: test %s: %w", app, err)
	}
	if status < 200 || status > 299 {
		return res, fmt.Errorf("hooks: test %s: status %d", app, status)
	}
	return res, nil
}

// post sends one signed request to t, bounded by t.Timeout (or def), and
// returns the status and up to maxBody bytes of the answer. The rest of
// the body is drained (up to a bound) so the connection is reused.
func post(ctx context.Context, client *http.Client, t Target, def time.Duration, id, event string, body []byte, maxBody int64) (int, []byte, error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = def
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	SetHeaders(req.Header, id, event, body, t.Secrets, time.Now())
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out []byte
	if maxBody > 0 {
		out, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return resp.StatusCode, nil, err
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, out, nil
}
