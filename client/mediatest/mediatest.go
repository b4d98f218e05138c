// Package mediatest is a stand-in for a node's media HTTP API (media-spec's
// uploads, info and downloads), for the tests of its clients: package
// client, imctl and imbench. Uploads are served by a real tusd v2 handler
// over its file store; downloads by http.ServeContent, so Range and the
// response headers behave as the node's do.
//
// It is not the node's media package: no quotas, type refusals,
// thumbnails, messages or signed-link checks. A bearer token is taken as
// the name of the user it belongs to, and only a file's uploader may read
// it.
package mediatest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"golang.org/x/exp/slog" // tusd v2 logs through x/exp/slog
)

// Server serves the stand-in API. Its zero value is not usable: see New.
type Server struct {
	dir string
	mux *http.ServeMux

	mu    sync.Mutex
	files map[string]*file
	owner map[string]string // tus upload id -> user who created it
}

// file is a finished upload.
type file struct {
	ID, Name, MIMEType, SHA256, Owner, Path string
	Size                                    int64
	Created                                 time.Time
}

// New returns a server keeping its files under dir.
func New(dir string) (*Server, error) {
	s := &Server{dir: dir, mux: http.NewServeMux(), files: map[string]*file{}, owner: map[string]string{}}
	uploads := filepath.Join(dir, "uploads")
	if err := os.MkdirAll(uploads, 0o700); err != nil {
		return nil, err
	}
	composer := tusd.NewStoreComposer()
	filestore.New(uploads).UseIn(composer)
	memorylocker.New().UseIn(composer)
	tus, err := tusd.NewHandler(tusd.Config{
		BasePath:                         "/v1/uploads/",
		StoreComposer:                    composer,
		DisableDownload:                  true,
		Logger:                           slog.New(slog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback:          s.tusCreate,
		PreFinishResponseCallback:        s.tusFinished,
		GracefulRequestCompletionTimeout: time.Second,
		AcquireLockTimeout:               5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	s.mux.Handle("/v1/uploads/", http.StripPrefix("/v1/uploads/", s.tusOwner(tus)))
	s.mux.HandleFunc("POST /v1/media", s.simple)
	s.mux.HandleFunc("GET /v1/media/{id}/info", s.info)
	s.mux.HandleFunc("GET /v1/media/{id}", s.download)
	s.mux.HandleFunc("HEAD /v1/media/{id}", s.download)
	s.mux.HandleFunc("GET /v1/media/{id}/thumb", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "ERR_NOT_FOUND", "no thumbnail")
	})
	s.mux.HandleFunc("POST /v1/media/{id}/links", s.links)
	return s, nil
}

// ServeHTTP serves the API; every request needs a bearer token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if user(r) == "" {
		writeError(w, http.StatusUnauthorized, "ERR_UNAUTHENTICATED", "missing bearer token")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Put adds a finished file owned by user, as an upload would, and returns
// its id.
func (s *Server) Put(user, name string, data []byte) (string, error) {
	id := newID()
	p := filepath.Join(s.dir, id)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return id, s.add(id, name, user, p)
}

func user(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(tok)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tusCreate names the upload, which is the file's id, and keeps its owner.
func (s *Server) tusCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	id := newID()
	s.mu.Lock()
	s.owner[id] = strings.TrimSpace(strings.TrimPrefix(ev.HTTPRequest.Header.Get("Authorization"), "Bearer "))
	s.mu.Unlock()
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{ID: id}, nil
}

// tusOwner answers 404 to anyone but an upload's creator.
func (s *Server) tusOwner(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := strings.Trim(r.URL.Path, "/"); id != "" {
			s.mu.Lock()
			owner, ok := s.owner[id]
			s.mu.Unlock()
			if ok && owner != user(r) {
				writeError(w, http.StatusNotFound, "ERR_NOT_FOUND", "no such upload")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// tusFinished records the upload as a file before the last PATCH answers.
func (s *Server) tusFinished(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	s.mu.Lock()
	owner := s.owner[ev.Upload.ID]
	s.mu.Unlock()
	err := s.add(ev.Upload.ID, ev.Upload.MetaData["filename"], owner, ev.Upload.Storage[filestore.StorageKeyPath])
	return tusd.HTTPResponse{}, err
}

// add hashes and sniffs the file at path and records it.
func (s *Server) add(id, name, owner, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	h.Write(head[:n])
	size, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[id] = &file{ID: id, Name: name, Owner: owner, Path: path, Size: size + int64(n),
		MIMEType: http.DetectContentType(head[:n]), SHA256: hex.EncodeToString(h.Sum(nil)), Created: time.Now()}
	return nil
}

// simple is POST /v1/media?name=: the body is the file.
func (s *Server) simple(w http.ResponseWriter, r *http.Request) {
	id := newID()
	p := filepath.Join(s.dir, id)
	out, err := os.Create(p)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ERR_INTERNAL", err.Error())
		return
	}
	_, err = io.Copy(out, r.Body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.add(id, r.URL.Query().Get("name"), user(r), p)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "ERR_BAD_REQUEST", err.Error())
		return
	}
	s.mu.Lock()
	f := s.files[id]
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, describe(f))
}

// lookup finds the requested file, answering the refusal itself.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *file {
	s.mu.Lock()
	f := s.files[r.PathValue("id")]
	s.mu.Unlock()
	switch {
	case f == nil:
		writeError(w, http.StatusNotFound, "ERR_NOT_FOUND", "no such file")
		return nil
	case f.Owner != user(r):
		writeError(w, http.StatusForbidden, "ERR_FORBIDDEN", "not your file")
		return nil
	}
	return f
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if f := s.lookup(w, r); f != nil {
		writeJSON(w, http.StatusOK, describe(f))
	}
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	f := s.lookup(w, r)
	if f == nil {
		return
	}
	data, err := os.Open(f.Path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ERR_INTERNAL", err.Error())
		return
	}
	defer data.Close()
	disposition := "attachment"
	if k, _, _ := strings.Cut(f.MIMEType, "/"); k == "image" || k == "audio" || k == "video" {
		disposition = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", f.MIMEType)
	h.Set("ETag", `"`+f.SHA256+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": f.Name}))
	http.ServeContent(w, r, "", f.Created, data)
}

func (s *Server) links(w http.ResponseWriter, r *http.Request) {
	f := s.lookup(w, r)
	if f == nil {
		return
	}
	exp := time.Now().Add(10 * time.Minute)
	q := url.Values{"u": {f.Owner}, "exp": {fmt.Sprint(exp.Unix())}, "sig": {"stand-in"}}
	writeJSON(w, http.StatusOK, map[string]any{"url": "/v1/media/" + f.ID + "?" + q.Encode(), "expires_at_ms": exp.UnixMilli()})
}

func describe(f *file) map[string]any {
	return map[string]any{"file_id": f.ID, "name": f.Name, "mime_type": f.MIMEType, "size": f.Size,
		"sha256": f.SHA256, "created_at_ms": f.Created.UnixMilli()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers the gateway's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// ErrNoFile is returned by File for an unknown id.
var ErrNoFile = errors.New("mediatest: no such file")

// File returns the path and SHA-256 of a finished file.
func (s *Server) File(id string) (path, sha string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil {
		return "", "", ErrNoFile
	}
	return f.Path, f.SHA256, nil
}
