package gateway

import (
	"net/http"
	"time"

	"actorim/auth"
	"actorim/protos/clientpb"
)

// The coded errors the gateway answers clients with, each defined once. On
// the WebSocket they go out as Error frames (wsConn.writeError adds the
// frame's id and the retry time); over HTTP as {"error": {"code",
// "message"}} with the status of the code (writeError, clientpb.HTTPStatus). An error
// whose message carries data (a limit, a parser's complaint) is built by
// clientError where the data is. These values are shared: never modify one.
var (
	// WebSocket frames.
	errNotLoggedIn = clientError(clientpb.ErrorCode_ERR_NOT_LOGGED_IN, "the first frame must be login")
	errBadDevice   = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "login: device_id must be 1 to 64 characters [A-Za-z0-9_.@:-]")
	errBadPlatform = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "login: platform must be web, ios, android or desktop")
	errRequestRate = clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, "request rate limit exceeded, retry later")
	errSendRate    = clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, "send rate limit exceeded, retry later with the same client_msg_id")

	// A connection beyond MaxConnections, WebSocket or plain HTTP.
	errConnLimit = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "connection limit reached, try another node or later")

	// Tokens and passwords over HTTP.
	errNoBearer     = clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "missing bearer token")
	errTokenRevoked = clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "token revoked: log in again")
	errNotAdmin     = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "admin token required (signed with the admin secret, not the app-server secret)")
	errLoginFailed  = clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "unknown user or wrong password")
	errAddrRate     = clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, "too many register or login requests from this address, retry later")
	errAccountLock  = clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, "too many failed logins for this account, retry later")
	errHashingBusy  = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "too many logins at once, retry shortly")
	errTokenIssue   = clientError(clientpb.ErrorCode_ERR_INTERNAL, "token could not be issued")

	// HTTP requests.
	errContentType  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "Content-Type must be application/json") // answered 415
	errBadUserID    = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "user_id must be 1 to 64 characters [A-Za-z0-9_.@-]")
	errBadPassword  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, auth.ErrBadPassword.Error())
	errUserTaken    = clientError(clientpb.ErrorCode_ERR_CONFLICT, "user id already registered")
	errBadPathUser  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "bad user id in path")
	errBadBeforeSeq = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "before_seq must be an unsigned integer")
	errBadLimit     = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "limit must be an unsigned integer")
	errBadBeforeMs  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "before_ms must be a past time in Unix milliseconds")
	errNoContent    = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "content is required")
	errNoBroadcast  = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "broadcast is not available") // answered 501
	errNoArchive    = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "no message archive configured (--clickhouse)")
	errBadTopLimit  = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "limit must be 1 to 10000")
	errEncoding     = clientError(clientpb.ErrorCode_ERR_INTERNAL, "encoding failed")
)

// clientError returns a coded error for a client.
func clientError(code clientpb.ErrorCode, msg string) *clientpb.Error {
	return &clientpb.Error{Code: code, Message: msg}
}

// errTokenRefused answers a token that does not verify, at WebSocket login
// and over HTTP.
func errTokenRefused(err error) *clientpb.Error {
	return clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "token refused: "+err.Error())
}

// writeError answers {"error": {"code": "ERR_...", "message": "..."}} with
// the HTTP status of the code.
func writeError(w http.ResponseWriter, e *clientpb.Error) {
	writeErrorStatus(w, clientpb.HTTPStatus(e.GetCode()), e)
}

// writeErrorStatus answers e with a status other than its code's: 415 for a
// JSON endpoint sent another Content-Type (ERR_BAD_REQUEST), and 501.
func writeErrorStatus(w http.ResponseWriter, status int, e *clientpb.Error) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": e.GetCode().String(), "message": e.GetMessage()}})
}

// writeRetryable answers e with a Retry-After header: a 429 or 503 the
// client may retry after d.
func writeRetryable(w http.ResponseWriter, e *clientpb.Error, d time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(d))
	writeError(w, e)
}
