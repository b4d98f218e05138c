package relay

import (
	"encoding/json"

	"actorim/protos/clientpb"
	"actorim/wire"
)

// The JSON subprotocol's hot frames (Send and PushAck in, Push and SendAck
// out) go through encoding/json with the message content passed through as
// raw JSON, as a minimal relay would do, rather than through protojson; the
// output is the canonical proto3 JSON mapping the client decodes (uint64 as
// strings, enums by name). Every other frame takes the wire codec.

type jsonIn struct {
	ID      uint32          `json:"id"`
	Send    *jsonSend       `json:"send"`
	PushAck json.RawMessage `json:"pushAck"`
}

type jsonSend struct {
	ClientMsgID string          `json:"clientMsgId"`
	To          string          `json:"to"`
	Content     json.RawMessage `json:"content"`
}

type jsonPushFrame struct {
	Push struct {
		Entries [1]jsonEntry `json:"entries"`
	} `json:"push"`
}

type jsonEntry struct {
	Seq     uint64      `json:"seq,string"`
	Message jsonMessage `json:"message"`
}

type jsonMessage struct {
	ID               uint64          `json:"id,string"`
	ConversationID   string          `json:"conversationId"`
	ConversationType string          `json:"conversationType"`
	From             string          `json:"from"`
	To               string          `json:"to"`
	FromDevice       string          `json:"fromDevice"`
	ClientMsgID      string          `json:"clientMsgId,omitempty"`
	SentAtMs         uint64          `json:"sentAtMs,string"`
	Content          json.RawMessage `json:"content,omitempty"`
}

type jsonAckFrame struct {
	ID      uint32      `json:"id,omitempty"`
	SendAck jsonSendAck `json:"sendAck"`
}

type jsonSendAck struct {
	ClientMsgID    string `json:"clientMsgId,omitempty"`
	MsgID          uint64 `json:"msgId,string"`
	SentAtMs       uint64 `json:"sentAtMs,string"`
	ConversationID string `json:"conversationId"`
}

// fastJSON handles a JSON Send or PushAck of a logged-in connection; it
// reports false for any other frame, which the caller decodes in full.
func (s *Server) fastJSON(c *conn, me string, data []byte) bool {
	var in jsonIn
	if json.Unmarshal(data, &in) != nil {
		return false
	}
	switch {
	case in.Send != nil:
		s.relay(c, in.ID, me, in.Send.To, in.Send.ClientMsgID, nil, in.Send.Content)
		return true
	case in.PushAck != nil:
		return true
	}
	return false
}

// content returns the message content in both forms, filling in the one
// missing (a binary sender's content for a JSON recipient, or the reverse).
func bothContents(pb *clientpb.Content, raw json.RawMessage) (*clientpb.Content, json.RawMessage) {
	if pb == nil && raw != nil {
		pb = &clientpb.Content{}
		if wire.UnmarshalJSON(raw, pb) != nil {
			pb = nil
		}
	}
	if raw == nil && pb != nil {
		raw, _ = wire.MarshalJSON(pb)
	}
	return pb, raw
}
