package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Media in messages. A Send whose content is an image, audio, video or file
// names an upload by file_id; before the Send reaches a grain, resolveMedia
// checks the upload's record (it exists, the sender owns it, its MIME type
// fits the kind), fills the server's fields from it, and marks the file sent
// (so the collector of unsent uploads never deletes a file a stored message
// carries). It runs where the Send enters the actors: on the connection
// actor of the sending socket (send.go, group_send.go) or on the caller's
// goroutine for the HTTP API (Service.Send), never on a user or group
// grain, whose other work would wait for its two store calls.
//
// The filling is a function of the record and the client's fields only, so a
// retry with the same client_msg_id is resolved to the same content and is
// recognised as a duplicate (sameSend); a MarkMediaSent repeated by a retry
// keeps the first time.

// The media kinds of Content; an image, audio or video needs a MIME type
// under "<kind>/", a file takes any type.
const (
	kindImage = clientpb.MediaImage
	kindAudio = clientpb.MediaAudio
	kindVideo = clientpb.MediaVideo
	kindFile  = clientpb.MediaFile
)

// mediaOf returns the Media of a media content (an empty one for a kind set
// without one) and its kind; nil and "" for other contents.
func mediaOf(c *clientpb.Content) (*clientpb.Media, string) {
	m, kind := clientpb.MediaOf(c)
	if kind == "" {
		return nil, ""
	}
	return orEmpty(m), kind
}

// orEmpty makes a oneof's nil Media (possible when built in Go) an empty one.
func orEmpty(m *clientpb.Media) *clientpb.Media {
	if m == nil {
		return &clientpb.Media{}
	}
	return m
}

var errMediaDisabled = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "media messages are not enabled on this server")

// resolveMedia returns s unchanged unless its content is media; then a copy
// of s whose media is filled from the upload's record, once the file is
// marked sent. sender is who sends (for the HTTP API, the user in the
// path): only the uploader may send a file. The error is the client's:
// ERR_NOT_FOUND (no such upload), ERR_FORBIDDEN (another user's),
// ERR_BAD_REQUEST (a kind that does not fit the file's type, or invalid
// fields), ERR_UNSUPPORTED (media disabled), ERR_UNAVAILABLE (the store).
// Each store call is bounded by Config.StoreTimeout.
func (d *deps) resolveMedia(ctx context.Context, sender string, s *clientpb.Send) (*clientpb.Send, *clientpb.Error) {
	m, kind := mediaOf(s.GetContent())
	if m == nil {
		return s, nil
	}
	if d.media == nil {
		return nil, errMediaDisabled
	}
	// The client's fields first: a malformed file_id costs no store call.
	if e := validateSend(s, d.cfg.MaxContentBytes); e != nil {
		return nil, e
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	f, err := d.media.GetMediaFile(sctx, m.GetFileId())
	cancel()
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil, clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such file: "+m.GetFileId())
	case err != nil:
		d.log.Error("send: get media file", "user", sender, "file", m.GetFileId(), "err", err)
		return nil, errStoreUnavailableSend
	case f.Owner != sender:
		return nil, clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "file "+m.GetFileId()+" was uploaded by another user")
	case kind != kindFile && !strings.HasPrefix(f.MIME, kind+"/"):
		return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST,
			fmt.Sprintf("content: %s needs a %s/* file; %s is %s (send it as file)", kind, kind, m.GetFileId(), f.MIME))
	}
	out := proto.Clone(s).(*clientpb.Send)
	out.Content = clientpb.MediaContent(kind, fillMedia(m, kind, f))
	// The filled name may be longer than the client's: check the limit again.
	if e := validateContent(out.GetContent(), d.cfg.MaxContentBytes); e != nil {
		return nil, e
	}
	sctx, cancel = context.WithTimeout(ctx, d.cfg.StoreTimeout)
	err = d.media.MarkMediaSent(sctx, f.ID, uint64(time.Now().UnixMilli()))
	cancel()
	switch {
	case errors.Is(err, persistence.ErrNotFound): // collected meanwhile
		return nil, clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such file: "+m.GetFileId())
	case err != nil:
		d.log.Error("send: mark media sent", "user", sender, "file", f.ID, "err", err)
		return nil, errStoreUnavailableSend
	}
	return out, nil
}

// fillMedia returns the Media a message carries: the client's file_id,
// caption, voice and duration (and a video's dimensions, and the name when
// the client set one), every other field from the upload's record f.
func fillMedia(client *clientpb.Media, kind string, f persistence.MediaFile) *clientpb.Media {
	m := &clientpb.Media{
		FileId:     f.ID,
		Name:       client.GetName(),
		MimeType:   f.MIME,
		Size:       uint64(max(f.Size, 0)),
		Sha256:     f.SHA256,
		Width:      uint32(max(f.Width, 0)),
		Height:     uint32(max(f.Height, 0)),
		DurationMs: client.GetDurationMs(),
		Blurhash:   f.Blurhash,
		Caption:    client.GetCaption(),
		Voice:      client.GetVoice(),
	}
	if m.Name == "" {
		m.Name = f.Name
	}
	if kind == kindVideo { // the server does not decode videos
		m.Width, m.Height = client.GetWidth(), client.GetHeight()
	}
	if f.ThumbBlob != "" || f.ThumbSize > 0 {
		m.Thumbnail = &clientpb.Thumbnail{MimeType: f.ThumbMIME, Width: uint32(max(f.ThumbWidth, 0)),
			Height: uint32(max(f.ThumbHeight, 0)), Size: uint64(max(f.ThumbSize, 0))}
	}
	return m
}

// mediaMessage returns the message with id msgID of user's own timeline,
// as sync shows it (recalled: flagged, content cleared); an error wrapping
// persistence.ErrNotFound when the timeline has no such message. It costs
// O(log n) point reads of the timeline (findEntry) and one read of the
// conversation's recall set, each bounded by Config.StoreTimeout.
func (d *deps) mediaMessage(ctx context.Context, user string, msgID uint64) (*clientpb.Message, error) {
	e, err := d.findEntry(ctx, user, msgID)
	if err != nil {
		return nil, fmt.Errorf("actors: find message %d of %q: %w", msgID, user, err)
	}
	if e.GetMessage() == nil {
		return nil, fmt.Errorf("actors: message %d in the timeline of %q: %w", msgID, user, persistence.ErrNotFound)
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	flagged, err := d.flagRecalled(sctx, []*clientpb.Entry{e})
	if err != nil {
		return nil, fmt.Errorf("actors: recall set of %q: %w", e.GetMessage().GetConversationId(), err)
	}
	return flagged[0].GetMessage(), nil
}
