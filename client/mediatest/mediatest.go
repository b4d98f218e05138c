// Package mediatest serves a node's media HTTP API (media-spec's uploads,
// info, downloads and signed links) for the tests of its clients: package
// client, imctl and imbench. It is the node's own media.Service over the
// stores a standalone node uses, the embedded store for the records and the
// filesystem object store for the bytes, both under the directory given to
// New: uploads, quotas, type sniffing and refusals, thumbnails and links
// behave as the node's do.
//
// In front of the service it does only what the gateway does: a request
// with "Authorization: Bearer <token>" is the user the token names, and
// here a token is simply the name of its user (an empty one is refused
// 401, as a token that does not verify is); a request without
// Authorization goes on without a user, so that the service answers 401
// where it needs one and a signed link works.
//
// No user has messages: a download by anyone but a file's uploader, which
// must name a message of the downloader's timeline that carries the file
// (?msg=), is refused 403. Only a file's uploader reads it, or whoever
// holds a signed link the uploader made.
package mediatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"actorim/media"
	"actorim/persistence"
	"actorim/persistence/embedded"
	objectsfs "actorim/persistence/objects/fs"
	"actorim/protos/clientpb"
)

// Server serves the media API. Its zero value is not usable: see New.
type Server struct {
	svc     *media.Service
	store   *embedded.Store
	handler http.Handler
}

// New starts a media service keeping everything under dir: its records
// (records/), the files' bytes (objects/) and the uploads in progress
// (uploads/). Close stops it.
func New(dir string) (*Server, error) {
	objects, err := objectsfs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		return nil, err
	}
	store, err := embedded.Open(filepath.Join(dir, "records"), embedded.Options{})
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // never fails (crypto/rand)
	svc, err := media.New(media.Config{Dir: filepath.Join(dir, "uploads"), LinkSecret: secret},
		media.Deps{Objects: objects, Store: store, Messages: noMessages{}}, nil)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return &Server{svc: svc, store: store, handler: svc.Handler()}, nil
}

// Close stops the service and closes its store. The HTTP server in front
// of it must be closed first (with t.Cleanup, register Close before the
// server's Close): requests in flight use the store.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(s.svc.Shutdown(ctx), s.store.Close())
}

// ServeHTTP authenticates the request as the gateway does, taking a
// bearer token as the name of its user, and hands it to the service.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		user := strings.TrimSpace(tok)
		if user == "" {
			writeError(w, clientpb.ErrorCode_ERR_UNAUTHENTICATED, "token refused: empty token")
			return
		}
		r = r.WithContext(media.WithUser(r.Context(), user))
	}
	s.handler.ServeHTTP(w, r)
}

// Put uploads data as a file named name owned by user, with a simple upload
// (POST /v1/media) through the service, and returns its id.
func (s *Server) Put(user, name string, data []byte) (string, error) {
	req := httptest.NewRequest(http.MethodPost, "/v1/media?name="+url.QueryEscape(name), bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+user)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return "", fmt.Errorf("mediatest: upload %q: %d %s", name, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	var f struct {
		ID string `json:"file_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil || f.ID == "" {
		return "", fmt.Errorf("mediatest: upload %q: answer %q: %v", name, rec.Body.String(), err)
	}
	return f.ID, nil
}

// noMessages is the service's Messages for users without any: every
// message lookup is not found.
type noMessages struct{}

func (noMessages) MediaMessage(_ context.Context, user string, id uint64) (*clientpb.Message, error) {
	return nil, fmt.Errorf("mediatest: message %d of %s: %w", id, user, persistence.ErrNotFound)
}

// writeError answers as the gateway does: the code's HTTP status and
// {"error": {"code": "ERR_...", "message": "..."}}.
func writeError(w http.ResponseWriter, code clientpb.ErrorCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(clientpb.HTTPStatus(code))
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code.String(), "message": msg}})
}
