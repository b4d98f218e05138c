package main

import (
	"fmt"
	"strings"
	"time"

	"actorim/protos/clientpb"
)

// mediaContent is content of kind (image, audio, video or file) carrying
// m; the sender sets the file id and the fields the client declares
// (caption, voice, duration, a video's size). The node fills the rest from
// the upload.
func mediaContent(kind string, m *clientpb.Media) (*clientpb.Content, error) {
	if c := clientpb.MediaContent(kind, m); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("unknown media kind %q", kind)
}

// mediaOf returns the media content c carries, if any.
func mediaOf(c *clientpb.Content) (kind string, m *clientpb.Media, ok bool) {
	m, kind = clientpb.MediaOf(c)
	return kind, m, kind != ""
}

// mediaText renders a message's media content for people, as in
// "[image cat.jpg 1024x768 120 KiB file=<id> msg=<id>] caption"; ok is
// false for content without media.
func mediaText(msg *clientpb.Message) (string, bool) {
	kind, m, ok := mediaOf(msg.GetContent())
	if !ok {
		return "", false
	}
	if kind == "audio" && m.GetVoice() {
		kind = "voice"
	}
	parts := []string{kind}
	if m.GetName() != "" {
		parts = append(parts, m.GetName())
	}
	if m.GetWidth() > 0 && m.GetHeight() > 0 {
		parts = append(parts, fmt.Sprintf("%dx%d", m.GetWidth(), m.GetHeight()))
	}
	if m.GetDurationMs() > 0 {
		parts = append(parts, clock(time.Duration(m.GetDurationMs())*time.Millisecond))
	}
	if m.GetSize() > 0 || m.GetSha256() != "" {
		parts = append(parts, humanBytes(int64(m.GetSize())))
	}
	parts = append(parts, "file="+m.GetFileId(), fmt.Sprintf("msg=%d", msg.GetId()))
	line := "[" + strings.Join(parts, " ") + "]"
	if m.GetCaption() != "" {
		line += " " + m.GetCaption()
	}
	return line, true
}

// clock formats a duration as m:ss, or h:mm:ss from an hour.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
