package media

import (
	"encoding/json"
	"net/http"

	tusd "github.com/tus/tusd/v2/pkg/handler"

	"actorim/protos/clientpb"
)

// The coded errors of the media API, each defined once. Errors that carry
// data (a limit, a type) are built where the data is, with clientError.
// These values are shared: never modify one.
var (
	errNoUser        = clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "missing bearer token")
	errNoFile        = clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such file")
	errNoUpload      = clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such upload")
	errNoThumb       = clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "this file has no thumbnail")
	errNeedMsg       = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "not your file: name a message of yours that carries it (?msg=<message id>)")
	errMsgNotYours   = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "no such message in your timeline")
	errMsgRecalled   = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "the message was recalled")
	errMsgOtherFile  = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "the message does not carry this file")
	errLinkExpired   = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "link expired")
	errLinkBad       = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "link signature does not verify")
	errBadMsgID      = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "msg must be a message id (an unsigned integer)")
	errBadName       = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "name must be at most 255 bytes of UTF-8 without control characters")
	errNoLength      = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "Upload-Length is required (deferred length is not supported)")
	errContentType   = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "Content-Type must be application/json") // answered 415
	errBadLinkBody   = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, `body must be {"msg": <message id>} or empty`)
	errIncomplete    = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "the body could not be read to its end")
	errUnavailable   = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "media store unavailable, retry")
	errBusy          = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "request ended while waiting to process the image, retry")
	errInternal      = clientError(clientpb.ErrorCode_ERR_INTERNAL, "the upload could not be processed")
	errQuotaExceeded = clientError(clientpb.ErrorCode_ERR_QUOTA_EXCEEDED, "media quota exceeded: delete or send fewer files, or wait for unsent ones to expire")
)

// clientError returns a coded error for a client.
func clientError(code clientpb.ErrorCode, msg string) *clientpb.Error {
	return &clientpb.Error{Code: code, Message: msg}
}

// errorBody is the gateway's JSON error body (gateway.writeError):
// {"error": {"code": "ERR_...", "message": "..."}}.
func errorBody(e *clientpb.Error) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": e.GetCode().String(), "message": e.GetMessage()}})
	return append(b, '\n')
}

// writeError answers e with the HTTP status of its code.
func writeError(w http.ResponseWriter, e *clientpb.Error) {
	writeErrorStatus(w, clientpb.HTTPStatus(e.GetCode()), e)
}

// writeErrorStatus answers e with a status other than its code's (415 for
// a JSON body of another type, as the gateway does).
func writeErrorStatus(w http.ResponseWriter, status int, e *clientpb.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(e))
}

// tusError turns e into the error a tusd hook returns, so that tusd answers
// it with the same status and body as writeError.
func tusError(e *clientpb.Error) tusd.Error {
	return tusd.Error{
		ErrorCode: e.GetCode().String(),
		Message:   e.GetMessage(),
		HTTPResponse: tusd.HTTPResponse{
			StatusCode: clientpb.HTTPStatus(e.GetCode()),
			Body:       string(errorBody(e)),
			Header:     tusd.HTTPHeader{"Content-Type": "application/json"},
		},
	}
}

// transient reports whether e is the server's failure rather than a
// refusal of what the client sent.
func transient(e *clientpb.Error) bool {
	c := e.GetCode()
	return c == clientpb.ErrorCode_ERR_UNAVAILABLE || c == clientpb.ErrorCode_ERR_INTERNAL
}
