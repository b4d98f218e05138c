package actors

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"actorim/ids"
	"actorim/protos/clientpb"
)

// validateSend checks a Send before anything is stored and returns the error
// the client gets, or nil.
func validateSend(s *clientpb.Send, maxContent int) *clientpb.Error {
	if s == nil {
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: empty")
	}
	if !ids.ValidClientMsgID(s.GetClientMsgId()) {
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: client_msg_id must be 1 to 64 printable ASCII characters other than '/'")
	}
	switch s.GetConversationType() {
	case clientpb.ConversationType_CONVERSATION_TYPE_UNSPECIFIED, clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
		clientpb.ConversationType_CONVERSATION_TYPE_GROUP:
	default:
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: unknown conversation_type")
	}
	if !ids.ValidUser(s.GetTo()) {
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: 'to' must be a user or group id of 1 to 64 characters [A-Za-z0-9_.@-]")
	}
	return validateContent(s.GetContent(), maxContent)
}

func validateContent(c *clientpb.Content, maxContent int) *clientpb.Error {
	// The binary decoder does not check UTF-8 (protobuf's reflection decoder
	// would); stored text must be valid, or JSON clients could not receive it.
	switch k := c.GetKind().(type) {
	case *clientpb.Content_Text:
		if !utf8.ValidString(k.Text) {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: text is not valid UTF-8")
		}
	case *clientpb.Content_Emoji:
		if !utf8.ValidString(k.Emoji) {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: emoji is not valid UTF-8")
		}
	case *clientpb.Content_Custom:
		if !utf8.ValidString(k.Custom.GetType()) || !utf8.ValidString(k.Custom.GetJson()) {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: custom is not valid UTF-8")
		}
	}
	var size int
	switch k := c.GetKind().(type) {
	case *clientpb.Content_Text:
		if k.Text == "" {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: empty text")
		}
		size = len(k.Text)
	case *clientpb.Content_Emoji:
		if k.Emoji == "" || utf8.RuneCountInString(k.Emoji) > 64 {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: emoji must be 1 to 64 characters")
		}
		size = len(k.Emoji)
	case *clientpb.Content_Custom:
		if k.Custom.GetType() == "" || len(k.Custom.GetType()) > 64 {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: custom.type must be 1 to 64 bytes")
		}
		size = len(k.Custom.GetType()) + len(k.Custom.GetJson())
		if size <= maxContent && !json.Valid([]byte(k.Custom.GetJson())) {
			return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: custom.json is not a JSON document")
		}
	case *clientpb.Content_Image, *clientpb.Content_Audio, *clientpb.Content_Video, *clientpb.Content_File:
		m, kind := mediaOf(c)
		if e := validateMedia(m, kind); e != nil {
			return e
		}
		size = len(m.GetCaption()) + len(m.GetName())
	default:
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: one of text, emoji, custom, image, audio, video or file is required")
	}
	if size > maxContent {
		return clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, fmt.Sprintf("content: %d bytes exceeds the limit of %d", size, maxContent))
	}
	return nil
}

// Bounds of what a sender declares about a media file.
const (
	// maxMediaDurationMs bounds Media.duration_ms: 24 hours.
	maxMediaDurationMs = 86_400_000
	// maxVideoSide bounds a video's declared width and height, in pixels.
	maxVideoSide = 100_000
)

// validateMedia checks the fields a sender sets on a media content of the
// given kind (see mediaOf). The server's fields are filled from the upload's
// record later (resolveMedia), whatever the client put there.
func validateMedia(m *clientpb.Media, kind string) *clientpb.Error {
	bad := func(msg string) *clientpb.Error {
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content: "+kind+"."+msg)
	}
	switch {
	case !validFileID(m.GetFileId()):
		return bad("file_id must be the 26 characters [a-z0-9] of an upload's id")
	case !utf8.ValidString(m.GetCaption()):
		return bad("caption is not valid UTF-8")
	case !utf8.ValidString(m.GetName()):
		return bad("name is not valid UTF-8")
	case m.GetDurationMs() > maxMediaDurationMs:
		return bad(fmt.Sprintf("duration_ms must be at most %d", maxMediaDurationMs))
	case m.GetDurationMs() != 0 && kind != kindAudio && kind != kindVideo:
		return bad("duration_ms is for audio and video")
	case m.GetVoice() && kind != kindAudio:
		return bad("voice is for audio")
	case kind == kindVideo && (m.GetWidth() > maxVideoSide || m.GetHeight() > maxVideoSide):
		return bad(fmt.Sprintf("width and height must be at most %d", maxVideoSide))
	}
	return nil
}

// validFileID reports whether id looks like a file id: 26 characters [a-z0-9].
func validFileID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
