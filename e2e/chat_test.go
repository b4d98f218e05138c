package e2e

import (
	"fmt"
	"testing"
	"time"

	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// TestPrivateChatTwoUsers: two users chat over each subprotocol; acks carry
// the server message id, the sender's seq and the server time; the recipient
// gets the messages in order with its own gapless seqs.
func TestPrivateChatTwoUsers(t *testing.T) {
	for _, codec := range []struct {
		name string
		opt  func(*connectOpts)
		want string
	}{
		{"proto", func(*connectOpts) {}, wire.SubprotocolProto},
		{"json", jsonCodec, wire.SubprotocolJSON},
	} {
		t.Run(codec.name, func(t *testing.T) {
			n := shared
			alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
			a := n.connect(t, alice, "a-web", nil, codec.opt)
			b := n.connect(t, bob, "b-web", nil, codec.opt)
			if a.Subprotocol() != codec.want {
				t.Fatalf("negotiated %q, want %q", a.Subprotocol(), codec.want)
			}
			before := uint64(time.Now().UnixMilli())
			var ids_ []uint64
			for i := 1; i <= 3; i++ {
				ack := a.send(t, bob, fmt.Sprintf("hello %d 😀", i))
				if ack.GetSeq() != uint64(i) || ack.GetMsgId() == 0 || ack.GetSentAtMs() < before || ack.GetDuplicate() {
					t.Fatalf("ack %d = %v", i, ack)
				}
				if ack.GetConversationId() != ids.Private(alice, bob) {
					t.Fatalf("conversation %q", ack.GetConversationId())
				}
				ids_ = append(ids_, ack.GetMsgId())
			}
			got := b.collect(t, 3, 5*time.Second)
			requireConsecutive(t, got, 1)
			if !eq(texts(got), []string{"hello 1 😀", "hello 2 😀", "hello 3 😀"}) {
				t.Fatalf("bob got %q", texts(got))
			}
			for i, e := range got {
				m := e.GetMessage()
				if m.GetId() != ids_[i] || m.GetFrom() != alice || m.GetTo() != bob || m.GetFromDevice() != "a-web" ||
					m.GetConversationType() != clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE {
					t.Fatalf("entry %d = %v", i, m)
				}
			}
			// Bob answers: alice's timeline continues at 4.
			back := b.send(t, alice, "hi alice")
			if back.GetSeq() != 4 {
				t.Fatalf("bob's ack seq %d, want 4 (3 received + 1 sent)", back.GetSeq())
			}
			in := a.collect(t, 1, 5*time.Second)
			if in[0].GetSeq() != 4 || texts(in)[0] != "hi alice" {
				t.Fatalf("alice got %v", in)
			}
		})
	}
}

// TestContentKinds: text, emoji and custom JSON payloads arrive intact;
// invalid custom JSON is refused and nothing is stored.
func TestContentKinds(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "web", nil)
	b := n.connect(t, bob, "web", nil)
	contents := []*clientpb.Content{
		client.Text("plain text with emoji 🎉🇸🇪"),
		client.Emoji("👍"),
		client.Custom("location", `{"lat":59.33,"lon":18.06,"label":"Stockholm"}`),
	}
	for _, c := range contents {
		if _, err := a.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: c}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: bob, Content: client.Custom("bad", `{"lat":`)})
	if client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("invalid custom json: %v", err)
	}
	got := b.collect(t, 3, 5*time.Second)
	for i, e := range got {
		if g := e.GetMessage().GetContent(); g.String() != contents[i].String() {
			t.Errorf("content %d = %v, want %v", i, g, contents[i])
		}
	}
	b.quiet(t, 300*time.Millisecond)
}

// TestHistoryPaging: a conversation pages backwards, newest first, reaching
// every message exactly once, over WebSocket and over HTTP, and never shows
// another conversation's messages.
func TestHistoryPaging(t *testing.T) {
	n := shared
	alice, bob, carol := n.newUser(t, "alice"), n.newUser(t, "bob"), n.newUser(t, "carol")
	a := n.connect(t, alice, "web", nil)
	var want []string
	for i := 0; i < 25; i++ {
		txt := fmt.Sprintf("ab-%02d", i)
		a.send(t, bob, txt)
		want = append([]string{txt}, want...) // newest first
		a.send(t, carol, fmt.Sprintf("ac-%02d", i))
	}
	conv := ids.Private(alice, bob)

	var got []string
	var before uint64
	for pages := 0; ; pages++ {
		res, err := a.History(ctx(t), conv, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, texts(res.GetEntries())...)
		if !res.GetHasMore() {
			break
		}
		before = res.GetEntries()[len(res.GetEntries())-1].GetSeq()
		if pages > 10 {
			t.Fatal("history does not end")
		}
	}
	if !eq(got, want) {
		t.Fatalf("history over ws:\n got %q\nwant %q", got, want)
	}

	h := &client.HTTP{BaseURL: n.http, Token: n.token(t, bob)}
	res, err := h.History(ctx(t), conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !eq(texts(res.GetEntries()), want) || res.GetHasMore() {
		t.Fatalf("history over http for bob: %q", texts(res.GetEntries()))
	}
	// Carol is not in alice and bob's conversation.
	hc := &client.HTTP{BaseURL: n.http, Token: n.token(t, carol)}
	if _, err := hc.History(ctx(t), conv, 0, 10); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("carol reads alice-bob: %v", err)
	}
}

// TestNoteToSelf: a message to oneself lands once and reaches the user's
// other devices.
func TestNoteToSelf(t *testing.T) {
	n := shared
	alice := n.newUser(t, "alice")
	web := n.connect(t, alice, "web", nil)
	phone := n.connect(t, alice, "phone", nil, platform(clientpb.Platform_PLATFORM_IOS))
	ack := web.send(t, alice, "remember the milk")
	got := phone.collect(t, 1, 5*time.Second)
	if got[0].GetSeq() != ack.GetSeq() || got[0].GetMessage().GetId() != ack.GetMsgId() {
		t.Fatalf("phone got %v for ack %v", got, ack)
	}
	res, err := web.Sync(ctx(t), 0, 0)
	if err != nil || len(res.GetEntries()) != 1 || res.GetLatestSeq() != 1 {
		t.Fatalf("sync = %v, %v", res, err)
	}
}

// TestAppServerToken: an application server mints a token with the shared
// secret for a user who never registered; the login provisions the user, who
// can then be messaged.
func TestAppServerToken(t *testing.T) {
	n := shared
	app := fmt.Sprintf("app-user-%d", time.Now().UnixNano())
	tok, _, err := n.tokens.Issue(app, false)
	if err != nil {
		t.Fatal(err)
	}
	c := n.dial(t, client.Options{})
	if _, err := c.Login(ctx(t), tok, "sdk", clientpb.Platform_PLATFORM_ANDROID, nil); err != nil {
		t.Fatalf("login with minted token: %v", err)
	}
	alice := n.newUser(t, "alice")
	a := n.connect(t, alice, "web", nil)
	a.send(t, app, "welcome")
	d := &device{Conn: c, user: app, id: "sdk"}
	if got := d.collect(t, 1, 5*time.Second); texts(got)[0] != "welcome" {
		t.Fatalf("got %v", got)
	}
}

// TestAdminSendOverHTTP: an app server sends as a user through the admin
// API; a user token is refused there.
func TestAdminSendOverHTTP(t *testing.T) {
	n := shared
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	b := n.connect(t, bob, "web", nil)
	adminTok, _, _ := n.admin.Issue("ops", true)
	h := &client.HTTP{BaseURL: n.http, Token: adminTok}
	s := &clientpb.Send{ClientMsgId: "order-1", To: bob, Content: client.Custom("order", `{"id":42}`)}
	ack, err := h.SendAs(ctx(t), alice, s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.SendAs(ctx(t), alice, s)
	if err != nil || !again.GetDuplicate() || again.GetMsgId() != ack.GetMsgId() {
		t.Fatalf("retry = %v, %v", again, err)
	}
	got := b.collect(t, 1, 5*time.Second)
	if got[0].GetMessage().GetFromDevice() != "server" || got[0].GetMessage().GetId() != ack.GetMsgId() {
		t.Fatalf("bob got %v", got)
	}
	b.quiet(t, 300*time.Millisecond)
	user := &client.HTTP{BaseURL: n.http, Token: n.token(t, alice)}
	if _, err := user.SendAs(ctx(t), alice, s); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("user token on admin api: %v", err)
	}
}
