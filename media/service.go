// Package media serves uploaded files: simple and resumable (tus) uploads
// under a per-user quota, type sniffing and refusal of executables,
// thumbnails and blurhashes of images decoded within a pixel limit, content
// stored once per hash in an object store, downloads by the uploader or by
// the recipients of a message that carries the file (or a signed link), and
// a collector of files never sent and of abandoned uploads.
//
// The node builds the Service (New) over the stores (persistence.Objects
// and persistence.Media) and the actors (Messages), with Config.Dir under
// its data directory and Config.LinkSecret from DeriveLinkSecret, and calls
// Shutdown when it stops. The gateway mounts Handler on the public listener
// for /v1/media and /v1/uploads/, and authenticates each request first
// (WithUser; see Handler).
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// Objects is what the service needs of an object store
// (persistence.Objects). A store that can take a finished file from the
// local disk without streaming it (the filesystem store) may also offer
//
//	PutFile(ctx context.Context, key, path, contentType string) error
//
// which the service then uses for content; PutFile may move or copy path.
type Objects interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Open(ctx context.Context, key string) (persistence.Object, error)
	Stat(ctx context.Context, key string) (persistence.ObjectInfo, error)
	Delete(ctx context.Context, key string) error
}

// fileStorer is the optional fast path of Objects.
type fileStorer interface {
	PutFile(ctx context.Context, key, path, contentType string) error
}

// Store is what the service needs of the media records (persistence.Media):
// everything but MarkMediaSent, which the actors call.
type Store interface {
	AcquireBlob(ctx context.Context, sha string) (key string, err error)
	ReleaseBlob(ctx context.Context, sha string) (deleteKey string, err error)
	ChargeMedia(ctx context.Context, owner string, delta, limit int64) (used int64, err error)
	MediaUsage(ctx context.Context, owner string) (int64, error)
	PutMediaFile(ctx context.Context, f persistence.MediaFile) error
	GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error)
	UnsentMedia(ctx context.Context, beforeMs uint64, limit int) ([]persistence.MediaFile, error)
	DeleteUnsentMedia(ctx context.Context, id string) (persistence.MediaFile, error)
}

// Messages finds the message a download names (actors.Service implements it).
type Messages interface {
	// MediaMessage returns the message msgID of user's own timeline, with
	// Recalled set if it was recalled, or an error wrapping
	// persistence.ErrNotFound if user's timeline has no such message.
	MediaMessage(ctx context.Context, user string, msgID uint64) (*clientpb.Message, error)
}

// Deps are the service's dependencies.
type Deps struct {
	// Objects holds the bytes, Store the records; Messages answers which
	// messages a user may name to download a file. All three are required.
	Objects  Objects
	Store    Store
	Messages Messages
	// Registerer registers the service's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Service serves the media API and runs the collector.
type Service struct {
	cfg      Config
	objects  Objects
	store    Store
	messages Messages
	log      *slog.Logger
	metrics  *metrics

	uploads   filestore.FileStore // tus uploads in progress, in cfg.Dir
	locker    *memorylocker.MemoryLocker
	tus       http.Handler
	simpleDir string        // temporary files of simple uploads
	decode    chan struct{} // a slot per image being decoded
	handler   http.Handler

	stop     context.CancelFunc
	stopOnce sync.Once
	done     chan struct{}
}

// New creates the service, its upload directory included, and starts the
// collector (Shutdown stops it). log may be nil (nothing logged).
func New(cfg Config, deps Deps, log *slog.Logger) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if deps.Objects == nil || deps.Store == nil || deps.Messages == nil {
		return nil, errors.New("media: Deps.Objects, Deps.Store and Deps.Messages are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, objects: deps.Objects, store: deps.Store, messages: deps.Messages,
		log: log, metrics: newMetrics(deps.Registerer),
		simpleDir: filepath.Join(cfg.Dir, "simple"),
		decode:    make(chan struct{}, cfg.DecodeConcurrency),
		done:      make(chan struct{}),
	}
	if err := os.MkdirAll(s.simpleDir, 0o700); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if err := s.newTus(); err != nil {
		return nil, err
	}
	s.routes()
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.collectLoop(ctx)
	return s, nil
}

// Handler serves the media API: POST /v1/media (simple upload), the tus
// endpoints under /v1/uploads/, and under /v1/media/{id} the file, its
// thumbnail (/thumb), its JSON (/info) and signed links (POST /links).
//
// The gateway authenticates each request: with a valid bearer token it
// passes the request on with the user in its context (WithUser); without
// an Authorization header it passes it on as it is, so that signed links
// work; an invalid token it refuses itself. Requests that need a user and
// have none are answered 401.
func (s *Service) Handler() http.Handler { return s.handler }

func (s *Service) routes() {
	mux := http.NewServeMux()
	s.register(mux.Handle)
	s.handler = mux
}

// register gives handle the media API's routes (a mux's Handle, or the spec
// test's recorder: docs/openapi.yaml must list them); the tus handler routes
// the methods under uploadsPath itself (tus.go).
func (s *Service) register(handle func(pattern string, h http.Handler)) {
	handle("POST /v1/media", http.HandlerFunc(s.handleUpload))
	handle("GET /v1/media/{id}", http.HandlerFunc(s.handleFile))
	handle("GET /v1/media/{id}/thumb", http.HandlerFunc(s.handleThumb))
	handle("GET /v1/media/{id}/info", http.HandlerFunc(s.handleInfo))
	handle("POST /v1/media/{id}/links", http.HandlerFunc(s.handleLinks))
	handle(uploadsPath, s.tus)
}

// Shutdown stops the collector and waits for it to return, or for ctx to
// end. Requests in flight are the HTTP server's to drain.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(s.stop)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type userKey struct{}

// WithUser returns ctx carrying the authenticated user, for the gateway to
// hand a request to Handler.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the user WithUser put in ctx.
func UserFrom(ctx context.Context) (string, bool) {
	u, ok := ctx.Value(userKey{}).(string)
	return u, ok && u != ""
}

// cleanupTimeout bounds the store calls that undo a failed upload.
const cleanupTimeout = 10 * time.Second

// cleanupContext is for undoing what a failed request did to the stores,
// which must happen even when the request's context has ended.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
