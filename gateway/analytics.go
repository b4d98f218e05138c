package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"actorim/protos/clientpb"
)

// Analytics answers the admin analytics endpoints from the message archive.
type Analytics interface {
	// Analyze runs the named query; the result is encoded as JSON.
	Analyze(ctx context.Context, q AnalyticsQuery) (any, error)
}

// AnalyticsQuery is one request of GET /v1/admin/analytics/{query}.
type AnalyticsQuery struct {
	// Name is the query: messages, active-users, top-conversations,
	// top-groups, content-mix, content-kinds, conversation-share or
	// delivery-latency.
	Name string
	// From and To bound the time range [From, To).
	From, To time.Time
	// Bucket is hour or day (messages), day or month (active-users).
	Bucket string
	// Limit bounds the top lists.
	Limit int
}

// Errors an Analytics returns (wrapped) for requests it refuses.
var (
	ErrUnknownAnalytics = errors.New("gateway: unknown analytics query")
	ErrBadAnalytics     = errors.New("gateway: bad analytics query")
)

// analyticsTimeout bounds one analytics query.
const analyticsTimeout = 60 * time.Second

type analyticsHolder struct{ a Analytics }

// SetAnalytics enables the analytics endpoints; without it they answer 503.
func (s *Server) SetAnalytics(a Analytics) { s.analytics.Store(&analyticsHolder{a}) }

// handleAnalytics serves GET /v1/admin/analytics/{query}?from=&to=&bucket=&limit=.
// from and to are RFC 3339 times or dates (2006-01-02); the default range is
// the last 24 hours.
func (s *Server) handleAnalytics(w http.ResponseWriter, r *http.Request) {
	h := s.analytics.Load()
	if h == nil {
		writeError(w, errNoArchive)
		return
	}
	q := AnalyticsQuery{Name: r.PathValue("query"), Bucket: r.URL.Query().Get("bucket")}
	now := time.Now().UTC()
	var err error
	if q.To, err = parseTime(r.URL.Query().Get("to"), now); err != nil {
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "to: "+err.Error()))
		return
	}
	if q.From, err = parseTime(r.URL.Query().Get("from"), q.To.Add(-24*time.Hour)); err != nil {
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "from: "+err.Error()))
		return
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 || q.Limit > 10000 {
			writeError(w, errBadTopLimit)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), analyticsTimeout)
	defer cancel()
	extendWrite(w, analyticsTimeout+10*time.Second)
	start := time.Now()
	res, err := h.a.Analyze(ctx, q)
	switch {
	case errors.Is(err, ErrUnknownAnalytics):
		writeError(w, clientError(clientpb.ErrorCode_ERR_NOT_FOUND, err.Error()))
		return
	case errors.Is(err, ErrBadAnalytics):
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, err.Error()))
		return
	case err != nil:
		s.log.Warn("analytics query failed", "query", q.Name, "err", err)
		writeError(w, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "archive query failed: "+err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"query": q.Name, "from": q.From, "to": q.To, "bucket": q.Bucket,
		"elapsed_ms": time.Since(start).Milliseconds(), "result": res,
	})
}

func parseTime(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", v)
}
