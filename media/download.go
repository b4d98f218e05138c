package media

// Downloads. Who may read a file: its uploader; anyone else names a
// message (?msg=<id>) that is in their own timeline, is not recalled and
// carries the file. The rule is checked on every request, signed links
// included, so a recall takes effect at once. A missing file is 404; every
// other refusal 403.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Cache-Control of a file fetched with a token: its bytes never change.
const cacheImmutable = "private, max-age=31536000, immutable"

// requester is who asks for a file, and by which message.
type requester struct {
	user   string
	msg    uint64 // 0: none named
	signed bool
	exp    int64 // a signed link's expiry, Unix seconds
}

func (s *Service) handleFile(w http.ResponseWriter, r *http.Request)  { s.serveFile(w, r, false) }
func (s *Service) handleThumb(w http.ResponseWriter, r *http.Request) { s.serveFile(w, r, true) }

// serveFile serves a file's bytes, or its thumbnail's, with Range and
// conditional requests (http.ServeContent over the object, streamed).
func (s *Service) serveFile(w http.ResponseWriter, r *http.Request, thumb bool) {
	f, req, ok := s.authorized(w, r)
	if !ok {
		return
	}
	key, sha, ctype := f.Blob, f.SHA256, f.MIME
	disposition := contentDisposition(f.MIME, f.Name)
	if thumb {
		if f.ThumbBlob == "" {
			writeError(w, errNoThumb)
			return
		}
		key, sha, ctype, disposition = f.ThumbBlob, f.ThumbSHA256, f.ThumbMIME, "inline"
	}
	obj, err := s.objects.Open(r.Context(), key)
	switch {
	case errors.Is(err, persistence.ErrObjectNotFound):
		s.log.Error("media: object of a file is missing", "id", f.ID, "key", key)
		writeError(w, errNoFile)
		return
	case err != nil:
		s.log.Warn("media: open object", "key", key, "err", err)
		writeError(w, errUnavailable)
		return
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", `"`+sha+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Content-Disposition", disposition)
	if req.signed {
		h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(0, req.exp-s.cfg.Now().Unix()), 10))
	} else {
		h.Set("Cache-Control", cacheImmutable)
	}
	http.ServeContent(newIdleWriter(w), r, "", time.UnixMilli(int64(f.CreatedAtMs)), obj)
}

// handleInfo is GET /v1/media/{id}/info: the file's JSON, to whoever may
// read the file.
func (s *Service) handleInfo(w http.ResponseWriter, r *http.Request) {
	f, req, ok := s.authorized(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.fileView(r.Context(), f, req.user))
}

// authorized finds the file of the request's path and checks the
// requester may read it; it answers the request itself when not.
func (s *Service) authorized(w http.ResponseWriter, r *http.Request) (persistence.MediaFile, requester, bool) {
	id := r.PathValue("id")
	req, e := s.requester(r, id)
	if e != nil {
		writeError(w, e)
		return persistence.MediaFile{}, req, false
	}
	f, ok := s.readable(w, r, id, req)
	return f, req, ok
}

// readable finds file id and checks req may read it; it answers the
// request itself when not.
func (s *Service) readable(w http.ResponseWriter, r *http.Request, id string, req requester) (persistence.MediaFile, bool) {
	if !validFileID(id) {
		writeError(w, errNoFile)
		return persistence.MediaFile{}, false
	}
	f, err := s.store.GetMediaFile(r.Context(), id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeError(w, errNoFile)
		return f, false
	case err != nil:
		s.log.Warn("media: read file record", "id", id, "err", err)
		writeError(w, errUnavailable)
		return f, false
	}
	if e := s.mayRead(r.Context(), req, f); e != nil {
		writeError(w, e)
		return f, false
	}
	return f, true
}

// requester tells who asks: a signed link's user when the query is signed
// (then no token is needed, and one is ignored), else the authenticated
// user and the message named by ?msg=.
func (s *Service) requester(r *http.Request, id string) (requester, *clientpb.Error) {
	q := r.URL.Query()
	if q.Has("sig") {
		return s.verifyLink(id, q)
	}
	user, ok := UserFrom(r.Context())
	if !ok {
		return requester{}, errNoUser
	}
	req := requester{user: user}
	if v := q.Get("msg"); v != "" {
		var err error
		if req.msg, err = strconv.ParseUint(v, 10, 64); err != nil {
			return requester{}, errBadMsgID
		}
	}
	return req, nil
}

// mayRead applies the access rule.
func (s *Service) mayRead(ctx context.Context, req requester, f persistence.MediaFile) *clientpb.Error {
	if req.user == f.Owner {
		return nil
	}
	if req.msg == 0 {
		return errNeedMsg
	}
	m, err := s.messages.MediaMessage(ctx, req.user, req.msg)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return errMsgNotYours
	case err != nil:
		s.log.Warn("media: find message", "user", req.user, "msg", req.msg, "err", err)
		return errUnavailable
	case m.GetRecalled():
		return errMsgRecalled
	case fileIDOf(m) != f.ID:
		return errMsgOtherFile
	}
	return nil
}

// contentDisposition shows images, audio and video inline and makes
// everything else a download, under the file's name (RFC 6266, RFC 8187).
func contentDisposition(mimeType, name string) string {
	d := "attachment"
	switch t := baseType(mimeType); {
	case strings.HasPrefix(t, "image/"), strings.HasPrefix(t, "audio/"), strings.HasPrefix(t, "video/"):
		d = "inline"
	}
	if name == "" {
		return d
	}
	return d + "; filename*=UTF-8''" + encodeRFC8187(name)
}

// encodeRFC8187 percent-encodes every byte of s but the attr-chars.
func encodeRFC8187(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
