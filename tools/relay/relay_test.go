package relay_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"actorim/auth"
	"actorim/client"
	"actorim/protos/clientpb"
	"actorim/tools/relay"
)

// TestRelay logs two users in over each pair of codecs, sends, and checks
// the push: the recipient's seqs run 1, 2, ... and the ack carries the
// pushed id and content.
func TestRelay(t *testing.T) {
	srv := httptest.NewServer(relay.New().Handler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	tokens, err := auth.NewTokens([]byte("any-secret-the-relay-never-checks"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for n, codecs := range [][2]bool{{false, false}, {true, true}, {false, true}, {true, false}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		login := func(user string, json bool) *client.Conn {
			c, err := client.Dial(ctx, url, client.Options{JSON: json, PushBuffer: 16})
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := tokens.Issue(user, false)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := c.Login(ctx, tok, "d", clientpb.Platform_PLATFORM_DESKTOP, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ok.GetUserId() != user {
				t.Fatalf("LoginOK user %q, want %q", ok.GetUserId(), user)
			}
			return c
		}
		bob := "bob" + string(rune('0'+n))
		a, b := login("alice"+string(rune('0'+n)), codecs[0]), login(bob, codecs[1])
		for i := uint64(1); i <= 3; i++ {
			ack, err := a.SendText(ctx, bob, "m"+string(rune('0'+i)), "hi")
			if err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-b.Pushes():
				e := p.GetEntries()[0]
				if e.GetMessage().GetId() != ack.GetMsgId() || e.GetMessage().GetContent().GetText() != "hi" {
					t.Fatalf("push %v for ack %v", p, ack)
				}
				if e.GetSeq() != i {
					t.Fatalf("codecs %v: seq %d, want %d", codecs, e.GetSeq(), i)
				}
			case <-ctx.Done():
				t.Fatal("no push")
			}
		}
		_ = a.Close()
		_ = b.Close()
	}
}
