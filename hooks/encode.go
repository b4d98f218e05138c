package hooks

import (
	"strconv"
	"unicode/utf8"

	"actorim/protos/clientpb"
)

// appendBeforeSendPayload appends the before-send body of m to dst: the
// bytes item(id, app, EventBeforeSend, atMs, MessageOf(m)).Payload would
// be, written without reflection for the usual case, a text message. Any
// other content (and a text that is not valid UTF-8, which protojson
// refuses) takes the reflective path, so the body is always the same.
// It runs on every message of an app with a before-send webhook.
func appendBeforeSendPayload(dst []byte, app, id string, atMs int64, m *clientpb.Message) []byte {
	text, ok := m.GetContent().GetKind().(*clientpb.Content_Text)
	if !ok || !utf8.ValidString(text.Text) {
		return append(dst, BeforeSendPayload(app, id, atMs, m)...)
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, Version, 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"event":"`+EventBeforeSend+`","app":`...)
	dst = appendJSONString(dst, app)
	dst = append(dst, `,"at_ms":`...)
	dst = strconv.AppendInt(dst, atMs, 10)
	dst = append(dst, `,"data":{"id":"`...)
	dst = strconv.AppendUint(dst, m.GetId(), 10)
	dst = append(dst, `","conversation_id":`...)
	dst = appendJSONString(dst, m.GetConversationId())
	if m.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		dst = append(dst, `,"conversation_type":"group","from":`...)
	} else {
		dst = append(dst, `,"conversation_type":"private","from":`...)
	}
	dst = appendJSONString(dst, m.GetFrom())
	if v := m.GetFromDevice(); v != "" {
		dst = append(dst, `,"from_device":`...)
		dst = appendJSONString(dst, v)
	}
	dst = append(dst, `,"to":`...)
	dst = appendJSONString(dst, m.GetTo())
	if v := m.GetClientMsgId(); v != "" {
		dst = append(dst, `,"client_msg_id":`...)
		dst = appendJSONString(dst, v)
	}
	if v := int64(m.GetSentAtMs()); v != 0 {
		dst = append(dst, `,"sent_at_ms":`...)
		dst = strconv.AppendInt(dst, v, 10)
	}
	if ms := m.GetMentions(); len(ms) > 0 {
		dst = append(dst, `,"mentions":[`...)
		for i, v := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v)
		}
		dst = append(dst, ']')
	}
	if m.GetSilent() {
		dst = append(dst, `,"silent":true`...)
	}
	dst = append(dst, `,"content":{"text":`...)
	dst = appendJSONString(dst, text.Text)
	return append(dst, "}}}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json writes
// one (HTML-safe: <, > and & escaped; U+2028 and U+2029 escaped; invalid
// UTF-8 as U+FFFD). For valid UTF-8 this is also what protojson's string,
// compacted by encoding/json, becomes.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
