package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"actorim/actors"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// broadcaster is the part of a Backend that broadcasts, asserted at each
// request (actors.Service implements it).
type broadcaster interface {
	Broadcast(ctx context.Context, req actors.BroadcastRequest) (actors.BroadcastResult, *clientpb.Error)
}

// broadcastTimeout bounds one broadcast request; an interrupted broadcast
// with an id resumes when retried.
const broadcastTimeout = 2 * time.Minute

type broadcastBody struct {
	ID         string `json:"id,omitempty"`
	Channel    string `json:"channel,omitempty"`
	OnlineOnly bool   `json:"online_only,omitempty"`
	// Content in the protocol's JSON form, e.g. {"text": "hello"}.
	Content json.RawMessage `json:"content"`
}

// handleBroadcast sends a server message to all users or all online users
// (POST /v1/admin/broadcast, admin token).
func (s *Server) handleBroadcast(w http.ResponseWriter, r *http.Request) {
	b, ok := s.backend.(broadcaster)
	if !ok {
		writeErrorStatus(w, http.StatusNotImplemented, errNoBroadcast)
		return
	}
	var body broadcastBody
	if !readJSON(w, r, &body, maxSendBody) {
		return
	}
	app, ok := s.adminApp(w, r)
	if !ok {
		return
	}
	content := &clientpb.Content{}
	if len(body.Content) == 0 {
		writeError(w, errNoContent)
		return
	}
	if err := wire.UnmarshalJSON(body.Content, content); err != nil {
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content is not a Content: "+err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), broadcastTimeout)
	defer cancel()
	extendWrite(w, broadcastTimeout+10*time.Second)
	res, e := b.Broadcast(ctx, actors.BroadcastRequest{App: app, ID: body.ID, Channel: body.Channel, Content: content, OnlineOnly: body.OnlineOnly})
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
