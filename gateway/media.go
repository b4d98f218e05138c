package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"actorim/protos/clientpb"
)

// MediaHandler serves the media API (/v1/media, /v1/uploads/): uploads,
// downloads and signed links (package media). The gateway authenticates;
// the handler authorizes.
type MediaHandler interface {
	http.Handler
	// WithUser returns ctx carrying the authenticated user id of a request.
	// A request without Authorization reaches the handler without one (a
	// signed download link carries its own proof).
	WithUser(ctx context.Context, user string) context.Context
}

type mediaHolder struct{ h MediaHandler }

var errNoMedia = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "media is not configured on this node")

// SetMedia mounts the media API. Without it, /v1/media and /v1/uploads/
// answer 400 ERR_UNSUPPORTED.
func (s *Server) SetMedia(h MediaHandler) { s.media.Store(&mediaHolder{h}) }

// mediaTransferTimeout replaces the server's read and write timeouts (20 s
// and 30 s by default, too short for 100 MiB on a mobile link) on a media
// request until the media package moves them: while it streams a body it
// sets them 60 s ahead of every read and write, so that a transfer is cut
// when it stalls, not when it is long (its length is bounded by the size
// limit). Resumable uploads send chunks, each a request of its own.
const mediaTransferTimeout = 15 * time.Minute

// handleMedia authenticates a media request and hands it on.
func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request) {
	holder := s.media.Load()
	if holder == nil {
		writeError(w, errNoMedia)
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(mediaTransferTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	ctx := r.Context()
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		c, ok := s.bearer(w, r)
		if !ok {
			return
		}
		ctx = holder.h.WithUser(ctx, c.Qualified())
	}
	holder.h.ServeHTTP(w, r.WithContext(ctx))
}

// mediaRoutes mounts the media API on m.
func (s *Server) mediaRoutes(m routeMux) {
	h := http.HandlerFunc(s.handleMedia)
	m.Handle("/v1/media", h)
	m.Handle("/v1/media/", h)
	m.Handle("/v1/uploads/", h)
	m.Handle("/v1/uploads", h)
}
