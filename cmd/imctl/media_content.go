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
	switch kind {
	case "image":
		return &clientpb.Content{Kind: &clientpb.Content_Image{Image: m}}, nil
	case "audio":
		return &clientpb.Content{Kind: &clientpb.Content_Audio{Audio: m}}, nil
	case "video":
		return &clientpb.Content{Kind: &clientpb.Content_Video{Video: m}}, nil
	case "file":
		return &clientpb.Content{Kind: &clientpb.Content_File{File: m}}, nil
	}
	return nil, fmt.Errorf("unknown media kind %q", kind)
}

// mediaOf returns the media content c carries, if any.
func mediaOf(c *clientpb.Content) (kind string, m *clientpb.Media, ok bool) {
	switch k := c.GetKind().(type) {
	case *clientpb.Content_Image:
		return "image", k.Image, true
	case *clientpb.Content_Audio:
		return "audio", k.Audio, true
	case *clientpb.Content_Video:
		return "video", k.Video, true
	case *clientpb.Content_File:
		return "file", k.File, true
	}
	return "", nil, false
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
