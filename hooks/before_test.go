package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/protos/clientpb"
)

func textMessage(from, to, clientMsgID, text string) *clientpb.Message {
	return &clientpb.Message{
		ConversationId: "p:" + from + ":" + to, ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
		From: from, To: to, FromDevice: "d1", ClientMsgId: clientMsgID,
		Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: text}},
	}
}

func answerJSON(s string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { _, _ = w.Write([]byte(s)) }
}

func TestBeforeSend(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}
	status := func(code int) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(code) }
	}
	tests := []struct {
		name     string
		answer   func(http.ResponseWriter, *http.Request, int)
		failOpen bool
		want     Decision // Err and Content not compared
		text     string   // of the replacement
	}{
		{"allow", answerJSON(`{"action":"allow"}`), false, Decision{Action: Allow}, ""},
		{"empty body allows", ok, false, Decision{Action: Allow}, ""},
		{"refuse with a reason", answerJSON(`{"action":"refuse","reason":"no links, please"}`), false,
			Decision{Action: Refuse, Code: CodeRefused, Reason: "no links, please"}, ""},
		{"refuse without a reason", answerJSON(`{"action":"refuse"}`), true,
			Decision{Action: Refuse, Code: CodeRefused, Reason: reasonRefused}, ""},
		{"replace", answerJSON(`{"action":"replace","content":{"text":"h*llo"}}`), false,
			Decision{Action: Replace}, "h*llo"},
		{"timeout fail-open", slow, true, Decision{Action: Allow, Code: CodeUnavailable, Failed: true}, ""},
		{"timeout fail-closed", slow, false,
			Decision{Action: Refuse, Code: CodeUnavailable, Reason: reasonUnavailable, Failed: true}, ""},
		{"500 fail-closed", status(500), false,
			Decision{Action: Refuse, Code: CodeUnavailable, Reason: reasonUnavailable, Failed: true}, ""},
		{"500 fail-open", status(500), true, Decision{Action: Allow, Code: CodeUnavailable, Failed: true}, ""},
		{"malformed answer", answerJSON(`{"action":`), false,
			Decision{Action: Refuse, Code: CodeUnavailable, Reason: reasonUnavailable, Failed: true}, ""},
		{"unknown action", answerJSON(`{"action":"maybe"}`), true, Decision{Action: Allow, Code: CodeUnavailable, Failed: true}, ""},
		{"replace without content", answerJSON(`{"action":"replace"}`), false,
			Decision{Action: Refuse, Code: CodeUnavailable, Reason: reasonUnavailable, Failed: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.answer)
			target := rc.target()
			target.FailOpen = tc.failOpen
			target.Timeout = 200 * time.Millisecond
			target.Events = []string{EventBeforeSend}
			c := NewCaller(StaticTargets{"default": target}, nil, prometheus.NewRegistry(), Config{})
			start := time.Now()
			d := c.BeforeSend(context.Background(), "default", textMessage("alice", "bob", "c1", "hello"))
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("BeforeSend took %v", took)
			}
			if d.Failed != (d.Err != nil) {
				t.Fatalf("Failed %v with Err %v", d.Failed, d.Err)
			}
			if !sameDecision(d, tc.want) {
				t.Fatalf("decision %+v, want %+v", d, tc.want)
			}
			if tc.text != "" && d.Replacement.GetText() != tc.text {
				t.Fatalf("replacement %v, want text %q", d.Replacement, tc.text)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests", len(reqs))
			}
			r := reqs[0]
			if r.sigErr != nil || r.event != EventBeforeSend || r.id != "bs-default-alice-c1" {
				t.Fatalf("request: id %q event %q signature %v", r.id, r.event, r.sigErr)
			}
			var env struct {
				Envelope
				Data MessageData `json:"data"`
			}
			if err := json.Unmarshal(r.body, &env); err != nil || env.V != Version || env.ID != r.id ||
				env.Data.From != "alice" || string(env.Data.Content) != `{"text":"hello"}` {
				t.Fatalf("body %s: %v", r.body, err)
			}
		})
	}
}

func TestBeforeSendNotAsked(t *testing.T) {
	rc := newReceiver(t, answerJSON(`{"action":"refuse"}`))
	c := NewCaller(StaticTargets{"subscribed-to-others": rc.target()}, nil, nil, Config{})
	for _, app := range []string{"subscribed-to-others", "no-target"} {
		if d := c.BeforeSend(context.Background(), app, textMessage("a", "b", "c", "x")); !sameDecision(d, Decision{Action: Allow}) || d.Failed {
			t.Fatalf("%s: %+v", app, d)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("receiver asked %d times", n)
	}
}

// sameDecision compares the fields other than Err, Content and Replacement.
func sameDecision(a, b Decision) bool {
	return a.Action == b.Action && a.Code == b.Code && a.Reason == b.Reason && a.Failed == b.Failed
}

type failingTargets struct{}

func (failingTargets) HookTarget(context.Context, string) (Target, bool, error) {
	return Target{}, false, errors.New("settings unavailable")
}

func TestBeforeSendTargetLookupFails(t *testing.T) {
	c := NewCaller(failingTargets{}, nil, nil, Config{})
	d := c.BeforeSend(context.Background(), "default", textMessage("a", "b", "c", "x"))
	if d.Action != Refuse || d.Code != CodeUnavailable || !d.Failed {
		t.Fatalf("%+v", d)
	}
}

func TestCallerTest(t *testing.T) {
	good := newReceiver(t, ok)
	bad := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusForbidden) })
	c := NewCaller(StaticTargets{"good": good.target(), "bad": bad.target()}, nil, nil, Config{})
	res, err := c.Test(context.Background(), "good")
	if err != nil || res.Status != 200 || res.Latency <= 0 {
		t.Fatalf("Test(good) = %+v, %v", res, err)
	}
	if r := good.requests()[0]; r.event != EventTest || r.sigErr != nil {
		t.Fatalf("test request %+v", r)
	}
	if res, err := c.Test(context.Background(), "bad"); err == nil || res.Status != 403 {
		t.Fatalf("Test(bad) = %+v, %v", res, err)
	}
	if _, err := c.Test(context.Background(), "none"); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("Test(none) = %v", err)
	}
}
