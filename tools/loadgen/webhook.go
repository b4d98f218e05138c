package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
		r.Reference = ref
		r.Figures["ref_delivered_per_s"] = ref.Window.Throughput
		r.Figures["ref_node_cpu_s_per_million"] = ref.Node.CPUPerMillion
		r.Figures["ref_client_cpu_s_per_million"] = ref.Client.CPUPerMillion
		if ref.Window.Throughput > 0 {
			r.Figures["vs_ref"] = round(r.Window.Throughput/ref.Window.Throughput, 3)
		}
		if ref.Node.CPUPerMillion > 0 {
			r.Figures["node_cpu_vs_ref"] = round(r.Node.CPUPerMillion/ref.Node.CPUPerMillion, 3)
		}
		r.Passed = r.Passed && ref.Passed
		r.Summary = "reference " + ref.Summary + "; webhook " + r.Summary
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
// It shares the CPU with the node it measures, so it is a minimal HTTP/1.1
// server (keep-alive, Content-Length bodies; anything else is answered 400
// and the connection closed) instead of net/http's, whose per-request
// goroutines, background reads and header maps cost the node's machine
// about as much as the node's own side of the call: it still reads every
// request over TCP, verifies its signature over the raw body with
// hooks.Verify, waits the delay and answers over HTTP.
type hookReceiver struct {
	url    string
	delay  time.Duration
	secret atomic.Pointer[string]
	ln     net.Listener

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool

	calls, bad, conns atomic.Int64
}

func startHookReceiver(addr string, delay time.Duration) (*hookReceiver, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: webhook receiver: %w", err)
	}
	h := &hookReceiver{url: "http://" + ln.Addr().String() + "/before-send", delay: delay, ln: ln, open: map[net.Conn]struct{}{}}
	go h.accept()
	return h, nil
}

func (h *hookReceiver) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = c.Close()
			return
		}
		h.open[c] = struct{}{}
		h.mu.Unlock()
		h.conns.Add(1)
		go h.serve(c)
	}
}

const (
	answerAllow   = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"action\":\"allow\"}"
	answerBadSig  = "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nbad signature\n"
	answerBadReq  = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad request\n"
	maxHookBody   = 1 << 20
	maxHookHeader = 8 << 10
)

// serve answers the requests of one connection, one after the other.
func (h *hookReceiver) serve(c net.Conn) {
	defer func() {
		h.mu.Lock()
		delete(h.open, c)
		h.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReaderSize(c, maxHookHeader)
	var body []byte
	for {
		req, err := readHookRequest(br, body[:0])
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_, _ = io.WriteString(c, answerBadReq)
			}
			return
		}
		body = req.body
		secret := h.secret.Load()
		answer := answerAllow
		if secret == nil || hooks.Verify(req.signature, req.body, *secret, 0, time.Now()) != nil {
			h.bad.Add(1)
			answer = answerBadSig
		} else {
			h.calls.Add(1)
			if h.delay > 0 {
				time.Sleep(h.delay)
			}
		}
		if _, err := io.WriteString(c, answer); err != nil || req.close {
			return
		}
	}
}

// hookRequest is what the receiver uses of a request.
type hookRequest struct {
	signature string
	body      []byte
	close     bool // the client asked to close after the answer
}

// readHookRequest reads one HTTP/1.x request with a Content-Length body
// (read into buf's storage). io.EOF: the client closed between requests.
func readHookRequest(br *bufio.Reader, buf []byte) (hookRequest, error) {
	var r hookRequest
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return r, io.EOF
		}
		return r, fmt.Errorf("request line: %w", err)
	}
	method, rest, _ := strings.Cut(string(line), " ")
	_, proto, _ := strings.Cut(rest, " ")
	proto = strings.TrimSpace(proto)
	if method != http.MethodPost || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
		return r, fmt.Errorf("request line %q", line)
	}
	r.close = proto == "HTTP/1.0"
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return r, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return r, fmt.Errorf("header %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 || n > maxHookBody || length >= 0 {
				return r, fmt.Errorf("content length %q", v)
			}
			length = n
		case bytes.EqualFold(k, []byte(hooks.HeaderSignature)):
			r.signature = string(v)
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return r, errors.New("transfer-encoding not supported")
		case bytes.EqualFold(k, []byte("Connection")):
			r.close = bytes.EqualFold(v, []byte("close"))
		}
	}
	if length < 0 {
		return r, errors.New("no content length")
	}
	r.body = slices.Grow(buf[:0], length)[:length]
	if _, err := io.ReadFull(br, r.body); err != nil {
		return r, fmt.Errorf("body: %w", err)
	}
	return r, nil
}

func (h *hookReceiver) close() {
	_ = h.ln.Close()
	h.mu.Lock()
	h.closed = true
	for c := range h.open {
		_ = c.Close()
	}
	h.mu.Unlock()
}
