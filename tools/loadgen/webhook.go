package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"actorim/apps"
	"actorim/auth"
	"actorim/client"
	"actorim/hooks"
)

// The before-send webhook mode (Config.BeforeSend): the workload runs in a
// fresh app whose webhook is hookReceiver, after a reference run of the
// same workload in a fresh app without one. With Spawn each run has a
// node of its own; against targets both share the nodes, in two apps.

// runBeforeSend runs the reference, then the webhook run, and returns the
// webhook run's report with the reference beside it.
func runBeforeSend(ctx context.Context, name string, w *workload, cfg Config) (*Report, error) {
	if name != "pairs" && name != "mix" {
		return nil, fmt.Errorf("loadgen: --webhook-before-send works with pairs and mix, not %s", name)
	}
	if !cfg.Spawn && cfg.AdminSecret == "" {
		return nil, errors.New("loadgen: --webhook-before-send creates apps through the admin API: give --admin-secret-file (or $ACTORIM_ADMIN_SECRET) or --spawn")
	}
	recv, err := startHookReceiver(cfg.WebhookListen, cfg.BeforeSendDelay)
	if err != nil {
		return nil, err
	}
	defer recv.close()

	var ref *Report
	if !cfg.NoReference {
		rc := cfg
		rc.BeforeSend = false
		progressf(cfg.Progress, "reference: app %s-ref, no webhook\n", cfg.RunID)
		if ref, err = runOn(ctx, name, w, rc, func(ctx context.Context, c *Config) error {
			_, err := createBenchApp(ctx, c, c.RunID+"-ref", apps.Settings{})
			return err
		}); err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
	}
	progressf(cfg.Progress, "webhook: app %s-hook, before-send answered after %v by %s\n", cfg.RunID, cfg.BeforeSendDelay, recv.url)
	// The node waits at most this long for an answer (its default, 2 s,
	// unless the delay asks for more); fail-closed, so a failed call shows
	// as a send error instead of passing unnoticed.
	timeout := min(10*time.Second, max(2*time.Second, time.Second+2*cfg.BeforeSendDelay))
	r, err := runOn(ctx, name, w, cfg, func(ctx context.Context, c *Config) error {
		a, err := createBenchApp(ctx, c, c.RunID+"-hook", apps.Settings{Webhook: apps.Webhook{URL: recv.url, BeforeSend: true,
			Events:    []string{hooks.EventBeforeSend}, // no after-the-fact events: their queue is not what is measured
			TimeoutMs: int(timeout / time.Millisecond)}})
		if err != nil {
			return err
		}
		if len(a.WebhookSecrets) == 0 {
			return fmt.Errorf("loadgen: app %s has no webhook secret", a.ID)
		}
		recv.secret.Store(&a.WebhookSecrets[0])
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Setup += fmt.Sprintf("; users in a fresh app whose before-send webhook (a receiver in imbench, signature checked) answers allow after %v", cfg.BeforeSendDelay)
	r.Figures["webhook_calls"] = float64(recv.calls.Load())
	r.Figures["webhook_bad_signatures"] = float64(recv.bad.Load())
	r.Figures["webhook_connections"] = float64(recv.conns.Load())
	if ref != nil {
		compareWithRef(r, ref, "reference", "webhook")
	}
	return r, nil
}

func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// createBenchApp creates app id through the admin API and makes c's users
// its users (c.App, c.Secret).
func createBenchApp(ctx context.Context, c *Config, id string, s apps.Settings) (apps.App, error) {
	admin, err := auth.NewTokens([]byte(c.AdminSecret), time.Hour)
	if err != nil {
		return apps.App{}, fmt.Errorf("loadgen: admin secret: %w", err)
	}
	tok, _, err := admin.Issue("imbench", true)
	if err != nil {
		return apps.App{}, err
	}
	base := c.AdminURL
	if base == "" {
		if base, err = httpBase(c.Targets[0]); err != nil {
			return apps.App{}, err
		}
	}
	hc := &client.HTTP{BaseURL: base, Token: tok, Client: &http.Client{Timeout: c.Timeout}}
	a, err := hc.CreateApp(ctx, id, s)
	if err != nil {
		return apps.App{}, fmt.Errorf("loadgen: create app %s: %w", id, err)
	}
	if len(a.Secrets) == 0 {
		return apps.App{}, fmt.Errorf("loadgen: app %s has no token secret", id)
	}
	c.App, c.Secret = a.ID, a.Secrets[0]
	return a, nil
}

// hookReceiver is the app server's before-send endpoint: it checks each
// call's signature with the app's webhook secret, waits delay (the app
// server's own work) and allows the message. It counts calls, bad
// signatures and the connections the node opened to it (a pooled client
// opens few and keeps them).
//
// It shares the CPU with the node it measures, so it is a fasthttp.Server
// (keep-alive; no goroutine switch, Request or header map per request)
// rather than net/http's, whose per-request goroutines, background reads
// and header maps cost the node's machine about as much as the node's own
// side of the call. It reads every request over TCP, verifies its
// signature over the raw body with hooks.Verify, waits the delay and
// answers over HTTP.
type hookReceiver struct {
	url    string
	delay  time.Duration
	secret atomic.Pointer[string]
	srv    *fasthttp.Server
	done   chan struct{} // closed when Serve returned

	calls, bad, conns atomic.Int64
}

const (
	answerAllow = `{"action":"allow"}`
	maxHookBody = 1 << 20
)

func startHookReceiver(addr string, delay time.Duration) (*hookReceiver, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: webhook receiver: %w", err)
	}
	h := &hookReceiver{url: "http://" + ln.Addr().String() + "/before-send", delay: delay, done: make(chan struct{})}
	h.srv = &fasthttp.Server{
		Handler:               h.serve,
		Name:                  "imbench",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		MaxRequestBodySize:    maxHookBody,
		ReadBufferSize:        8 << 10, // the request's headers must fit
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				h.conns.Add(1)
			}
		},
	}
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

// serve answers one request.
func (h *hookReceiver) serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	secret := h.secret.Load()
	if secret == nil || hooks.Verify(string(ctx.Request.Header.Peek(hooks.HeaderSignature)), ctx.PostBody(), *secret, 0, time.Now()) != nil {
		h.bad.Add(1)
		ctx.Error("bad signature\n", fasthttp.StatusUnauthorized)
		return
	}
	h.calls.Add(1)
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(answerAllow)
}

// close stops the receiver: no new connection, idle ones closed, and the
// requests under way answered (within 5 s).
func (h *hookReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.ShutdownWithContext(ctx)
	<-h.done
}
