package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"actorim/apps"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// AppRegistry is the deployment's applications (apps.Registry), which the
// admin API manages and the gateway consults at login and while sockets
// are open. Without one (SetApps not called) there is the default app only.
type AppRegistry interface {
	Get(ctx context.Context, id string) (apps.App, error)
	List(ctx context.Context) ([]apps.App, error)
	Create(ctx context.Context, id string, s apps.Settings) (apps.App, error)
	Update(ctx context.Context, id string, fn func(*apps.App) error) (apps.App, error)
	RotateSecret(ctx context.Context, id string) (apps.App, error)
	RotateWebhookSecret(ctx context.Context, id string) (apps.App, error)
}

type appsHolder struct{ r AppRegistry }

// appCheckInterval is how often the sockets of a disabled app are looked
// for and closed: a disable made on another node takes at most this plus
// the registry's cache lifetime to reach this node's sockets.
const appCheckInterval = 3 * time.Second

// maxAppBody bounds POST /v1/admin/apps and PUT .../settings: a word list
// of 1,000 words of 64 bytes, JSON around it.
const maxAppBody = 128 << 10

// Coded errors of the apps.
var (
	errUnknownApp  = clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "unknown app")
	errAppDisabled = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "app disabled")
	errBadApp      = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "app must be 1 to 32 characters [a-z0-9_-], starting with a letter or digit")
	errAppExists   = clientError(clientpb.ErrorCode_ERR_CONFLICT, "app exists")
	errNoApps      = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "this node has no app registry") // answered 501
)

// SetApps enables applications: tokens and admin requests may name an app
// of reg, and the sockets of an app that gets disabled are closed. It
// starts a sweep that Shutdown stops.
func (s *Server) SetApps(reg AppRegistry) {
	s.apps.Store(&appsHolder{reg})
	s.sweepOnce.Do(func() { go s.sweepDisabledApps() })
}

func (s *Server) registry() AppRegistry {
	if h := s.apps.Load(); h != nil {
		return h.r
	}
	return nil
}

// appError maps the registry's errors to coded ones.
func appError(err error) *clientpb.Error {
	switch {
	case errors.Is(err, apps.ErrNotFound):
		return errUnknownApp
	case errors.Is(err, apps.ErrDisabled):
		return errAppDisabled
	case errors.Is(err, apps.ErrExists):
		return errAppExists
	case errors.Is(err, apps.ErrBadID):
		return errBadApp
	case errors.Is(err, apps.ErrBadSettings):
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, err.Error())
	}
	return clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "app registry unavailable, retry")
}

// lookupApp returns the record of app: without a registry only the
// default app exists. It answers the request itself
// when app is not a valid id or unknown.
func (s *Server) lookupApp(w http.ResponseWriter, ctx context.Context, app string) (apps.App, bool) {
	if !ids.ValidApp(app) {
		writeError(w, errBadApp)
		return apps.App{}, false
	}
	reg := s.registry()
	if reg == nil {
		if app != ids.DefaultApp {
			writeError(w, errUnknownApp)
			return apps.App{}, false
		}
		return apps.App{ID: app}, true
	}
	a, err := reg.Get(ctx, app)
	if err != nil {
		writeError(w, appError(err))
		return apps.App{}, false
	}
	return a, true
}

// usableApp checks that app (empty: the default) exists and is enabled,
// for a login or registration; it answers the request itself when not.
func (s *Server) usableApp(w http.ResponseWriter, ctx context.Context, app string) (string, bool) {
	if app == "" {
		app = ids.DefaultApp
	}
	a, ok := s.lookupApp(w, ctx, app)
	if !ok {
		return "", false
	}
	if a.Disabled {
		writeError(w, errAppDisabled)
		return "", false
	}
	return app, true
}

// adminApp returns the app an admin request is about: its "app" query
// parameter, the default app when absent. A disabled app may still be
// administered. It answers the request itself when the app is unknown.
func (s *Server) adminApp(w http.ResponseWriter, r *http.Request) (string, bool) {
	app := r.URL.Query().Get("app")
	if app == "" {
		return ids.DefaultApp, true
	}
	if _, ok := s.lookupApp(w, r.Context(), app); !ok {
		return "", false
	}
	return app, true
}

// adminUser returns the qualified id (ids.Qualify) of the user an admin
// request names in its path, within the app of its "app" parameter.
func (s *Server) adminUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	user, ok := pathUser(w, r)
	if !ok {
		return "", false
	}
	app, ok := s.adminApp(w, r)
	if !ok {
		return "", false
	}
	return ids.Qualify(app, user), true
}

func (s *Server) appRoutes(m routeMux) {
	m.HandleFunc("GET /v1/admin/apps", s.requireAdmin(s.handleListApps))
	m.HandleFunc("POST /v1/admin/apps", s.requireAdmin(s.handleCreateApp))
	m.HandleFunc("GET /v1/admin/apps/{app}", s.requireAdmin(s.handleGetApp))
	m.HandleFunc("PUT /v1/admin/apps/{app}/settings", s.requireAdmin(s.handleAppSettings))
	m.HandleFunc("POST /v1/admin/apps/{app}/disable", s.requireAdmin(s.handleAppEnabled(false)))
	m.HandleFunc("POST /v1/admin/apps/{app}/enable", s.requireAdmin(s.handleAppEnabled(true)))
	m.HandleFunc("POST /v1/admin/apps/{app}/rotate-secret", s.requireAdmin(s.handleAppRotate(false)))
	m.HandleFunc("POST /v1/admin/apps/{app}/rotate-webhook-secret", s.requireAdmin(s.handleAppRotate(true)))
	m.HandleFunc("POST /v1/admin/apps/{app}/test-webhook", s.requireAdmin(s.handleTestWebhook))
}

// withRegistry runs an apps handler with the registry; without one it
// answers 501.
func (s *Server) withRegistry(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, reg AppRegistry) (any, int, error)) {
	reg := s.registry()
	if reg == nil {
		writeErrorStatus(w, http.StatusNotImplemented, errNoApps)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	v, status, err := fn(ctx, reg)
	if err != nil {
		writeError(w, appError(err))
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request) {
	s.withRegistry(w, r, func(ctx context.Context, reg AppRegistry) (any, int, error) {
		list, err := reg.List(ctx)
		return map[string]any{"apps": list}, http.StatusOK, err
	})
}

type createAppRequest struct {
	ID       string        `json:"id"`
	Settings apps.Settings `json:"settings"`
}

// handleCreateApp creates an app (POST /v1/admin/apps) and answers it with
// its first token and webhook secrets.
func (s *Server) handleCreateApp(w http.ResponseWriter, r *http.Request) {
	var req createAppRequest
	if !readJSON(w, r, &req, maxAppBody) {
		return
	}
	s.withRegistry(w, r, func(ctx context.Context, reg AppRegistry) (any, int, error) {
		a, err := reg.Create(ctx, req.ID, req.Settings)
		return a, http.StatusCreated, err
	})
}

// pathApp returns the app id in the request's path; it answers 400 itself
// when the id is not valid.
func pathApp(w http.ResponseWriter, r *http.Request) (string, bool) {
	app := r.PathValue("app")
	if !ids.ValidApp(app) {
		writeError(w, errBadApp)
		return "", false
	}
	return app, true
}

// withPathApp runs fn on the app named in the path, answering its record.
func (s *Server) withPathApp(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, reg AppRegistry, app string) (apps.App, error)) {
	app, ok := pathApp(w, r)
	if !ok {
		return
	}
	s.withRegistry(w, r, func(ctx context.Context, reg AppRegistry) (any, int, error) {
		a, err := fn(ctx, reg, app)
		return a, http.StatusOK, err
	})
}

func (s *Server) handleGetApp(w http.ResponseWriter, r *http.Request) {
	s.withPathApp(w, r, func(ctx context.Context, reg AppRegistry, app string) (apps.App, error) {
		return reg.Get(ctx, app)
	})
}

// handleAppSettings replaces an app's settings (PUT
// /v1/admin/apps/{app}/settings); the default app may be configured too.
func (s *Server) handleAppSettings(w http.ResponseWriter, r *http.Request) {
	var set apps.Settings
	if !readJSON(w, r, &set, maxAppBody) {
		return
	}
	s.withPathApp(w, r, func(ctx context.Context, reg AppRegistry, app string) (apps.App, error) {
		return reg.Update(ctx, app, func(a *apps.App) error {
			a.Settings = set
			return nil
		})
	})
}

// handleAppEnabled disables or re-enables an app. Disabling refuses its
// tokens and logins from then on and closes its open sockets: at once on
// this node, within appCheckInterval (plus the registry's cache lifetime)
// on the others.
func (s *Server) handleAppEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.withPathApp(w, r, func(ctx context.Context, reg AppRegistry, app string) (apps.App, error) {
			a, err := reg.Update(ctx, app, func(a *apps.App) error {
				a.Disabled = !enabled
				return nil
			})
			if err == nil && !enabled {
				s.closeApp(app)
			}
			return a, err
		})
	}
}

// handleAppRotate rotates an app's token secret or webhook secret: the new
// one signs from now on, the previous one stays valid until the next
// rotation.
func (s *Server) handleAppRotate(webhook bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.withPathApp(w, r, func(ctx context.Context, reg AppRegistry, app string) (apps.App, error) {
			if webhook {
				return reg.RotateWebhookSecret(ctx, app)
			}
			return reg.RotateSecret(ctx, app)
		})
	}
}

// closeApp closes this node's sockets of app.
func (s *Server) closeApp(app string) {
	s.connsMu.Lock()
	var hit []*wsConn
	for c := range s.conns {
		if c.app == app {
			hit = append(hit, c)
		}
	}
	s.connsMu.Unlock()
	for _, c := range hit {
		c.Close(clientpb.CloseUnauthenticated, "app disabled")
	}
}

// sweepDisabledApps closes the sockets of apps disabled since they logged
// in (on any node), every appCheckInterval until Shutdown.
func (s *Server) sweepDisabledApps() {
	t := time.NewTicker(appCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		reg := s.registry()
		s.connsMu.Lock()
		live := map[string]bool{}
		for c := range s.conns {
			if c.app != "" {
				live[c.app] = true
			}
		}
		s.connsMu.Unlock()
		for app := range live {
			ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
			a, err := reg.Get(ctx, app)
			cancel()
			if errors.Is(err, apps.ErrNotFound) || (err == nil && a.Disabled) {
				s.closeApp(app)
			}
		}
	}
}
