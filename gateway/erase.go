package gateway

import (
	"context"
	"net/http"
	"time"

	"actorim/ids"
	"actorim/protos/clientpb"
)

// eraser is the part of a Backend that erases users, asserted at each
// request (actors.Service implements it).
type eraser interface {
	DeleteUser(ctx context.Context, userID string) *clientpb.Error
}

var errNoErase = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "user deletion is not available") // answered 501

// eraseTimeout bounds a user's erasure, which tells every friend and
// group: longer than other calls. One cut short is finished by repeating it.
const eraseTimeout = time.Minute

func (s *Server) eraseRoutes(m routeMux) {
	m.HandleFunc("DELETE /v1/admin/users/{user}", s.requireAdmin(s.handleDeleteUser))
}

// handleDeleteUser erases a user and their data, the right to erasure's
// path (DELETE /v1/admin/users/{user}?app=, admin token): their devices are
// kicked, their groups and friends left, their records, timeline, sessions
// and account deleted, and the id freed. An unknown user is 404.
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	b, ok := s.backend.(eraser)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoErase)
		return
	}
	user, ok := s.adminUser(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), eraseTimeout)
	defer cancel()
	if e := b.DeleteUser(ctx, user); e != nil {
		writeError(w, e)
		return
	}
	_, id := ids.Unqualify(user)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "deleted": true})
}
