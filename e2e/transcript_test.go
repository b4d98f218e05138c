package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"actorim/client"
	"actorim/protos/clientpb"
	"actorim/wire"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the example session in docs/protocol.md")

const protocolDoc = "../docs/protocol.md"

// TestProtocolTranscript plays the documented JSON session over raw
// WebSockets (no client library) and checks every answer. With -update-docs
// it writes the transcript into docs/protocol.md; without, it checks that
// every frame in the documented session still decodes.
func TestProtocolTranscript(t *testing.T) {
	n := startNode(t, nil)
	h := &client.HTTP{BaseURL: n.http}
	for _, u := range []string{"alice", "bob"} {
		if err := h.Register(ctx(t), u, "password-"+u); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	dial := func(who string) *rawConn {
		d := websocket.Dialer{Subprotocols: []string{wire.SubprotocolJSON}}
		ws, resp, err := d.Dial(n.ws, nil)
		specCheck.RecordResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return &rawConn{t: t, ws: ws, who: who, lines: &lines}
	}
	bob, alice := dial("bob"), dial("alice")

	bob.send(`{"id":1,"login":{"token":"%s","deviceId":"bob-phone","platform":"PLATFORM_IOS","lastSeq":"0"}}`, n.token(t, "bob"))
	bob.expect("loginOk", 1)
	alice.send(`{"id":1,"login":{"token":"%s","deviceId":"alice-web","platform":"PLATFORM_WEB"}}`, n.token(t, "alice"))
	alice.expect("loginOk", 1)

	alice.send(`{"id":2,"send":{"clientMsgId":"a-1","to":"bob","content":{"text":"Hi Bob 👋"}}}`)
	ack := alice.expect("sendAck", 2).GetSendAck()
	if ack.GetSeq() != 1 || ack.GetDuplicate() {
		t.Fatalf("ack %v", ack)
	}
	if p := bob.expect("push", 0).GetPush(); len(p.GetEntries()) != 1 || p.GetEntries()[0].GetSeq() != 1 {
		t.Fatalf("push %v", p)
	}
	bob.send(`{"pushAck":{"seq":"1"}}`)

	alice.note("the connection drops before the ack arrives; alice retries with the same clientMsgId")
	alice.send(`{"id":3,"send":{"clientMsgId":"a-1","to":"bob","content":{"text":"Hi Bob 👋"}}}`)
	if dup := alice.expect("sendAck", 3).GetSendAck(); !dup.GetDuplicate() || dup.GetMsgId() != ack.GetMsgId() {
		t.Fatalf("retry %v", dup)
	}

	bob.send(`{"id":2,"send":{"clientMsgId":"b-1","to":"alice","content":{"custom":{"type":"location","json":"{\"lat\":59.33,\"lon\":18.07}"}}}}`)
	bob.expect("sendAck", 2)
	alice.expect("push", 0)
	alice.send(`{"pushAck":{"seq":"2"}}`)

	alice.send(`{"id":4,"history":{"conversationId":"p:alice:bob","limit":10}}`)
	if hr := alice.expect("historyResult", 4).GetHistoryResult(); len(hr.GetEntries()) != 2 {
		t.Fatalf("history %v", hr)
	}
	alice.send(`{"id":5,"ping":{}}`)
	alice.expect("pong", 5)

	bob.send(`{"id":3,"send":{"clientMsgId":"b-2","to":"zed","content":{"text":"anyone?"}}}`)
	if e := bob.expect("error", 3).GetError(); e.GetCode() != clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT {
		t.Fatalf("error %v", e)
	}
	bob.send(`{"id":4,"send":`)
	if e := bob.expect("error", 0).GetError(); e.GetCode() != clientpb.ErrorCode_ERR_BAD_FRAME {
		t.Fatalf("error %v", e)
	}
	alice.send(`{"logout":{}}`)
	alice.expectClose(1000)

	transcript := "```\n" + strings.Join(lines, "\n") + "\n```"
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- transcript:begin -->\n.*<!-- transcript:end -->")
	if *updateDocs {
		doc = block.ReplaceAll(doc, []byte("<!-- transcript:begin -->\n"+transcript+"\n<!-- transcript:end -->"))
		if err := os.WriteFile(protocolDoc, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	documented := block.Find(doc)
	frames := regexp.MustCompile(`(?m)^\w+ +[<>] (\{.*\})$`).FindAllSubmatch(documented, -1)
	if len(frames) < 10 {
		t.Fatalf("docs/protocol.md holds %d example frames; run go test ./e2e -run TestProtocolTranscript -update-docs", len(frames))
	}
	for _, f := range frames {
		if _, err := (wire.JSONCodec{}).Decode(f[1]); err != nil && !bytes.Equal(f[1], []byte(`{"id":4,"send":`)) {
			t.Errorf("documented frame does not decode: %s: %v", f[1], err)
		}
	}
}

type rawConn struct {
	t     *testing.T
	ws    *websocket.Conn
	who   string
	lines *[]string
}

var tokenRE = regexp.MustCompile(`"token":"([^"]{12})[^"]*"`)

func (c *rawConn) log(dir, frame string) {
	frame = tokenRE.ReplaceAllString(frame, `"token":"${1}…"`)
	*c.lines = append(*c.lines, fmt.Sprintf("%-5s %s %s", c.who, dir, frame))
}

func (c *rawConn) note(s string) { *c.lines = append(*c.lines, "# "+s) }

func (c *rawConn) send(format string, args ...any) {
	c.t.Helper()
	frame := format
	if len(args) > 0 {
		frame = fmt.Sprintf(format, args...)
	}
	c.log(">", frame)
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads the next frame and requires its body kind and id.
func (c *rawConn) expect(kind string, id uint32) *clientpb.Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v", c.who, kind, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		c.t.Fatal(err)
	}
	c.log("<", compact.String())
	f, err := (wire.JSONCodec{}).Decode(data)
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	if _, ok := m[kind]; !ok || f.GetId() != id {
		c.t.Fatalf("%s: got %s, want %s with id %d", c.who, data, kind, id)
	}
	return f
}

func (c *rawConn) expectClose(code int) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		c.t.Fatalf("%s: want close %d, got %v", c.who, code, err)
	}
	*c.lines = append(*c.lines, fmt.Sprintf("%-5s < (close %d %q)", c.who, ce.Code, ce.Text))
}
