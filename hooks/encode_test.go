package hooks

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"actorim/protos/clientpb"
)

// The hand-written before-send body is byte for byte the reflective one.
func TestAppendBeforeSendPayload(t *testing.T) {
	texts := []string{"", "hello", `quote " backslash \ slash /`, "<a href='x'>&amp;</a>", "line\nfeed\r\ttab\b\f\x00\x01\x1f\x7f",
		"emoji 😀 é ü 中文", "sep \u2028 \u2029 end", "\ufffd literal replacement", "bad \xff utf8", "\xc3"}
	for b := range 256 {
		texts = append(texts, string([]byte{'x', byte(b), 'y'}))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n := rng.IntN(40)
		buf := make([]byte, n)
		for i := range buf {
			switch rng.IntN(3) {
			case 0:
				buf[i] = byte(rng.IntN(0x80))
			default:
				buf[i] = byte(rng.IntN(256))
			}
		}
		texts = append(texts, string(buf))
	}
	var msgs []*clientpb.Message
	for i, text := range texts {
		m := textMessage("al<ice", "b\"ob", "c1", text)
		switch i % 4 {
		case 1:
			m.FromDevice, m.ClientMsgId = "", ""
		case 2:
			m.ConversationType, m.Mentions, m.Silent, m.SentAtMs, m.Id = clientpb.ConversationType_CONVERSATION_TYPE_GROUP, []string{"x", "y&z", text}, true, 1800000000123, 42
		case 3:
			m.From, m.To = text, text
		}
		msgs = append(msgs, m)
	}
	other := textMessage("alice", "bob", "c2", "")
	other.Content = &clientpb.Content{Kind: &clientpb.Content_Emoji{Emoji: "👍"}}
	noContent := textMessage("alice", "bob", "c3", "")
	noContent.Content = nil
	msgs = append(msgs, other, noContent)
	for _, m := range msgs {
		for _, app := range []string{"default", "a&b\u2028"} {
			id := BeforeSendID(app, m)
			want := BeforeSendPayload(app, id, 1800000000000, m)
			got := appendBeforeSendPayload(nil, app, id, 1800000000000, m)
			if !bytes.Equal(got, want) {
				t.Fatalf("message %v:\n got %s\nwant %s", m, got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
		}
	}
}

func BenchmarkBeforeSendPayload(b *testing.B) {
	m := textMessage("alice", "bob", "c1", "hello, this is a message of a usual length")
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = BeforeSendPayload("default", "bs-default-alice-c1", 1800000000000, m)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendBeforeSendPayload(buf[:0], "default", "bs-default-alice-c1", 1800000000000, m)
		}
	})
}
