package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"actorim/actors"
	"actorim/ids"
	"actorim/protos/clientpb"
)

// userAdmin is the part of a Backend that serves the admin API's calls
// about an app's users and refuses a disabled user's logins, asserted at
// each request (actors.Service implements it). User ids are qualified
// (ids.Qualify) but for the listing's, which are the app's own.
type userAdmin interface {
	Users(ctx context.Context, app, after string, limit int) (actors.UserPage, *clientpb.Error)
	SearchUsers(ctx context.Context, app, query string, limit int, cursor string) (actors.UserPage, *clientpb.Error)
	LoginAllowed(ctx context.Context, user string) *clientpb.Error
	SetUserDisabled(ctx context.Context, user string, disabled bool) (int, *clientpb.Error)
	KickUser(ctx context.Context, user, deviceID string) (int, *clientpb.Error)
	PushRegistrations(ctx context.Context, user string) ([]actors.PushRegistration, *clientpb.Error)
	RemovePushRegistration(ctx context.Context, user, deviceID, token string) (bool, *clientpb.Error)
	Groups(ctx context.Context, app, after string, limit int) (actors.GroupPage, *clientpb.Error)
}

// Page sizes of GET /v1/admin/users.
const (
	defaultUsersLimit = 100
	maxUsersLimit     = 1000
)

// maxKickBody: {"device_id": "..."}, a device id of at most 64 bytes.
const maxKickBody = 1 << 10

var (
	errNoUserAdmin    = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "user administration is not available") // answered 501
	errBadUsersLimit  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "limit must be 1 to "+strconv.Itoa(maxUsersLimit))
	errBadUsersAfter  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "after must be a user id")
	errBadGroupsAfter = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "after must be a group id")
	errBadKickDevice  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "device id must be 1 to 64 characters [A-Za-z0-9_.@:-]")
	errEmptyQuery     = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "q must not be empty")
	errBadPushToken   = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "token must be at most 4096 characters")
)

// maxPushToken is the longest push token a device may register.
const maxPushToken = 4096

func (s *Server) userRoutes(m routeMux) {
	m.HandleFunc("GET /v1/admin/users", s.requireAdmin(s.handleUsers))
	m.HandleFunc("GET /v1/admin/groups", s.requireAdmin(s.handleGroups))
	m.HandleFunc("POST /v1/admin/users/{user}/disable", s.requireAdmin(s.handleUserEnabled(false)))
	m.HandleFunc("POST /v1/admin/users/{user}/enable", s.requireAdmin(s.handleUserEnabled(true)))
	m.HandleFunc("POST /v1/admin/users/{user}/kick", s.requireAdmin(s.handleKick))
	m.HandleFunc("GET /v1/admin/users/{user}/push", s.requireAdmin(s.handlePushList))
	m.HandleFunc("DELETE /v1/admin/users/{user}/push/{device}", s.requireAdmin(s.handlePushRemove))
}

// pushRegistration is a device's push registration in the admin API.
type pushRegistration struct {
	DeviceID       string `json:"device_id"`
	Platform       string `json:"platform,omitempty"`
	Provider       string `json:"provider"`
	Token          string `json:"token"`
	RegisteredAtMs uint64 `json:"registered_at_ms"`
}

// handlePushList lists a user's push registrations (GET
// /v1/admin/users/{user}/push), by device id.
func (s *Server) handlePushList(w http.ResponseWriter, r *http.Request) {
	ua, user, ok := s.userAdminCall(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	regs, e := ua.PushRegistrations(ctx, user)
	if e != nil {
		writeError(w, e)
		return
	}
	out := make([]pushRegistration, len(regs))
	for i, p := range regs {
		out[i] = pushRegistration{DeviceID: p.DeviceID, Platform: p.Platform, Provider: p.Provider, Token: p.Token, RegisteredAtMs: p.RegisteredAtMs}
	}
	_, id := ids.Unqualify(user)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "devices": out})
}

// handlePushRemove removes a device's push registration (DELETE
// /v1/admin/users/{user}/push/{device}?token=), as the app server does
// when the provider reports the token dead: with ?token=, only while the
// device is still registered with that token. 200 with "removed" saying
// whether one was.
func (s *Server) handlePushRemove(w http.ResponseWriter, r *http.Request) {
	ua, user, ok := s.userAdminCall(w, r)
	if !ok {
		return
	}
	device, token := r.PathValue("device"), r.URL.Query().Get("token")
	if !ids.ValidDevice(device) {
		writeError(w, errBadKickDevice)
		return
	}
	if len(token) > maxPushToken {
		writeError(w, errBadPushToken)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	removed, e := ua.RemovePushRegistration(ctx, user, device, token)
	if e != nil {
		writeError(w, e)
		return
	}
	_, id := ids.Unqualify(user)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "device_id": device, "removed": removed})
}

// userInfo is a user in the answer of GET /v1/admin/users.
type userInfo struct {
	UserID   string `json:"user_id"`
	Nickname string `json:"nickname,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// handleUsers lists an app's users by id (GET
// /v1/admin/users?app=&after=&limit=) or searches them (?q=, by exact id or
// nickname prefix, as the SearchUsers frame but without anyone's block
// rules), a page at a time: the answer's "next", when present, is the
// "after" of the next page.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	ua, app, q, limit, ok := s.listingCall(w, r)
	if !ok {
		return
	}
	after := q.Get("after")
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	var page actors.UserPage
	var e *clientpb.Error
	switch query, search := q["q"]; {
	case search && query[0] == "":
		e = errEmptyQuery
	case search:
		page, e = ua.SearchUsers(ctx, app, query[0], limit, after)
	case after != "" && !ids.ValidUser(after):
		e = errBadUsersAfter
	default:
		page, e = ua.Users(ctx, app, after, limit)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	res := struct {
		Users []userInfo `json:"users"`
		Next  string     `json:"next,omitempty"`
	}{Users: make([]userInfo, 0, len(page.Users)), Next: page.Next}
	for _, u := range page.Users {
		res.Users = append(res.Users, userInfo(u))
	}
	writeJSON(w, http.StatusOK, res)
}

// handleUserEnabled disables a user (POST /v1/admin/users/{user}/disable):
// their logins are refused from then on and their connections, on every
// node, kicked with KICK_REASON_DISABLED and closed 4001; or enables them
// again (.../enable). The answer counts the connections closed.
func (s *Server) handleUserEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ua, user, ok := s.userAdminCall(w, r)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
		defer cancel()
		kicked, e := ua.SetUserDisabled(ctx, user, !enabled)
		if e != nil {
			writeError(w, e)
			return
		}
		_, id := ids.Unqualify(user)
		writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "disabled": !enabled, "kicked": kicked})
	}
}

type kickRequest struct {
	// DeviceID names the one device to kick; absent: all of the user's.
	DeviceID string `json:"device_id,omitempty"`
}

// handleKick closes one device's connection or all of a user's (POST
// /v1/admin/users/{user}/kick, optional body {"device_id"}), each after a
// Kick with KICK_REASON_ADMIN and then close 4003; they may log in again.
func (s *Server) handleKick(w http.ResponseWriter, r *http.Request) {
	ua, user, ok := s.userAdminCall(w, r)
	if !ok {
		return
	}
	var req kickRequest
	if r.ContentLength != 0 && !readJSON(w, r, &req, maxKickBody) {
		return
	}
	if req.DeviceID != "" && !ids.ValidDevice(req.DeviceID) {
		writeError(w, errBadKickDevice)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	kicked, e := ua.KickUser(ctx, user, req.DeviceID)
	if e != nil {
		writeError(w, e)
		return
	}
	_, id := ids.Unqualify(user)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "kicked": kicked})
}

// listingCall returns what a listing of an app's users or groups needs:
// the backend's userAdmin, the app, the query and its ?limit= (default
// defaultUsersLimit). It answers the request itself when one is missing
// or bad.
func (s *Server) listingCall(w http.ResponseWriter, r *http.Request) (ua userAdmin, app string, q url.Values, limit int, ok bool) {
	if ua, ok = s.userAdmin(w); !ok {
		return
	}
	if app, ok = s.adminApp(w, r); !ok {
		return
	}
	q, limit = r.URL.Query(), defaultUsersLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxUsersLimit {
			writeError(w, errBadUsersLimit)
			return nil, "", nil, 0, false
		}
		limit = n
	}
	return ua, app, q, limit, true
}

// groupInfo is a group in the answer of GET /v1/admin/groups.
type groupInfo struct {
	GroupID   string `json:"group_id"`
	Name      string `json:"name,omitempty"`
	Owner     string `json:"owner,omitempty"`
	Members   int    `json:"members"`
	Dissolved bool   `json:"dissolved,omitempty"`
}

// handleGroups lists an app's groups by id (GET
// /v1/admin/groups?app=&after=&limit=), a page at a time like the users.
func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request) {
	ua, app, q, limit, ok := s.listingCall(w, r)
	if !ok {
		return
	}
	after := q.Get("after")
	if after != "" && !ids.ValidUser(after) {
		writeError(w, errBadGroupsAfter)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	page, e := ua.Groups(ctx, app, after, limit)
	if e != nil {
		writeError(w, e)
		return
	}
	res := struct {
		Groups []groupInfo `json:"groups"`
		Next   string      `json:"next,omitempty"`
	}{Groups: make([]groupInfo, 0, len(page.Groups)), Next: page.Next}
	for _, g := range page.Groups {
		res.Groups = append(res.Groups, groupInfo(g))
	}
	writeJSON(w, http.StatusOK, res)
}

// userAdmin returns the backend's userAdmin; it answers 501 itself when
// there is none.
func (s *Server) userAdmin(w http.ResponseWriter) (userAdmin, bool) {
	ua, ok := s.backend.(userAdmin)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoUserAdmin)
	}
	return ua, ok
}

// userAdminCall returns the backend's userAdmin and the qualified user in
// the path; it answers the request itself when either is missing.
func (s *Server) userAdminCall(w http.ResponseWriter, r *http.Request) (userAdmin, string, bool) {
	ua, ok := s.userAdmin(w)
	if !ok {
		return nil, "", false
	}
	user, ok := s.adminUser(w, r)
	return ua, user, ok
}

// loginAllowed refuses a disabled user's login or HTTP call (403 "user
// disabled"); it answers the request itself when refused. A backend without
// user administration has no disabled users.
func (s *Server) loginAllowed(w http.ResponseWriter, ctx context.Context, user string) bool {
	ua, ok := s.backend.(userAdmin)
	if !ok {
		return true
	}
	if e := ua.LoginAllowed(ctx, user); e != nil {
		writeError(w, e)
		return false
	}
	return true
}
