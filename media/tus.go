package media

// Resumable uploads: tus 1.0.0 (creation, creation-with-upload,
// termination) by tusd, over its filestore in Config.Dir with an in-memory
// lock per upload. What tusd does not do is added around it: the user and
// owner checks, the quota charge at creation and its release when an upload
// is terminated or refused, and the finishing step when the last byte lands.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"actorim/protos/clientpb"
)

// uploadsPath is where the tus endpoints live; an upload's URL is this
// followed by its id.
const uploadsPath = "/v1/uploads/"

// Metadata keys of a tus upload: the owner (set by the server) and the
// file's name (given by the client).
const (
	metaOwner = "owner"
	metaName  = "filename"
)

func (s *Service) newTus() error {
	s.uploads = filestore.New(s.cfg.Dir)
	s.uploads.DirModePerm, s.uploads.FileModePerm = 0o700, 0o600
	s.locker = memorylocker.New()
	composer := tusd.NewStoreComposer()
	store := tusStore{s}
	composer.UseCore(store)
	composer.UseTerminater(store)
	composer.UseLocker(s.locker)
	h, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer:             composer,
		MaxSize:                   s.cfg.MaxBytes,
		BasePath:                  uploadsPath,
		DisableDownload:           true, // downloads are GET /v1/media/{id}
		DisableConcatenation:      true,
		Cors:                      &tusd.CorsConfig{Disable: true}, // the gateway's business
		Logger:                    tusdLogger(s.log),
		PreUploadCreateCallback:   s.tusCreate,
		PreFinishResponseCallback: s.tusFinish,
	})
	if err != nil {
		return err
	}
	routed := h.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// After Middleware, which applies X-HTTP-Method-Override.
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "":
			h.PostFile(w, r)
		case r.Method == http.MethodHead && r.URL.Path != "":
			h.HeadFile(w, r)
		case r.Method == http.MethodPatch && r.URL.Path != "":
			h.PatchFile(w, r)
		case r.Method == http.MethodDelete && r.URL.Path != "":
			h.DelFile(w, r)
		default:
			w.Header().Set("Allow", "POST, HEAD, PATCH, DELETE, OPTIONS")
			writeErrorStatus(w, http.StatusMethodNotAllowed, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "method not allowed"))
		}
	}))
	// tusd takes the upload id to be the whole path: strip the prefix.
	s.tus = http.StripPrefix(uploadsPath, s.tusGuard(routed))
	return nil
}

// tusGuard checks what tusd does not before a request reaches it: a user
// (OPTIONS, protocol discovery, needs none); on an upload's URL, that the
// user owns it (anyone else gets 404, whatever the method, overridden or
// not); on creation, the declared length; on PATCH, that the body does not
// go beyond it. Its refusals have the API's JSON body, unlike tusd's.
func (s *Service) tusGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		user, ok := UserFrom(r.Context())
		if !ok {
			writeError(w, errNoUser)
			return
		}
		method := r.Method
		if o := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && o != "" {
			method = o
		}
		id := r.URL.Path
		if id == "" {
			if method == http.MethodPost {
				n, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
				switch {
				case err != nil || n < 0:
					writeError(w, errNoLength)
					return
				case n > s.cfg.MaxBytes:
					w.Header().Set("Connection", "close")
					writeError(w, tooLarge(s.cfg.MaxBytes))
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		info, ok := s.ownUpload(r.Context(), id, user)
		if !ok {
			writeError(w, errNoUpload)
			return
		}
		// A PATCH's body is bounded from the offset it claims: the stored
		// offset, read here without the upload's lock, may already be past
		// it while an interrupted request winds down, a mismatch tusd answers
		// with a 409 that the client retries after a HEAD.
		if method == http.MethodPatch {
			off := info.Offset
			if o, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64); err == nil && o >= 0 && o <= info.Size {
				off = o
			}
			if r.ContentLength > info.Size-off {
				w.Header().Set("Connection", "close")
				writeError(w, clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE,
					"the body goes beyond the upload's declared length ("+strconv.FormatInt(info.Size, 10)+" bytes)"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ownUpload returns the upload id if user owns it.
func (s *Service) ownUpload(ctx context.Context, id, user string) (tusd.FileInfo, bool) {
	if !validFileID(id) {
		return tusd.FileInfo{}, false
	}
	up, err := s.uploads.GetUpload(ctx, id)
	if err != nil {
		return tusd.FileInfo{}, false
	}
	info, err := up.GetInfo(ctx)
	if err != nil || info.MetaData[metaOwner] != user {
		return tusd.FileInfo{}, false
	}
	return info, true
}

// tusCreate is tusd's PreUploadCreateCallback: it charges the quota the
// declared length and names the upload with a new file id.
func (s *Service) tusCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	user, ok := UserFrom(ev.Context)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errNoUser)
	}
	up := ev.Upload
	name := up.MetaData[metaName]
	switch {
	case up.SizeIsDeferred:
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errNoLength)
	case up.Size > s.cfg.MaxBytes:
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(tooLarge(s.cfg.MaxBytes))
	case !validName(name):
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errBadName)
	}
	if e := s.charge(ev.Context, user, up.Size); e != nil {
		s.metrics.result(e)
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(e)
	}
	// Other metadata the client sent is dropped: the .info file keeps only
	// what the server uses.
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{
		ID:       newFileID(),
		MetaData: tusd.MetaData{metaOwner: user, metaName: name},
	}, nil
}

// tusFinish is tusd's PreFinishResponseCallback, run in the request that
// wrote the last byte (holding the upload's lock): the finishing step. The
// upload's files are removed whatever the outcome: its bytes are now an
// object, or it was refused (and its charge released). The client reads
// the file's JSON at /v1/media/{id}/info.
func (s *Service) tusFinish(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	up := ev.Upload
	u := received{
		id: up.ID, owner: up.MetaData[metaOwner], name: up.MetaData[metaName],
		path: up.Storage[filestore.StorageKeyPath], size: up.Size, charged: up.Size,
	}
	_, e := s.finish(ev.Context, u)
	s.metrics.result(e)
	if e != nil {
		s.uncharge(ev.Context, u.owner, u.charged)
	}
	if err := s.removeUpload(up.ID); err != nil {
		s.log.Warn("media: remove finished upload", "id", up.ID, "err", err)
	}
	if e != nil {
		return tusd.HTTPResponse{}, tusError(e)
	}
	return tusd.HTTPResponse{}, nil
}

// removeUpload removes an upload's files (the filestore's: the bytes under
// its id, the info beside them) without touching its charge. Either may be
// gone already: the object store's PutFile may have taken the bytes.
func (s *Service) removeUpload(id string) error {
	err := os.Remove(filepath.Join(s.cfg.Dir, id))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err2 := os.Remove(filepath.Join(s.cfg.Dir, id+".info")); err2 != nil && !errors.Is(err2, os.ErrNotExist) {
		err = err2
	}
	return err
}

// tusStore is the filestore with the service's accounting: it releases the
// charge of an upload that could not be created or was terminated
// (DELETE), and counts the bytes written.
type tusStore struct{ s *Service }

func (t tusStore) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	up, err := t.s.uploads.NewUpload(ctx, info)
	if err != nil {
		t.s.uncharge(ctx, info.MetaData[metaOwner], info.Size)
		return nil, err
	}
	return countingUpload{up, t.s.metrics}, nil
}

func (t tusStore) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	up, err := t.s.uploads.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return countingUpload{up, t.s.metrics}, nil
}

func (t tusStore) AsTerminatableUpload(up tusd.Upload) tusd.TerminatableUpload {
	return terminatingUpload{t.s, up.(countingUpload).Upload}
}

type countingUpload struct {
	tusd.Upload
	m *metrics
}

func (u countingUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.Upload.WriteChunk(ctx, offset, src)
	u.m.received.Add(float64(n))
	return n, err
}

type terminatingUpload struct {
	s  *Service
	up tusd.Upload
}

func (u terminatingUpload) Terminate(ctx context.Context) error {
	info, err := u.up.GetInfo(ctx)
	if err != nil {
		return err
	}
	if err := u.s.uploads.AsTerminatableUpload(u.up).Terminate(ctx); err != nil {
		return err
	}
	u.s.uncharge(ctx, info.MetaData[metaOwner], info.Size)
	return nil
}
