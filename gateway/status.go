package gateway

import (
	"net/http"

	"actorim/protos/clientpb"
)

// httpStatuses is the HTTP status of every protocol error code. A refusal
// of the client's request is a 4xx; a 5xx means the server could not
// serve it (a fault, or a dependency that did not answer in time).
// TestHTTPStatusOfEveryCode fails when a new code is missing here.
var httpStatuses = map[clientpb.ErrorCode]int{
	clientpb.ErrorCode_ERR_UNSPECIFIED:          http.StatusInternalServerError,
	clientpb.ErrorCode_ERR_BAD_FRAME:            http.StatusBadRequest,
	clientpb.ErrorCode_ERR_FRAME_TOO_LARGE:      http.StatusRequestEntityTooLarge,
	clientpb.ErrorCode_ERR_UNAUTHENTICATED:      http.StatusUnauthorized,
	clientpb.ErrorCode_ERR_NOT_LOGGED_IN:        http.StatusUnauthorized,
	clientpb.ErrorCode_ERR_ALREADY_LOGGED_IN:    http.StatusConflict,
	clientpb.ErrorCode_ERR_BAD_REQUEST:          http.StatusBadRequest,
	clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT:    http.StatusNotFound,
	clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE:    http.StatusRequestEntityTooLarge,
	clientpb.ErrorCode_ERR_RATE_LIMITED:         http.StatusTooManyRequests,
	clientpb.ErrorCode_ERR_FORBIDDEN:            http.StatusForbidden,
	clientpb.ErrorCode_ERR_NOT_FOUND:            http.StatusNotFound,
	clientpb.ErrorCode_ERR_UNAVAILABLE:          http.StatusServiceUnavailable,
	clientpb.ErrorCode_ERR_INTERNAL:             http.StatusInternalServerError,
	clientpb.ErrorCode_ERR_UNSUPPORTED:          http.StatusBadRequest,
	clientpb.ErrorCode_ERR_CONFLICT:             http.StatusConflict,
	clientpb.ErrorCode_ERR_NOT_MEMBER:           http.StatusForbidden,
	clientpb.ErrorCode_ERR_MUTED:                http.StatusForbidden,
	clientpb.ErrorCode_ERR_BLOCKED:              http.StatusForbidden,
	clientpb.ErrorCode_ERR_NOT_FRIEND:           http.StatusForbidden,
	clientpb.ErrorCode_ERR_GROUP_DISSOLVED:      http.StatusGone,
	clientpb.ErrorCode_ERR_GROUP_FULL:           http.StatusConflict,
	clientpb.ErrorCode_ERR_RECALL_EXPIRED:       http.StatusConflict,
	clientpb.ErrorCode_ERR_BANNED:               http.StatusForbidden,
	clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED: http.StatusConflict,
	clientpb.ErrorCode_ERR_LIMIT_EXCEEDED:       http.StatusConflict,
	clientpb.ErrorCode_ERR_QUOTA_EXCEEDED:       http.StatusRequestEntityTooLarge,
	clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED:   http.StatusUnsupportedMediaType,
}

// httpStatus returns the HTTP status of an error code; 500 for a code the
// table does not know (which its test prevents).
func httpStatus(code clientpb.ErrorCode) int {
	if s, ok := httpStatuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
