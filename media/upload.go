package media

import (
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
// length before reading (the received length when none is declared), and
// released if the upload fails or is refused.
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

	e := s.receiveSimple(w, r, &u)
	if e == nil && !declared {
		if e = s.charge(ctx, user, u.size); e == nil {
			u.charged = u.size
		}
	}
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
// u.sha.
func (s *Service) receiveSimple(w http.ResponseWriter, r *http.Request, u *received) *clientpb.Error {
	f, err := os.OpenFile(u.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.log.Error("media: create upload file", "err", err)
		return errInternal
	}
	h := sha256.New()
	disk := &writeErr{w: f}
	n, err := io.Copy(io.MultiWriter(disk, h), newIdleReader(w, http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes)))
	s.metrics.received.Add(float64(n))
	if cerr := f.Close(); disk.err == nil {
		disk.err = cerr
	}
	var tooBig *http.MaxBytesError
	switch {
	case disk.err != nil:
		s.log.Error("media: write upload file", "err", disk.err)
		return errInternal
	case errors.As(err, &tooBig):
		return tooLarge(s.cfg.MaxBytes)
	case err != nil:
		return errIncomplete
	}
	u.size, u.sha = n, hex.EncodeToString(h.Sum(nil))
	return nil
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
