package clientpb

import "net/http"

// httpStatuses is the HTTP status of every protocol error code. A refusal
// of the client's request is a 4xx; a 5xx means the server could not
// serve it (a fault, or a dependency that did not answer in time).
// TestHTTPStatusOfEveryCode fails when a new code is missing here.
var httpStatuses = map[ErrorCode]int{
	ErrorCode_ERR_UNSPECIFIED:          http.StatusInternalServerError,
	ErrorCode_ERR_BAD_FRAME:            http.StatusBadRequest,
	ErrorCode_ERR_FRAME_TOO_LARGE:      http.StatusRequestEntityTooLarge,
	ErrorCode_ERR_UNAUTHENTICATED:      http.StatusUnauthorized,
	ErrorCode_ERR_NOT_LOGGED_IN:        http.StatusUnauthorized,
	ErrorCode_ERR_ALREADY_LOGGED_IN:    http.StatusConflict,
	ErrorCode_ERR_BAD_REQUEST:          http.StatusBadRequest,
	ErrorCode_ERR_UNKNOWN_RECIPIENT:    http.StatusNotFound,
	ErrorCode_ERR_PAYLOAD_TOO_LARGE:    http.StatusRequestEntityTooLarge,
	ErrorCode_ERR_RATE_LIMITED:         http.StatusTooManyRequests,
	ErrorCode_ERR_FORBIDDEN:            http.StatusForbidden,
	ErrorCode_ERR_NOT_FOUND:            http.StatusNotFound,
	ErrorCode_ERR_UNAVAILABLE:          http.StatusServiceUnavailable,
	ErrorCode_ERR_INTERNAL:             http.StatusInternalServerError,
	ErrorCode_ERR_UNSUPPORTED:          http.StatusBadRequest,
	ErrorCode_ERR_CONFLICT:             http.StatusConflict,
	ErrorCode_ERR_NOT_MEMBER:           http.StatusForbidden,
	ErrorCode_ERR_MUTED:                http.StatusForbidden,
	ErrorCode_ERR_BLOCKED:              http.StatusForbidden,
	ErrorCode_ERR_NOT_FRIEND:           http.StatusForbidden,
	ErrorCode_ERR_GROUP_DISSOLVED:      http.StatusGone,
	ErrorCode_ERR_GROUP_FULL:           http.StatusConflict,
	ErrorCode_ERR_RECALL_EXPIRED:       http.StatusConflict,
	ErrorCode_ERR_BANNED:               http.StatusForbidden,
	ErrorCode_ERR_CLIENT_MSG_ID_REUSED: http.StatusConflict,
	ErrorCode_ERR_LIMIT_EXCEEDED:       http.StatusConflict,
	ErrorCode_ERR_QUOTA_EXCEEDED:       http.StatusRequestEntityTooLarge,
	ErrorCode_ERR_MEDIA_TYPE_REFUSED:   http.StatusUnsupportedMediaType,
}

// HTTPStatus returns the HTTP status that answers an error code over HTTP
// (the gateway's API and the media API); 500 for a code the table does not
// know (which its test prevents).
func HTTPStatus(code ErrorCode) int {
	if s, ok := httpStatuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
