package main

// What imctl needs of the protocol's media content kinds (media-spec:
// Content.image = 5, audio = 6, video = 7, file = 8, each a Media), kept in
// this one file because protos/clientpb does not have them yet on this
// branch. Until the protocol is merged, a Media travels as an unknown field
// of Content, written and read with protowire at the spec's field numbers:
// the binary codec carries unknown fields unchanged, so a node that knows
// the kinds sees a real image; the JSON codec drops them, hence send --file
// refuses --codec json (checkMediaCodec) and listen --codec json prints no
// media line.
//
// After the merge, mediaContent builds the generated oneof
// (&clientpb.Content{Kind: &clientpb.Content_Image{Image: &clientpb.Media{...}}}),
// mediaOf reads c.GetImage() / GetAudio() / GetVideo() / GetFile(),
// checkMediaCodec goes, and so does every protowire line below.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"actorim/protos/clientpb"
)

// media mirrors the protocol's Media message.
type media struct {
	FileID     string
	Name       string
	MIMEType   string
	Size       uint64
	SHA256     string
	Width      uint32
	Height     uint32
	DurationMs uint32
	Thumb      *thumb
	Blurhash   string
	Caption    string
	Voice      bool
}

// thumb mirrors the protocol's Thumbnail message.
type thumb struct {
	MIMEType      string
	Width, Height uint32
	Size          uint64
}

// mediaKinds are the Content field numbers of the media kinds.
var mediaKinds = map[string]protowire.Number{"image": 5, "audio": 6, "video": 7, "file": 8}

// checkMediaCodec refuses the JSON codec, which cannot carry media content
// before the protocol merge.
func checkMediaCodec(codec string) error {
	if codec == "json" {
		return errors.New("send --file needs --codec proto in this imctl build")
	}
	return nil
}

// mediaContent is content of kind (image, audio, video or file) carrying
// m; the sender sets the file id and the fields the client declares
// (caption, voice, duration, a video's size). The node fills the rest from
// the upload.
func mediaContent(kind string, m media) (*clientpb.Content, error) {
	num, ok := mediaKinds[kind]
	if !ok {
		return nil, fmt.Errorf("unknown media kind %q", kind)
	}
	var b []byte
	str := func(n protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	varint := func(n protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, n, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	str(1, m.FileID)
	str(2, m.Name)
	varint(6, uint64(m.Width))
	varint(7, uint64(m.Height))
	varint(8, uint64(m.DurationMs))
	str(11, m.Caption)
	varint(12, protowire.EncodeBool(m.Voice))
	field := protowire.AppendTag(nil, num, protowire.BytesType)
	field = protowire.AppendBytes(field, b)
	c := &clientpb.Content{}
	c.ProtoReflect().SetUnknown(protoreflect.RawFields(field))
	return c, nil
}

// mediaOf returns the media content c carries, if any.
func mediaOf(c *clientpb.Content) (kind string, m media, ok bool) {
	raw := c.ProtoReflect().GetUnknown()
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return "", media{}, false
		}
		raw = raw[n:]
		var val []byte
		if typ == protowire.BytesType {
			val, n = protowire.ConsumeBytes(raw)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, raw)
		}
		if n < 0 {
			return "", media{}, false
		}
		raw = raw[n:]
		for k, kn := range mediaKinds {
			if kn == num && typ == protowire.BytesType {
				m, ok = parseMedia(val)
				return k, m, ok
			}
		}
	}
	return "", media{}, false
}

// parseMedia decodes a Media message.
func parseMedia(b []byte) (media, bool) {
	var m media
	ok := eachField(b, func(num protowire.Number, v uint64, s []byte) {
		switch num {
		case 1:
			m.FileID = string(s)
		case 2:
			m.Name = string(s)
		case 3:
			m.MIMEType = string(s)
		case 4:
			m.Size = v
		case 5:
			m.SHA256 = string(s)
		case 6:
			m.Width = uint32(v)
		case 7:
			m.Height = uint32(v)
		case 8:
			m.DurationMs = uint32(v)
		case 9:
			t := &thumb{}
			if eachField(s, func(num protowire.Number, v uint64, s []byte) {
				switch num {
				case 1:
					t.MIMEType = string(s)
				case 2:
					t.Width = uint32(v)
				case 3:
					t.Height = uint32(v)
				case 4:
					t.Size = v
				}
			}) {
				m.Thumb = t
			}
		case 10:
			m.Blurhash = string(s)
		case 11:
			m.Caption = string(s)
		case 12:
			m.Voice = v != 0
		}
	})
	return m, ok
}

// eachField calls fn with each varint (v) and length-delimited (s) field of
// a message; it reports whether the message parsed.
func eachField(b []byte, fn func(num protowire.Number, v uint64, s []byte)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			fn(num, v, nil)
			b = b[n:]
		case protowire.BytesType:
			s, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			fn(num, 0, s)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}

// mediaText renders a message's media content for people, as in
// "[image cat.jpg 1024x768 120 KiB file=<id> msg=<id>] caption"; ok is
// false for content without media.
func mediaText(msg *clientpb.Message) (string, bool) {
	kind, m, ok := mediaOf(msg.GetContent())
	if !ok {
		return "", false
	}
	if kind == "audio" && m.Voice {
		kind = "voice"
	}
	parts := []string{kind}
	if m.Name != "" {
		parts = append(parts, m.Name)
	}
	if m.Width > 0 && m.Height > 0 {
		parts = append(parts, fmt.Sprintf("%dx%d", m.Width, m.Height))
	}
	if m.DurationMs > 0 {
		parts = append(parts, clock(time.Duration(m.DurationMs)*time.Millisecond))
	}
	if m.Size > 0 || m.SHA256 != "" {
		parts = append(parts, humanBytes(int64(m.Size)))
	}
	parts = append(parts, "file="+m.FileID, fmt.Sprintf("msg=%d", msg.GetId()))
	line := "[" + strings.Join(parts, " ") + "]"
	if m.Caption != "" {
		line += " " + m.Caption
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
