package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"actorim/apps"
	"actorim/client"
	"actorim/hooks"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// receiver is an app server's webhook endpoint: a real HTTP server that
// checks every request's signature and records the events.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret atomic.Pointer[string]
	// decide answers a before-send call (nil: allow); fail makes every
	// after-the-fact delivery answer 503.
	decide func(text string) (status int, body string, delay time.Duration)
	fail   atomic.Bool

	mu     sync.Mutex
	asked  []hooks.MessageData // before-send calls, in arrival order
	events []hooks.Envelope
	ids    map[string]int // deliveries per Actorim-Webhook-Id
	bad    []string       // requests that failed verification
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	secret := r.secret.Load()
	if secret == nil {
		http.Error(w, "no secret yet", http.StatusServiceUnavailable)
		return
	}
	if err := hooks.Verify(req.Header.Get(hooks.HeaderSignature), body, *secret, 5*time.Minute, time.Now()); err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err.Error())
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var env struct {
		hooks.Envelope
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if env.ID != req.Header.Get(hooks.HeaderID) || env.Event != req.Header.Get(hooks.HeaderEvent) {
		http.Error(w, "headers disagree with the body", http.StatusBadRequest)
		return
	}
	if env.Event == hooks.EventBeforeSend {
		var m hooks.MessageData
		_ = json.Unmarshal(env.Data, &m)
		r.mu.Lock()
		r.asked = append(r.asked, m)
		r.mu.Unlock()
		var c struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(m.Content, &c)
		if r.decide == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		status, answer, delay := r.decide(c.Text)
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
		return
	}
	if r.fail.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.mu.Lock()
	r.ids[env.ID]++
	if r.ids[env.ID] == 1 {
		env.Envelope.Data = env.Data
		r.events = append(r.events, env.Envelope)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// stored returns the distinct message.stored events received, by id.
func (r *receiver) stored() map[string]hooks.MessageData {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]hooks.MessageData{}
	for _, e := range r.events {
		if e.Event != hooks.EventMessageStored {
			continue
		}
		var m hooks.MessageData
		_ = json.Unmarshal(e.Data.(json.RawMessage), &m)
		out[e.ID] = m
	}
	return out
}

// lastAsked is the message of the last before-send call.
func (r *receiver) lastAsked() hooks.MessageData {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.asked) == 0 {
		return hooks.MessageData{}
	}
	return r.asked[len(r.asked)-1]
}

func (r *receiver) badSignatures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// webhookApp creates an app whose webhook is r, with settings s (its
// webhook URL set to r's), and gives r the app's webhook secret.
func (n *testNode) webhookApp(t *testing.T, r *receiver, s apps.Settings) string {
	t.Helper()
	id := newAppID("wh")
	s.Webhook.URL = r.srv.URL
	a := n.createApp(t, id, s)
	r.secret.Store(&a.WebhookSecrets[0])
	return id
}

// TestWebhookBeforeSend: the app server allows, refuses with a reason the
// sender sees, or rewrites a message before it is stored; when it does not
// answer in time, a fail-closed app refuses (retryable) and a fail-open
// one stores; group sends are asked too; the word filter blocks or masks
// before the webhook.
func TestWebhookBeforeSend(t *testing.T) {
	n := startNode(t, nil)
	r := newReceiver(t)
	var asked atomic.Int64
	r.decide = func(text string) (int, string, time.Duration) {
		asked.Add(1)
		switch text {
		case "refuse me":
			return 200, `{"action":"refuse","reason":"not on this app"}`, 0
		case "rewrite me":
			return 200, `{"action":"replace","content":{"text":"rewritten"}}`, 0
		case "slow":
			return 200, `{"action":"allow"}`, time.Second
		case "broken":
			return 500, `oops`, 0
		}
		return 200, `{"action":"allow"}`, 0
	}
	app := n.webhookApp(t, r, apps.Settings{Webhook: apps.Webhook{BeforeSend: true, TimeoutMs: 300}})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")

	alice.send(t, "bob", "hello")
	bob.requireText(t, "hello")
	if m := r.lastAsked(); m.ConversationID != "p:alice:bob" || m.ConversationType != "private" || m.From != "alice" || m.To != "bob" || m.ID != "0" {
		t.Fatalf("before-send asked about %+v", m)
	}
	_, err := alice.SendText(ctx(t), "bob", cmid(), "refuse me")
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN || !strings.Contains(err.Error(), "not on this app") {
		t.Fatalf("refused send: %v, want ERR_FORBIDDEN with the app's reason", err)
	}
	alice.send(t, "bob", "rewrite me")
	bob.requireText(t, "rewritten")
	h, err := alice.History(ctx(t), "p:alice:bob", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(h.GetEntries()); !eq(got, []string{"rewritten", "hello"}) {
		t.Fatalf("history %q: the refused message must be absent and the rewrite stored", got)
	}
	for _, text := range []string{"slow", "broken"} {
		if _, err := alice.SendText(ctx(t), "bob", cmid(), text); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAVAILABLE {
			t.Fatalf("%s, fail-closed: %v, want ERR_UNAVAILABLE", text, err)
		}
	}
	bob.quiet(t, 300*time.Millisecond)

	// A group send is asked too.
	gid := newGroupID("whg")
	alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")
	alice.collect(t, 1, 5*time.Second)
	bob.collect(t, 1, 5*time.Second)
	before := asked.Load()
	if _, err := alice.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: gid, Content: client.Text("refuse me"),
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("refused group send: %v", err)
	}
	alice.sendGroup(t, gid, "rewrite me")
	if m := r.lastAsked(); m.ConversationID != ids.Group(gid) || m.ConversationType != "group" || m.To != gid {
		t.Fatalf("before-send asked about %+v for group %s", m, gid)
	}
	if got := texts(bob.collect(t, 1, 5*time.Second)); !eq(got, []string{"rewritten"}) {
		t.Fatalf("group rewrite: bob got %q", got)
	}
	if asked.Load()-before != 2 {
		t.Fatalf("the webhook was asked %d times for 2 group sends", asked.Load()-before)
	}

	// Fail-open: a late or failing webhook lets the message through.
	adm := n.adminHTTP(t, "")
	set := apps.Settings{Webhook: apps.Webhook{URL: r.srv.URL, BeforeSend: true, TimeoutMs: 300, FailOpen: true},
		WordFilter: apps.WordFilter{Words: []string{"darn"}, Action: "mask"}}
	if _, err := adm.SetAppSettings(ctx(t), app, set); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2200 * time.Millisecond) // the registry's cache on this node
	// Settings apply to the deps of actors built after the change: a new
	// connection.
	alice = n.connectToken(t, n.appToken(t, app, "alice"), "alice", "web2")
	alice.send(t, "bob", "slow")
	bob.requireText(t, "slow")
	alice.send(t, "bob", "broken")
	bob.requireText(t, "broken")
	alice.send(t, "bob", "oh DARN it")
	bob.requireText(t, "oh **** it")

	set.WordFilter.Action = "block"
	if _, err := adm.SetAppSettings(ctx(t), app, set); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2200 * time.Millisecond)
	alice = n.connectToken(t, n.appToken(t, app, "alice"), "alice", "web3")
	before = asked.Load()
	if _, err := alice.SendText(ctx(t), "bob", cmid(), "darn"); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("blocked word: %v, want ERR_FORBIDDEN", err)
	}
	if asked.Load() != before {
		t.Fatal("a message the word filter blocked was still sent to the webhook")
	}
	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("requests with bad signatures: %v", bad)
	}
}

// TestWebhookAfterSendSurvivesCrash: message.stored events queued while the
// app server is down survive a SIGKILL of the node: after a restart every
// acked message's event arrives, at least once, each with a stable id
// (msg-<app>-<message id>) the receiver dedups on, and signed.
func TestWebhookAfterSendSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProcess(t, dir, addr)
	n := p.node()
	r := newReceiver(t)
	r.fail.Store(true)
	app := n.webhookApp(t, r, apps.Settings{Webhook: apps.Webhook{Events: []string{hooks.EventMessageStored}}})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	n.appUser(t, app, "bob")
	gid := newGroupID("whc")
	alice.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")

	want := map[string]string{} // event id -> text
	for i := range 20 {
		text := "m" + string(rune('a'+i))
		var ack *clientpb.SendAck
		if i%4 == 3 {
			ack = alice.sendGroup(t, gid, text)
		} else {
			ack = alice.send(t, "bob", text)
		}
		want[hooks.MessageStoredID(app, ack.GetMsgId())] = text
	}
	time.Sleep(1500 * time.Millisecond) // a delivery attempt or two fail
	p.kill9(t)
	if got := len(r.stored()); got != 0 {
		t.Fatalf("%d events delivered while the receiver was down", got)
	}

	r.fail.Store(false)
	p = startProcess(t, dir, addr)
	// Items in flight at the kill are delivered again when their lease
	// (30 s) ends.
	deadline := time.Now().Add(50 * time.Second)
	for len(r.stored()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := r.stored()
	for id, text := range want {
		m, ok := got[id]
		if !ok {
			t.Errorf("event %s (%q) not delivered after the restart", id, text)
			continue
		}
		var c struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(m.Content, &c)
		if c.Text != text || m.From != "alice" {
			t.Errorf("event %s: %+v, want %q from alice", id, m, text)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct events, want %d", len(got), len(want))
	}
	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("requests with bad signatures: %v", bad)
	}
	_ = p
}

// TestWebhookBeforeSendKeepsOrder: while a device's send waits for the
// before-send webhook, its connection still serves it (a ping is answered
// at once, not when the call returns), and the sends it made meanwhile wait their turn:
// a slow first call does not let the later ones be stored before it.
func TestWebhookBeforeSendKeepsOrder(t *testing.T) {
	n := startNode(t, nil)
	r := newReceiver(t)
	r.decide = func(text string) (int, string, time.Duration) {
		if text == "slow first" {
			return 200, `{"action":"allow"}`, 1500 * time.Millisecond
		}
		return 200, `{"action":"allow"}`, 0
	}
	app := n.webhookApp(t, r, apps.Settings{Webhook: apps.Webhook{BeforeSend: true, TimeoutMs: 3000}})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "web")

	sent := []string{"slow first", "second", "third"}
	acks := make([]*clientpb.SendAck, len(sent))
	errs := make([]error, len(sent))
	var wg sync.WaitGroup
	for i, text := range sent {
		wg.Go(func() {
			acks[i], errs[i] = alice.SendText(ctx(t), "bob", cmid(), text)
		})
		time.Sleep(50 * time.Millisecond) // the frames go out in this order
	}
	rtt, err := alice.Ping(ctx(t)) // sent 150 ms into the slow call
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range sent {
		if errs[i] != nil {
			t.Fatalf("send %q: %v", sent[i], errs[i])
		}
		if i > 0 && acks[i].GetSeq() <= acks[i-1].GetSeq() {
			t.Fatalf("%q stored at seq %d, before %q at %d", sent[i], acks[i].GetSeq(), sent[i-1], acks[i-1].GetSeq())
		}
	}
	if rtt > time.Second {
		t.Fatalf("the ping took %v: the connection waited for the webhook", rtt)
	}
	if got := texts(bob.collect(t, len(sent), 5*time.Second)); !eq(got, sent) {
		t.Fatalf("bob got %q, want %q", got, sent)
	}
}
