package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"actorim/protos/clientpb"
)

// DeleteMessage removes a message of a conversation for everyone
// (moderation; admin token): the participants' devices get EVENT_RECALLED
// with actor "#moderator", and reads show it recalled. The conversation is
// one of h.App's.
func (h *HTTP) DeleteMessage(ctx context.Context, conversationID string, msgID uint64) error {
	path := "/v1/admin/conversations/" + url.PathEscape(conversationID) + "/messages/" + strconv.FormatUint(msgID, 10)
	return h.do(ctx, http.MethodDelete, h.adminPath(path), nil, nil)
}

// GroupOp performs a group request for the app server (admin token): as
// user as, or with as empty with the authority of the group's owner (to
// manage members and roles or dissolve it); it returns the Result.
func (h *HTTP) GroupOp(ctx context.Context, groupID, as string, req *clientpb.GroupRequest) (*clientpb.Result, error) {
	path := h.adminPath("/v1/admin/groups/" + url.PathEscape(groupID))
	if as != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "as=" + url.QueryEscape(as)
	}
	res := &clientpb.Result{}
	if err := h.doProto(ctx, http.MethodPost, path, req, res); err != nil {
		return nil, err
	}
	return res, nil
}
