package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"actorim/protos/clientpb"
)

// File is an uploaded file as the node describes it: the answer of an
// upload and of GET /v1/media/{id}/info. Zero fields were absent.
type File struct {
	ID       string `json:"file_id"`
	Name     string `json:"name"`
	MIMEType string `json:"mime_type"` // sniffed by the server from the bytes
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"` // hex
	// Width and Height are an image's dimensions.
	Width     uint32     `json:"width,omitempty"`
	Height    uint32     `json:"height,omitempty"`
	Thumbnail *Thumbnail `json:"thumbnail,omitempty"`
	Blurhash  string     `json:"blurhash,omitempty"`
	// CreatedAtMs is when the upload finished, in Unix milliseconds.
	CreatedAtMs int64 `json:"created_at_ms,omitempty"`
	// QuotaUsed and QuotaLimit are the uploader's storage quota (only in
	// answers to the uploader).
	QuotaUsed  int64 `json:"quota_used,omitempty"`
	QuotaLimit int64 `json:"quota_limit,omitempty"`
}

// Thumbnail describes an image's thumbnail (GET /v1/media/{id}/thumb).
type Thumbnail struct {
	MIMEType string `json:"mime_type"`
	Width    uint32 `json:"width"`
	Height   uint32 `json:"height"`
	Size     int64  `json:"size"`
}

// MediaKind is the content kind a file of this MIME type is sent as:
// "image", "audio", "video", or "file" for any other type. Send it with
// clientpb.MediaContent(kind, &clientpb.Media{FileId: file.ID}).
func MediaKind(mimeType string) string {
	t, _, err := mime.ParseMediaType(mimeType)
	if err != nil {
		t = strings.ToLower(strings.TrimSpace(mimeType))
	}
	switch major, _, _ := strings.Cut(t, "/"); major {
	case clientpb.MediaImage, clientpb.MediaAudio, clientpb.MediaVideo:
		return major
	}
	return clientpb.MediaFile
}

// Info fetches a file's description. msgID names a message carrying the
// file, which anyone but the uploader needs (0: none).
func (h *HTTP) Info(ctx context.Context, fileID string, msgID uint64) (File, error) {
	var f File
	err := h.do(ctx, http.MethodGet, mediaPath(fileID, "/info", msgID), nil, &f)
	return f, err
}

// UploadSimple uploads r's bytes in one request (POST /v1/media?name=),
// streamed, not resumable: for small files; Upload resumes. The node sniffs
// the type from the bytes.
func (h *HTTP) UploadSimple(ctx context.Context, r io.Reader, name string) (File, error) {
	req, err := h.newRequest(ctx, http.MethodPost, "/v1/media?"+url.Values{"name": {name}}.Encode(), r)
	if err != nil {
		return File{}, err
	}
	if n := remaining(r); n >= 0 {
		req.ContentLength = n // so the node refuses a file over its limit before reading it
		if n == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := h.client().Do(req)
	if err != nil {
		return File{}, err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return File{}, responseError(resp)
	}
	var f File
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&f); err != nil {
		return File{}, fmt.Errorf("client: upload answer: %w", err)
	}
	return f, nil
}

// remaining is how many bytes r has left to read when it can tell, else -1.
func remaining(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }: // bytes.Reader, bytes.Buffer, strings.Reader
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return max(0, fi.Size()-pos)
	case *io.SectionReader:
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return max(0, v.Size()-pos)
	}
	return -1
}

// Download describes a file (or thumbnail) being downloaded, as the
// response's headers tell it.
type Download struct {
	// Name is the file's name from Content-Disposition, when sent.
	Name string
	// Disposition is "inline" or "attachment".
	Disposition string
	MIMEType    string
	// Size is the whole file's size; -1 when the server did not say.
	Size int64
	// SHA256 is the file's hash (hex), from the ETag.
	SHA256 string
	// Offset is where the bytes written start in the file; Written is how
	// many were written, also when an error cut the download short: resume
	// with offset Offset+Written.
	Offset  int64
	Written int64
}

// Download writes file fileID's bytes from offset on to w: offset 0 for the
// whole file, or the length already held to resume (a Range request). msgID
// names a message carrying the file, which anyone but the uploader needs
// (0: none). The body is streamed to w, never held whole.
func (h *HTTP) Download(ctx context.Context, fileID string, msgID uint64, w io.Writer, offset int64) (Download, error) {
	return h.download(ctx, mediaPath(fileID, "", msgID), w, offset)
}

// DownloadThumb writes an image's thumbnail to w; a file without one is
// ERR_NOT_FOUND.
func (h *HTTP) DownloadThumb(ctx context.Context, fileID string, msgID uint64, w io.Writer) (Download, error) {
	return h.download(ctx, mediaPath(fileID, "/thumb", msgID), w, 0)
}

func (h *HTTP) download(ctx context.Context, path string, w io.Writer, offset int64) (Download, error) {
	if offset < 0 {
		return Download{}, errors.New("client: negative download offset")
	}
	req, err := h.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return Download{}, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return Download{}, err
	}
	defer drain(resp)
	d := Download{MIMEType: resp.Header.Get("Content-Type"), Size: -1, Offset: offset,
		SHA256: strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`)}
	if disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		d.Disposition, d.Name = disp, params["filename"] // mime decodes filename*=UTF-8''...
	}
	skip := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
		d.Size = resp.ContentLength
		skip = offset // the server ignored the Range: skip what we have
	case http.StatusPartialContent:
		start, _, size, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return d, err
		}
		if start != offset {
			return d, fmt.Errorf("client: asked for bytes from %d, got from %d", offset, start)
		}
		d.Size = size
	case http.StatusRequestedRangeNotSatisfiable:
		_, _, size, err := contentRange(resp.Header.Get("Content-Range"))
		if err == nil && size == offset {
			d.Size = size
			return d, nil // nothing left: the file was complete already
		}
		return d, responseError(resp)
	default:
		return d, responseError(resp)
	}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
			return d, fmt.Errorf("client: skipping to offset %d: %w", offset, err)
		}
	}
	d.Written, err = io.Copy(w, resp.Body)
	if err != nil {
		return d, err
	}
	if d.Size >= 0 && d.Offset+d.Written != d.Size {
		return d, fmt.Errorf("client: download ended at byte %d of %d: %w", d.Offset+d.Written, d.Size, io.ErrUnexpectedEOF)
	}
	return d, nil
}

// contentRange parses "bytes first-last/size" or "bytes */size"
// (first = last = -1).
func contentRange(s string) (first, last, size int64, err error) {
	bad := fmt.Errorf("client: bad Content-Range %q", s)
	rng, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	span, total, ok := strings.Cut(rng, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	if size, err = strconv.ParseInt(total, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if span == "*" {
		return -1, -1, size, nil
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	return first, last, size, nil
}

// Link is a signed download link: fetching it needs no token, until it
// expires.
type Link struct {
	// URL and ThumbURL are absolute (ThumbURL empty without a thumbnail).
	URL       string
	ThumbURL  string
	ExpiresAt time.Time
}

// Link asks for signed links to a file and its thumbnail (POST
// /v1/media/{id}/links). msgID names a message carrying the file, which
// anyone but the uploader needs (0: none). The access rule is checked now
// and again at every fetch.
func (h *HTTP) Link(ctx context.Context, fileID string, msgID uint64) (Link, error) {
	body := map[string]uint64{}
	if msgID != 0 {
		body["msg"] = msgID
	}
	var res struct {
		URL         string `json:"url"`
		ThumbURL    string `json:"thumb_url"`
		ExpiresAtMs int64  `json:"expires_at_ms"`
	}
	if err := h.do(ctx, http.MethodPost, mediaPath(fileID, "/links", 0), body, &res); err != nil {
		return Link{}, err
	}
	l := Link{ExpiresAt: time.UnixMilli(res.ExpiresAtMs)}
	var err error
	if l.URL, err = h.absolute(res.URL); err != nil {
		return Link{}, err
	}
	if res.ThumbURL != "" {
		if l.ThumbURL, err = h.absolute(res.ThumbURL); err != nil {
			return Link{}, err
		}
	}
	return l, nil
}

// absolute resolves a URL the server answered against BaseURL.
func (h *HTTP) absolute(ref string) (string, error) {
	base, err := url.Parse(h.BaseURL + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("client: bad URL %q from the server: %w", ref, err)
	}
	return u.String(), nil
}

// mediaPath is /v1/media/{id}{suffix}, with ?msg= when msgID is set.
func mediaPath(fileID, suffix string, msgID uint64) string {
	p := "/v1/media/" + url.PathEscape(fileID) + suffix
	if msgID != 0 {
		p += "?msg=" + strconv.FormatUint(msgID, 10)
	}
	return p
}

// newRequest builds a request to BaseURL+path carrying the token.
func (h *HTTP) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	return h.newRequestURL(ctx, method, h.BaseURL+path, body)
}

func (h *HTTP) newRequestURL(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	return req, nil
}

func (h *HTTP) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

// drain reads a little of what is left of a response and closes it, so
// that its connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// responseError turns a refused response into an *Error: the server's coded
// body, or for a body that is not one (tus's own plain-text errors, a
// proxy's page) the code that the HTTP status stands for, with the body's
// first line as the message.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if e := decodeError(resp, data); e != nil {
		return e
	}
	msg := strings.TrimSpace(string(data))
	if line, _, _ := strings.Cut(msg, "\n"); len(line) > 0 && len(line) <= 300 && !strings.HasPrefix(line, "<") {
		msg = line
	} else {
		msg = http.StatusText(resp.StatusCode)
	}
	e := &Error{Code: statusCodes[resp.StatusCode], Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, msg), Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// statusCodes is the protocol code an HTTP status stands for when the body
// does not say (the reverse of the gateway's table).
var statusCodes = map[int]clientpb.ErrorCode{
	http.StatusBadRequest:            clientpb.ErrorCode_ERR_BAD_REQUEST,
	http.StatusUnauthorized:          clientpb.ErrorCode_ERR_UNAUTHENTICATED,
	http.StatusForbidden:             clientpb.ErrorCode_ERR_FORBIDDEN,
	http.StatusNotFound:              clientpb.ErrorCode_ERR_NOT_FOUND,
	http.StatusGone:                  clientpb.ErrorCode_ERR_NOT_FOUND,
	http.StatusConflict:              clientpb.ErrorCode_ERR_CONFLICT,
	http.StatusRequestEntityTooLarge: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE,
	http.StatusUnsupportedMediaType:  clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED,
	http.StatusTooManyRequests:       clientpb.ErrorCode_ERR_RATE_LIMITED,
	http.StatusInternalServerError:   clientpb.ErrorCode_ERR_INTERNAL,
	http.StatusBadGateway:            clientpb.ErrorCode_ERR_UNAVAILABLE,
	http.StatusServiceUnavailable:    clientpb.ErrorCode_ERR_UNAVAILABLE,
	http.StatusGatewayTimeout:        clientpb.ErrorCode_ERR_UNAVAILABLE,
}
