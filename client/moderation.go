package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// DeleteMessage removes a message of a conversation for everyone
// (moderation; admin token): the participants' devices get EVENT_RECALLED
// with actor "#moderator", and reads show it recalled. The conversation is
// one of h.App's.
func (h *HTTP) DeleteMessage(ctx context.Context, conversationID string, msgID uint64) error {
	path := "/v1/admin/conversations/" + url.PathEscape(conversationID) + "/messages/" + strconv.FormatUint(msgID, 10)
	return h.do(ctx, http.MethodDelete, h.adminPath(path), nil, nil)
}
