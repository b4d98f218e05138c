package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// TestProtocolFinePrint checks the answers docs/protocol.md promises to the
// questions a client written from it alone had to guess.
func TestProtocolFinePrint(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a1", nil)
	a.send(t, bob, "one")

	t.Run("a page limit over 500 is refused, not clamped", func(t *testing.T) {
		if _, err := a.Sync(ctx(t), 0, 501); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("sync limit 501: %v", err)
		}
		if _, err := a.History(ctx(t), ids.Private(alice, bob), 0, 501); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("history limit 501: %v", err)
		}
	})

	t.Run("a PushAck of a seq never pushed gets ERR_BAD_REQUEST with its id", func(t *testing.T) {
		f, err := a.Request(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_PushAck{PushAck: &clientpb.PushAck{Seq: 1 << 40}}})
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Errorf("answer %v, %v", f, err)
		}
	})

	t.Run("a Login refused for its device id leaves the socket open", func(t *testing.T) {
		c := n.dial(t, client.Options{})
		tok := n.token(t, bob)
		if _, err := c.Login(ctx(t), tok, "bad device id!", clientpb.Platform_PLATFORM_WEB, nil); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
			t.Fatalf("bad device id: %v", err)
		}
		if _, err := c.Login(ctx(t), tok, "b@phone:1", clientpb.Platform_PLATFORM_WEB, nil); err != nil {
			t.Fatalf("corrected login on the same socket (device id with @ and :): %v", err)
		}
	})

	t.Run("lastSeq beyond the timeline streams from latestSeq+1", func(t *testing.T) {
		c := n.dial(t, client.Options{})
		ok, err := c.Login(ctx(t), n.token(t, alice), "a2", clientpb.Platform_PLATFORM_WEB, u64(1000))
		if err != nil {
			t.Fatal(err)
		}
		if ok.GetStreamFromSeq() != ok.GetLatestSeq()+1 || ok.GetLatestSeq() >= 1000 {
			t.Errorf("LoginOK latestSeq %d streamFromSeq %d", ok.GetLatestSeq(), ok.GetStreamFromSeq())
		}
	})

	t.Run("a conversation id in an HTTP path may be percent-encoded", func(t *testing.T) {
		tok := n.token(t, alice)
		conv := ids.Private(alice, bob)
		for _, path := range []string{conv, strings.ReplaceAll(conv, ":", "%3A")} {
			req, _ := http.NewRequest(http.MethodGet, n.http+"/v1/conversations/"+path+"/messages", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var h struct {
				Entries []json.RawMessage `json:"entries"`
			}
			if res.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || len(h.Entries) != 1 {
				t.Errorf("GET %s: %d %s", path, res.StatusCode, body)
			}
		}
	})
}
