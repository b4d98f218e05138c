package gateway

import (
	"context"
	"net/http"
	"strconv"

	"actorim/protos/clientpb"
)

// moderator is the part of a Backend that deletes messages for everyone,
// asserted at each request (actors.Service implements it).
type moderator interface {
	DeleteMessage(ctx context.Context, app, conversationID string, msgID uint64) *clientpb.Error
	GroupOp(ctx context.Context, app, groupID, as string, req *clientpb.GroupRequest) (*clientpb.Result, *clientpb.Error)
}

var (
	errNoModeration = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "moderation is not available") // answered 501
	errBadMsgID     = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad message id in path")
)

func (s *Server) moderationRoutes(m routeMux) {
	m.HandleFunc("DELETE /v1/admin/conversations/{conversation}/messages/{msg}", s.requireAdmin(s.handleDeleteMessage))
	m.HandleFunc("POST /v1/admin/groups/{group}", s.requireAdmin(s.handleGroupOp))
}

// maxGroupOpBody bounds a GroupRequest in JSON: a create or invite names
// at most a few hundred members.
const maxGroupOpBody = 64 << 10

// handleGroupOp performs a group request for the app server (POST
// /v1/admin/groups/{group}?app=&as=, admin token): the body is a
// GroupRequest in the protocol's JSON form, done as user "as" or, without
// it, with the group owner's authority; the answer is the Result.
func (s *Server) handleGroupOp(w http.ResponseWriter, r *http.Request) {
	b, ok := s.backend.(moderator)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoModeration)
		return
	}
	req := &clientpb.GroupRequest{}
	if !readWireJSON(w, r, req, maxGroupOpBody) {
		return
	}
	app, ok := s.adminApp(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	res, e := b.GroupOp(ctx, app, r.PathValue("group"), r.URL.Query().Get("as"), req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, http.StatusOK, res)
}

// handleDeleteMessage removes a message for everyone (DELETE
// /v1/admin/conversations/{conversation}/messages/{msg}?app=, admin token):
// the participants' devices see it recalled by "#moderator".
func (s *Server) handleDeleteMessage(w http.ResponseWriter, r *http.Request) {
	b, ok := s.backend.(moderator)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoModeration)
		return
	}
	msg, err := strconv.ParseUint(r.PathValue("msg"), 10, 64)
	if err != nil || msg == 0 {
		writeError(w, errBadMsgID)
		return
	}
	app, ok := s.adminApp(w, r)
	if !ok {
		return
	}
	conv := r.PathValue("conversation")
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	if e := b.DeleteMessage(ctx, app, conv, msg); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversation_id": conv, "msg_id": strconv.FormatUint(msg, 10), "deleted": true})
}
