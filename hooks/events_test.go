package hooks

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMessageStoredPayload(t *testing.T) {
	m := textMessage("alice", "bob", "c1", "hello")
	m.Id, m.SentAtMs = 1234, 1_800_000_000_000
	it := MessageStored("default", m)
	want := `{"v":1,"id":"msg-default-1234","event":"message.stored","app":"default","at_ms":1800000000000,` +
		`"data":{"id":"1234","conversation_id":"p:alice:bob","conversation_type":"private","from":"alice",` +
		`"from_device":"d1","to":"bob","client_msg_id":"c1","sent_at_ms":1800000000000,"content":{"text":"hello"}}}`
	if string(it.Payload) != want {
		t.Fatalf("payload\n%s\nwant\n%s", it.Payload, want)
	}
	if it.ID != "msg-default-1234" || it.App != "default" || it.Event != EventMessageStored || it.CreatedAtMs != 1_800_000_000_000 {
		t.Fatalf("item %+v", it)
	}
}

// TestEventIDsStable: an event built twice has one id; another has another.
func TestEventIDsStable(t *testing.T) {
	g := GroupData{Group: "g1", Change: GroupMemberAdded, Actor: "alice", Members: []string{"bob"}}
	if a, b := GroupChanged("default", g, 5), GroupChanged("default", g, 5); a.ID != b.ID || !strings.HasPrefix(a.ID, "grp-default-") {
		t.Fatalf("ids %s, %s", a.ID, b.ID)
	}
	if a, b := GroupChanged("default", g, 5), GroupChanged("default", g, 6); a.ID == b.ID {
		t.Fatal("two changes share an id")
	}
	f := FriendData{User: "alice", Peer: "bob", Change: FriendRequest}
	if a, b := FriendChanged("default", f, 1), FriendChanged("other", f, 1); a.ID == b.ID {
		t.Fatal("two apps share an id")
	}
	p := PushData{PushMessage: PushMessage{MessageID: "42", From: "alice"}, Recipients: []PushRecipient{{User: "bob", Badge: 3, Tokens: []PushToken{{Device: "d", Provider: "fcm", Token: "tok"}}}}}
	if it := PushOffline("default", p, 1); !strings.HasPrefix(it.ID, "push-default-42-") {
		t.Fatalf("push id %s", it.ID)
	}
	for _, it := range []struct {
		event string
		body  []byte
	}{
		{EventUserOnline, UserOnline("default", PresenceData{User: "alice", Device: "d1", Platform: "web"}, 1).Payload},
		{EventUserOffline, UserOffline("default", PresenceData{User: "alice"}, 2).Payload},
		{EventGroupChanged, GroupChanged("default", g, 3).Payload},
		{EventFriendChanged, FriendChanged("default", f, 4).Payload},
		{EventPushOffline, PushOffline("default", p, 5).Payload},
	} {
		var env Envelope
		if err := json.Unmarshal(it.body, &env); err != nil || env.V != Version || env.Event != it.event || env.App != "default" || env.Data == nil {
			t.Fatalf("%s payload %s: %v", it.event, it.body, err)
		}
	}
}
