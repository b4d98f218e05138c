package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// handleUpload is POST /v1/media?name=<name>: the body is the file. It is
// streamed to a temporary file while hashed, never held whole. A body
// declaring more than MaxBytes is refused before anything is read, one
// running beyond it as soon as it does. The quota is charged the declared
// length before reading; a body without Content-Length is charged as it
// arrives, in steps ahead of it, so that neither can put more than the
// quota on disk. The charge is released if the upload fails or is refused.
func (s *Service) handleUpload(w http.ResponseWriter, r *http.Request) {
	user, ok := UserFrom(r.Context())
	if !ok {
		writeError(w, errNoUser)
		return
	}
	name := r.URL.Query().Get("name")
	if !validName(name) {
		writeError(w, errBadName)
		return
	}
	if r.ContentLength > s.cfg.MaxBytes {
		w.Header().Set("Connection", "close")
		writeError(w, tooLarge(s.cfg.MaxBytes))
		return
	}
	ctx := r.Context()
	u := received{id: newFileID(), owner: user, name: name}
	declared := r.ContentLength >= 0
	if declared {
		if e := s.charge(ctx, user, r.ContentLength); e != nil {
			s.metrics.result(e)
			writeError(w, e)
			return
		}
		u.charged = r.ContentLength
	}
	u.path = filepath.Join(s.simpleDir, u.id)
	defer os.Remove(u.path) // gone already if the object store moved it

	e := s.receiveSimple(w, r, &u, !declared)
	var rec persistence.MediaFile
	if e == nil {
		rec, e = s.finish(ctx, u)
	}
	s.metrics.result(e)
	// The server's write timeout ran from the request's start.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(transferIdle))
	if e != nil {
		s.uncharge(ctx, user, u.charged)
		if e.GetCode() == clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE {
			w.Header().Set("Connection", "close") // the rest of the body is not read
		}
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusCreated, s.fileView(ctx, rec, user))
}

// receiveSimple writes the body to u.path, hashing it, and sets u.size and
// u.sha; with chargeAsRead, it charges u.owner's quota as the bytes come
// (adding to u.charged).
func (s *Service) receiveSimple(w http.ResponseWriter, r *http.Request, u *received, chargeAsRead bool) *clientpb.Error {
	f, err := os.OpenFile(u.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.log.Error("media: create upload file", "err", err)
		return errInternal
	}
	body := newIdleReader(w, http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes))
	var quota *quotaReader
	if chargeAsRead {
		quota = &quotaReader{r: body, s: s, ctx: r.Context(), u: u}
		body = quota
	}
	h := sha256.New()
	disk := &writeErr{w: f}
	n, err := io.Copy(io.MultiWriter(disk, h), body)
	s.metrics.received.Add(float64(n))
	if cerr := f.Close(); disk.err == nil {
		disk.err = cerr
	}
	var tooBig *http.MaxBytesError
	switch {
	case disk.err != nil:
		s.log.Error("media: write upload file", "err", disk.err)
		return errInternal
	case quota != nil && quota.refused != nil:
		return quota.refused
	case errors.As(err, &tooBig):
		return tooLarge(s.cfg.MaxBytes)
	case err != nil:
		return errIncomplete
	}
	u.size, u.sha = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// chargeStep is how far ahead of the bytes received a body of unknown
// length is charged (the finishing step gives back what was not used).
const chargeStep = 8 << 20

// errQuotaStop ends the reading of a body whose charge was refused.
var errQuotaStop = errors.New("media: quota refused")

// quotaReader charges an upload's owner for the bytes read before handing
// them on: a step ahead when the quota has room for it, else exactly what
// was read.
type quotaReader struct {
	r       io.Reader
	s       *Service
	ctx     context.Context
	u       *received
	read    int64
	refused *clientpb.Error
}

func (q *quotaReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	q.read += int64(n)
	if q.read > q.u.charged {
		step := max(chargeStep, q.read-q.u.charged)
		e := q.s.charge(q.ctx, q.u.owner, step)
		if e == errQuotaExceeded {
			step = q.read - q.u.charged
			e = q.s.charge(q.ctx, q.u.owner, step)
		}
		if e != nil {
			q.refused = e
			return 0, errQuotaStop
		}
		q.u.charged += step
	}
	return n, err
}

// writeErr remembers its writer's error, to tell a failing disk from a
// failing client.
type writeErr struct {
	w   io.Writer
	err error
}

func (w *writeErr) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
