package gateway

// The web app (Config.WebApp): static files served at / of the public
// listener, so that a browser opened on the node's address gets a chat
// client. The app calls the API of its own origin, so it needs no CORS.
// Paths under /v1/ stay the API's: a missing one is the API's 404, never
// the app's.

import (
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// webAppCSP is the app's Content-Security-Policy: its own scripts and
// styles (inline styles allowed: a style attribute is common in small apps,
// inline scripts are not), data and blob images (previews, thumbnails), and
// connections to its own origin over HTTP and WebSocket; no framing.
const webAppCSP = "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; " +
	"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"

// webAppAssets is the directory of the app's content-hashed files, cached
// for good; everything else (index.html) is revalidated on every load.
const webAppAssets = "/assets/"

// webAppHandler serves app's files: index.html for /, the files as they
// are otherwise, 404 for a path with no file (the app routes in the URL's
// fragment, so a path it does not have is nobody's: /metrics on a node
// whose admin API has a listener of its own stays a 404), with the app's
// security headers.
func webAppHandler(app fs.FS) http.Handler {
	files := http.FileServerFS(app)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", webAppCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if strings.HasPrefix(r.URL.Path, webAppAssets) {
			if st, err := fs.Stat(app, name); err != nil || st.IsDir() {
				http.NotFound(w, r) // a missing asset is 404, not the app
				return
			}
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			files.ServeHTTP(w, r)
			return
		}
		h.Set("Cache-Control", "no-cache")
		if name == "" || name == "index.html" {
			serveIndex(w, r, app)
			return
		}
		if st, err := fs.Stat(app, name); err != nil || st.IsDir() {
			http.NotFound(w, r) // the app routes in the fragment (#/c/...): other paths are not its
			return
		}
		files.ServeHTTP(w, r)
	})
}

// serveIndex serves the app's index.html (http.ServeFileFS would redirect
// /index.html to /; both are the index here).
func serveIndex(w http.ResponseWriter, r *http.Request, app fs.FS) {
	f, err := app.Open("index.html")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	rs, ok := f.(io.ReadSeeker)
	if err != nil || !ok {
		http.Error(w, "index.html cannot be served", http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, "index.html", st.ModTime(), rs)
}
