package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/actors"
	"actorim/cluster"
	"actorim/media"
	"actorim/persistence"
	"actorim/persistence/objects/fs"
	"actorim/persistence/objects/s3"
)

// Where uploaded files' bytes are kept (MediaConfig.Store).
const (
	MediaStoreFS  = "fs"  // the local disk: one node, or a directory every node shares
	MediaStoreS3  = "s3"  // an S3-compatible service: a cluster
	MediaStoreOff = "off" // no media: the media API answers ERR_UNSUPPORTED
)

// MediaConfig configures uploads and downloads (package media).
type MediaConfig struct {
	// Store is where file bytes go: "fs", "s3" or "off". Default: "s3" when
	// S3.Endpoint is set; otherwise "fs" for a standalone node and "off" for
	// a cluster node (files uploaded through one node must download through
	// every other, which a node's own disk cannot do).
	Store string
	// Dir holds the objects of the fs store. Default <data>/media/objects.
	Dir string
	// S3 is the S3-compatible service of the s3 store.
	S3 s3.Config
	// Service tunes uploads, thumbnails, quotas, links and the collector;
	// its Dir defaults to <data>/media/uploads and its LinkSecret to one
	// derived from the auth secret (the same on every node of a cluster).
	Service media.Config
}

// WithDefaults returns c with every zero field that has a default set to
// it (Store and the directories depend on the node; see MediaConfig).
func (c MediaConfig) WithDefaults() MediaConfig {
	c.S3 = c.S3.WithDefaults()
	c.Service = c.Service.WithDefaults()
	return c
}

// store returns the store to use: Store, or its default.
func (c MediaConfig) store(clustered bool) string {
	switch {
	case c.Store != "":
		return c.Store
	case c.S3.Endpoint != "":
		return MediaStoreS3
	case clustered:
		return MediaStoreOff
	}
	return MediaStoreFS
}

// clustered reports whether the node is configured to join a cluster.
func (cfg Config) clustered() bool {
	return cfg.Cluster.Provider != "" && cfg.Cluster.Provider != cluster.ProviderStandalone
}

// mediaOn reports whether the node serves media (its store is not off):
// without it, a media Send is ERR_UNSUPPORTED.
func (cfg Config) mediaOn() bool { return cfg.Media.store(cfg.clustered()) != MediaStoreOff }

// openMedia starts the media service, or returns nil when media is off.
func openMedia(ctx context.Context, cfg Config, authSecret []byte, records persistence.Media, msgs *actors.Service,
	reg prometheus.Registerer, logger *slog.Logger) (*media.Service, error) {
	mc := cfg.Media
	clustered := cfg.clustered()
	var objects media.Objects
	switch kind := mc.store(clustered); kind {
	case MediaStoreOff:
		if clustered && mc.Store == "" {
			logger.Warn("media is off: a cluster needs --media-store s3 (or fs on a directory every node shares)")
		}
		return nil, nil
	case MediaStoreFS:
		dir := mc.Dir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "media", "objects")
		}
		st, err := fs.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("node: media store: %w", err)
		}
		objects = st
	case MediaStoreS3:
		st, err := s3.Open(ctx, mc.S3)
		if err != nil {
			return nil, fmt.Errorf("node: media store: %w", err)
		}
		objects = st
	default:
		return nil, fmt.Errorf("node: unknown media store %q (fs, s3 or off)", kind)
	}
	sc := mc.Service
	if sc.Dir == "" {
		sc.Dir = filepath.Join(cfg.DataDir, "media", "uploads")
	}
	if len(sc.LinkSecret) == 0 {
		secret, err := media.DeriveLinkSecret(authSecret)
		if err != nil {
			return nil, err
		}
		sc.LinkSecret = secret
	}
	if msgs == nil {
		return nil, errors.New("node: media needs the actors service")
	}
	return media.New(sc, media.Deps{Objects: objects, Store: records, Messages: msgs, Registerer: reg}, logger)
}

// mediaHandler is the media service as the gateway mounts it.
type mediaHandler struct{ http.Handler }

func (mediaHandler) WithUser(ctx context.Context, user string) context.Context {
	return media.WithUser(ctx, user)
}
