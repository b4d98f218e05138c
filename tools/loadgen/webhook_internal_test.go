package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"actorim/hooks"
	"actorim/protos/clientpb"
)

// The receiver answers the node's real client (fasthttp's, pooled) over
// HTTP after its delay, allows signed calls and refuses the others.
func TestHookReceiver(t *testing.T) {
	recv, err := startHookReceiver("", 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.close()
	secret := "the-apps-webhook-secret"
	recv.secret.Store(&secret)
	target := hooks.Target{URL: recv.url, Secrets: []string{secret}, Events: []string{hooks.EventBeforeSend}, Timeout: 2 * time.Second}
	wrong := target
	wrong.Secrets = []string{"another-secret"}
	c := hooks.NewCaller(hooks.StaticTargets{"good": target, "bad": wrong}, nil, nil, hooks.Config{})
	m := &clientpb.Message{From: "alice", To: "bob", ClientMsgId: "c1", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hello"}}}
	for range 20 {
		start := time.Now()
		if d := c.BeforeSend(context.Background(), "good", m); d.Action != hooks.Allow || d.Failed {
			t.Fatalf("signed call: %+v", d)
		}
		if took := time.Since(start); took < 2*time.Millisecond {
			t.Fatalf("answered after %v, before the delay", took)
		}
	}
	if d := c.BeforeSend(context.Background(), "bad", m); !d.Failed || !strings.Contains(d.Err.Error(), "401") {
		t.Fatalf("badly signed call: %+v", d)
	}
	if recv.calls.Load() != 20 || recv.bad.Load() != 1 || recv.conns.Load() != 1 {
		t.Fatalf("calls %d, bad %d, connections %d; want 20, 1, 1", recv.calls.Load(), recv.bad.Load(), recv.conns.Load())
	}

	// A request it cannot read is answered 400 and its connection closed;
	// another method than POST 405.
	addr := strings.TrimPrefix(strings.TrimSuffix(recv.url, "/before-send"), "http://")
	for req, want := range map[string]string{
		"POST /before-send HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n": "HTTP/1.1 400 ",
		"GET /before-send HTTP/1.1\r\nHost: x\r\n\r\n":                          "HTTP/1.1 405 ",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, req)
		br := bufio.NewReader(conn)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("%q answered %q, %v; want %s", req, line, err, want)
		}
		if want == "HTTP/1.1 400 " {
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("connection not closed after a 400: %v", err)
			}
		}
		_ = conn.Close()
	}
}
