package gateway

// The route tables of the two listeners, apart from routes() so that a test
// can read them (spec_test.go checks them against docs/openapi.yaml).

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routeMux is what registering routes needs of a mux: an http.ServeMux, or
// the spec test's recorder of patterns (docs/openapi.yaml must list them).
type routeMux interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// publicRoutes registers the public listener's routes.
func (s *Server) publicRoutes(pub routeMux) {
	pub.HandleFunc("GET /ws", s.handleWS)
	pub.HandleFunc("POST /v1/register", s.handleRegister)
	pub.HandleFunc("POST /v1/login", s.handleLogin)
	pub.HandleFunc("GET /v1/conversations/{conversation}/messages", s.handleHistory)
	s.mediaRoutes(pub)
	s.health(pub)
	if s.cfg.WebApp != nil {
		pub.Handle("/", webAppHandler(s.cfg.WebApp))
		pub.Handle("/v1/", http.NotFoundHandler()) // the API's paths are never the app's
	}
}

// adminListenerRoutes registers the admin listener's routes.
func (s *Server) adminListenerRoutes(adm routeMux) {
	s.adminRoutes(adm)
	s.health(adm)
	if s.gatherer != nil {
		adm.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
}
