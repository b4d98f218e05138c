package gateway

import (
	"context"
	"net/http"

	"actorim/protos/clientpb"
)

// profiles is the part of a Backend that serves the admin API's profiles,
// asserted at each request (actors.Service implements it).
type profiles interface {
	Profile(ctx context.Context, user string) (*clientpb.Profile, *clientpb.Error)
	SetProfile(ctx context.Context, user string, sp *clientpb.SetProfile) (*clientpb.Profile, *clientpb.Error)
}

// maxProfileBody: a SetProfile in JSON; its extra is at most 4 KiB, which
// JSON escaping inside a string can make a few times larger.
const maxProfileBody = 32 << 10

var errNoProfiles = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "profiles are not available") // answered 501

func (s *Server) profileRoutes(m routeMux) {
	m.HandleFunc("GET /v1/admin/users/{user}/profile", s.requireAdmin(s.handleGetProfile))
	m.HandleFunc("PUT /v1/admin/users/{user}/profile", s.requireAdmin(s.handlePutProfile))
}

// handleGetProfile answers a user's whole profile, extra included (GET
// /v1/admin/users/{user}/profile, admin token).
func (s *Server) handleGetProfile(w http.ResponseWriter, r *http.Request) {
	p, user, ok := s.profileCall(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	res, e := p.Profile(ctx, user)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, http.StatusOK, res)
}

// handlePutProfile changes a user's profile (PUT
// /v1/admin/users/{user}/profile, admin token): the body is a SetProfile in
// the protocol's JSON form, only the fields present change, and the answer
// is the stored profile.
func (s *Server) handlePutProfile(w http.ResponseWriter, r *http.Request) {
	p, user, ok := s.profileCall(w, r)
	if !ok {
		return
	}
	sp := &clientpb.SetProfile{}
	if !readWireJSON(w, r, sp, maxProfileBody) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	res, e := p.SetProfile(ctx, user, sp)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, http.StatusOK, res)
}

// profileCall returns the backend's profiles and the user in the path; it
// answers the request itself when either is missing.
func (s *Server) profileCall(w http.ResponseWriter, r *http.Request) (profiles, string, bool) {
	p, ok := s.backend.(profiles)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoProfiles)
		return nil, "", false
	}
	user, ok := s.adminUser(w, r)
	return p, user, ok
}
