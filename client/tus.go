package client

// Resumable uploads speak tus 1.0.0 (https://tus.io/protocols/resumable-upload),
// the core protocol and its creation extension: POST creates an upload of a
// declared length, HEAD tells how many bytes the server has, PATCH appends
// bytes at an offset. That small client side is written here rather than
// taken from a library: the Go tus clients are not available to this project
// (nor needed: the protocol is three requests), and this one streams from an
// io.ReaderAt, so that a retried chunk is read again from its source instead
// of being held in memory.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"actorim/protos/clientpb"
)

// TusVersion is the tus protocol version sent on every tus request.
const TusVersion = "1.0.0"

// UploadsPath is where the node serves tus uploads.
const UploadsPath = "/v1/uploads/"

// The defaults of UploadOptions.
const (
	DefaultChunkSize = 8 << 20
	DefaultRetries   = 8
	DefaultRetryMin  = 250 * time.Millisecond
	DefaultRetryMax  = 15 * time.Second
)

// UploadOptions configure Upload and ResumeUpload. Zero values are the
// defaults.
type UploadOptions struct {
	// ChunkSize is the most bytes one PATCH request carries. Default 8 MiB.
	ChunkSize int64
	// Progress, when set, is called as bytes go out with how many of the
	// total are done. done never decreases: after a failure the upload
	// continues from what the server has, and Progress stays silent until
	// it passes what was reported before. It is called from the HTTP
	// transport's goroutine and must not block for long.
	Progress func(done, total int64)
	// Created, when set, is called with the upload's URL as soon as the
	// node has created it. Keep it to finish the upload from another
	// process with ResumeUpload.
	Created func(uploadURL string)
	// Retries is how many requests in a row may fail, with no byte gained,
	// before the upload gives up. Default 8.
	Retries int
	// RetryMin and RetryMax bound the wait before a retry: it doubles from
	// RetryMin up to RetryMax, with jitter, or is the server's Retry-After.
	// Defaults 250ms and 15s.
	RetryMin, RetryMax time.Duration
}

func (o UploadOptions) withDefaults() UploadOptions {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	return o
}

// ErrUploadMismatch reports a ResumeUpload whose upload URL was created for
// a different length than the bytes given.
var ErrUploadMismatch = errors.New("client: the upload was created with another length")

// UploadFile uploads the file at path under its base name (see Upload).
func (h *HTTP) UploadFile(ctx context.Context, path string, opts UploadOptions) (File, error) {
	f, size, err := openSized(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	return h.Upload(ctx, f, size, filepath.Base(path), opts)
}

// openSized opens a regular file and returns its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("client: %s is not a regular file", path)
	}
	return f, fi.Size(), nil
}

// Upload uploads size bytes read from r as a file called name, resumably
// (tus 1.0.0 under /v1/uploads/): it creates the upload, then sends the
// bytes in PATCH requests of opts.ChunkSize. When a request fails (the
// network, a 5xx, 409 for an offset the server does not have) it asks the
// server how much it has (HEAD) and continues from there after a backoff,
// giving up after opts.Retries failures in a row. r is read at the offsets
// being sent, never held whole; *os.File, *bytes.Reader and
// *io.SectionReader are io.ReaderAts. It returns the file as the node
// describes it once the upload is complete.
func (h *HTTP) Upload(ctx context.Context, r io.ReaderAt, size int64, name string, opts UploadOptions) (File, error) {
	if size < 0 {
		return File{}, errors.New("client: negative upload size")
	}
	o := opts.withDefaults()
	u, err := h.tusCreate(ctx, size, name, &o)
	if err != nil {
		return File{}, err
	}
	if o.Created != nil {
		o.Created(u.String())
	}
	return h.tusFinish(ctx, u, r, size, 0, true, &o)
}

// ResumeUpload finishes an upload that Upload began (in this process or
// another: see UploadOptions.Created) from what the server has. r and size
// must be the same bytes; a different size is ErrUploadMismatch. An upload
// the server no longer has (finished and gone, refused, or collected) is
// ERR_NOT_FOUND: start again with Upload.
func (h *HTTP) ResumeUpload(ctx context.Context, uploadURL string, r io.ReaderAt, size int64, opts UploadOptions) (File, error) {
	o := opts.withDefaults()
	u, err := url.Parse(uploadURL)
	if err != nil {
		return File{}, fmt.Errorf("client: upload URL: %w", err)
	}
	if !u.IsAbs() {
		if u, err = url.Parse(h.BaseURL + uploadURL); err != nil {
			return File{}, fmt.Errorf("client: upload URL: %w", err)
		}
	}
	return h.tusFinish(ctx, u, r, size, 0, false, &o)
}

// FileIDOf is the file id of an upload URL: its last path segment.
func FileIDOf(uploadURL string) string {
	u, err := url.Parse(uploadURL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// tusCreate creates an upload of size bytes and returns its URL. The POST
// is retried only when the node surely did not act on it (429, 503, a
// refused connection): a second creation would charge the quota twice.
func (h *HTTP) tusCreate(ctx context.Context, size int64, name string, o *UploadOptions) (*url.URL, error) {
	for attempt := 1; ; attempt++ {
		req, err := h.newRequest(ctx, http.MethodPost, UploadsPath, http.NoBody)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Tus-Resumable", TusVersion)
		req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
		req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
		resp, err := h.client().Do(req)
		if err == nil && resp.StatusCode == http.StatusCreated {
			loc := resp.Header.Get("Location")
			drain(resp)
			if loc == "" {
				return nil, errors.New("client: tus: 201 without Location")
			}
			u, err := req.URL.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("client: tus: bad Location %q: %w", loc, err)
			}
			return u, nil
		}
		if err == nil {
			err = responseError(resp)
			drain(resp)
		}
		var e *Error
		retry := isDialError(err) || (errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable))
		if !retry || attempt > o.Retries || ctx.Err() != nil {
			return nil, err
		}
		if err := sleepCtx(ctx, backoff(o, attempt, err)); err != nil {
			return nil, err
		}
	}
}

// tusFinish sends the bytes from the server's offset to the end, then
// fetches the file's description. With known, offset is where the server
// is (a fresh upload: 0); without, HEAD asks first.
func (h *HTTP) tusFinish(ctx context.Context, u *url.URL, r io.ReaderAt, size, offset int64, known bool, o *UploadOptions) (File, error) {
	prog := &progress{fn: o.Progress, total: size}
	if known {
		prog.report(offset)
	}
	failures := 0
	best := offset // the most the server was seen to have
	var gone error // HEAD found no upload
send:
	for {
		if !known {
			off, length, err := h.tusHead(ctx, u)
			switch {
			case err == nil && length != size:
				return File{}, fmt.Errorf("%w: %d bytes, not %d", ErrUploadMismatch, length, size)
			case err == nil:
				offset, known = off, true
				if off > best {
					best, failures = off, 0
				}
				prog.report(off)
			case isNotFound(err):
				// The finishing step may take the upload away once it has
				// all its bytes (here, or before a resume): the file's
				// record says whether it did.
				gone = err
				break send
			default:
				if err := h.retryWait(ctx, o, &failures, err); err != nil {
					return File{}, err
				}
				continue
			}
		}
		if offset >= size {
			break
		}
		n := min(o.ChunkSize, size-offset)
		next, err := h.tusPatch(ctx, u, r, offset, n, prog)
		if err != nil {
			known = false
			if err := h.retryWait(ctx, o, &failures, err); err != nil {
				return File{}, err
			}
			continue
		}
		offset = next
		if next > best {
			best, failures = next, 0
		}
	}
	var f File
	err := h.retrying(ctx, o, func() (err error) {
		f, err = h.Info(ctx, path.Base(u.Path), 0)
		return err
	})
	switch {
	case gone != nil && (err != nil || f.Size != size):
		return File{}, gone // no upload, and no such file of ours: the upload is lost
	case err == nil && f.Size != size:
		return File{}, fmt.Errorf("client: the node's file %s has %d bytes, not the %d uploaded", f.ID, f.Size, size)
	}
	return f, err
}

// tusHead asks how many bytes of the upload the server has.
func (h *HTTP) tusHead(ctx context.Context, u *url.URL) (offset, length int64, err error) {
	req, err := h.newRequestURL(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Tus-Resumable", TusVersion)
	resp, err := h.client().Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return 0, 0, responseError(resp)
	}
	if offset, err = headerInt(resp, "Upload-Offset"); err != nil {
		return 0, 0, err
	}
	if length, err = headerInt(resp, "Upload-Length"); err != nil {
		return 0, 0, err
	}
	return offset, length, nil
}

// tusPatch sends n bytes of r from offset and returns the server's new
// offset.
func (h *HTTP) tusPatch(ctx context.Context, u *url.URL, r io.ReaderAt, offset, n int64, prog *progress) (int64, error) {
	body := &chunkReader{r: io.NewSectionReader(r, offset, n), at: offset, prog: prog}
	req, err := h.newRequestURL(ctx, http.MethodPatch, u.String(), body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	req.Header.Set("Tus-Resumable", TusVersion)
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := h.client().Do(req)
	if lerr := body.localError(); lerr != nil {
		if resp != nil {
			drain(resp)
		}
		return 0, &localReadError{lerr} // reading our own source failed: no retry helps
	}
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, responseError(resp)
	}
	next, err := headerInt(resp, "Upload-Offset")
	if err != nil {
		return 0, err
	}
	if next < offset || next > offset+n {
		return 0, fmt.Errorf("client: tus: PATCH at %d of %d bytes answered offset %d", offset, n, next)
	}
	return next, nil
}

func headerInt(resp *http.Response, name string) (int64, error) {
	v, err := strconv.ParseInt(resp.Header.Get(name), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("client: tus: bad %s %q in the answer to %s", name, resp.Header.Get(name), resp.Request.Method)
	}
	return v, nil
}

// retryWait counts a failure and waits before the next attempt, or returns
// the error when it is final or the failures are too many.
func (h *HTTP) retryWait(ctx context.Context, o *UploadOptions, failures *int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !retryable(err) {
		return err
	}
	*failures++
	if *failures > o.Retries {
		return fmt.Errorf("client: upload: %d attempts in a row failed, the last: %w", *failures, err)
	}
	return sleepCtx(ctx, backoff(o, *failures, err))
}

// retrying calls fn until it succeeds, fails for good, or failed
// o.Retries+1 times.
func (h *HTTP) retrying(ctx context.Context, o *UploadOptions, fn func() error) error {
	failures := 0
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if err := h.retryWait(ctx, o, &failures, err); err != nil {
			return err
		}
	}
}

// retryable tells a failure worth retrying after a HEAD: the network, the
// server's passing trouble (5xx, 429, 423 locked by a request still being
// wound down, or tusd's 400 ERR_UPLOAD_INTERRUPTED when an earlier request
// of the upload was still winding down as this one took its lock), or an
// offset it does not have (409).
func retryable(err error) bool {
	var le *localReadError
	if errors.As(err, &le) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusConflict, http.StatusLocked, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		if e.Status == http.StatusBadRequest && strings.Contains(e.Message, "ERR_UPLOAD_INTERRUPTED") {
			return true
		}
		return e.Status == 0 && e.Code == clientpb.ErrorCode_ERR_UNAVAILABLE
	}
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Status == http.StatusGone)
}

// isDialError tells a connection that was never made: the request did
// not reach the server.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// backoff is the wait before retry number n (1, 2, ...): the server's
// Retry-After, or RetryMin doubled n-1 times up to RetryMax, less up to half
// of it at random so that many clients do not retry in step.
func backoff(o *UploadOptions, n int, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return min(e.RetryAfter, o.RetryMax)
	}
	d := o.RetryMax
	if n < 30 {
		d = min(o.RetryMin<<(n-1), o.RetryMax)
	}
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// localReadError is a failure to read the bytes being uploaded.
type localReadError struct{ err error }

func (e *localReadError) Error() string {
	return "client: reading the upload's bytes: " + e.err.Error()
}
func (e *localReadError) Unwrap() error { return e.err }

// chunkReader is a PATCH body: it reports progress as the transport reads
// it and keeps a read error of the source apart from the network's.
type chunkReader struct {
	r    io.Reader
	at   int64 // file offset of the next byte
	prog *progress

	mu  sync.Mutex
	err error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.at += int64(n)
	c.prog.report(c.at)
	if err != nil && err != io.EOF {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return n, err
}

func (c *chunkReader) localError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// progress calls fn with a value that never decreases.
type progress struct {
	fn    func(done, total int64)
	total int64

	mu   sync.Mutex
	last int64
	any  bool
}

func (p *progress) report(done int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.any && done <= p.last {
		return
	}
	p.last, p.any = done, true
	p.fn(done, p.total)
}
