package gateway

// Cross-origin requests (CORS) on the public HTTP API, for web pages served
// from another origin than the node's. Credentials are never cookies: a page
// sends its token in Authorization, so no answer allows credentials, and a
// page of an origin not allowed gets no CORS headers at all (its browser
// then keeps the answer from it). The WebSocket is outside CORS: browsers
// open it from any origin, and it carries no ambient credential either (the
// token is in the Login frame). The admin API never answers cross-origin.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"
)

// corsMaxAge is how long a browser may cache a preflight's answer, seconds.
const corsMaxAge = 600

// The request headers a page may send: the token, JSON bodies, ranged and
// conditional downloads, and tus's headers (uploads).
var corsAllowedHeaders = []string{
	"Authorization", "Content-Type", "Range", "If-None-Match", "If-Range", "If-Modified-Since",
	"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Defer-Length", "Upload-Concat",
	"X-HTTP-Method-Override", "X-Requested-With",
}

// The answer headers a page may read beyond the CORS-safelisted ones:
// downloads' lengths, ranges and validators, Retry-After of 429 and 503,
// and tus's headers (an upload's URL in Location, its offset).
var corsExposedHeaders = []string{
	"Content-Length", "Content-Range", "Content-Disposition", "ETag", "Accept-Ranges", "Retry-After", "Location",
	"Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Offset", "Upload-Length", "Upload-Expires",
}

// adminPrefix starts the paths of the admin API.
const adminPrefix = "/v1/admin/"

// withCORS wraps the public routes in CORS for cfg.CORSOrigins; without
// any it returns h as it is (no cross-origin access, the default). A
// request for the admin API that reaches h (a preflight: OPTIONS matches
// none of the admin routes' methods) passes without CORS.
func withCORS(cfg Config, h http.Handler) http.Handler {
	if len(cfg.CORSOrigins) == 0 {
		return h
	}
	c := cors.New(cors.Options{
		AllowedOrigins: cfg.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: corsAllowedHeaders,
		ExposedHeaders: corsExposedHeaders,
		MaxAge:         corsMaxAge,
	}).Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, adminPrefix) {
			h.ServeHTTP(w, r)
			return
		}
		c.ServeHTTP(w, r)
	})
}

// CheckCORSOrigin reports whether o can be an entry of Config.CORSOrigins:
// "*", or an origin as browsers send it, scheme://host[:port] with scheme
// http or https and no path, in which the host may start with "*." (any
// subdomain).
func CheckCORSOrigin(o string) error {
	if o == "*" {
		return nil
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return fmt.Errorf("CORS origin %q: want http:// or https:// and a host", o)
	}
	host := strings.TrimPrefix(rest, "*.")
	u, err := url.Parse(scheme + "://" + host)
	if err != nil || u.Host != host || host == "" || u.Hostname() == "" || strings.Contains(host, "*") {
		return fmt.Errorf("CORS origin %q: want scheme://host[:port], no path, at most one leading *.", o)
	}
	return nil
}
