package client

import (
	"net/http"
	"testing"
	"time"

	"actorim/protos/clientpb"
)

// TestDecodeError: both coded error bodies become *Error with the code,
// message, status and Retry-After; a code newer than this build's protos
// keeps its number; any other body is not a coded error.
func TestDecodeError(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       *Error
	}{
		{"gateway", `{"error": {"code": "ERR_FORBIDDEN", "message": "not yours"}}`,
			&Error{Code: clientpb.ErrorCode_ERR_FORBIDDEN, Message: "not yours", Status: 429, RetryAfter: 3 * time.Second}},
		{"flat", `{"code": 8, "name": "ERR_PAYLOAD_TOO_LARGE", "message": "over 100 MiB"}`,
			&Error{Code: clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, Message: "over 100 MiB", Status: 429, RetryAfter: 3 * time.Second}},
		{"flat-newer-code", `{"code": 99, "name": "ERR_FROM_THE_FUTURE", "message": "m"}`,
			&Error{Code: 99, Message: "m", Status: 429, RetryAfter: 3 * time.Second}},
		{"flat-name-as-code", `{"code": "ERR_NOT_FOUND", "message": "m"}`,
			&Error{Code: clientpb.ErrorCode_ERR_NOT_FOUND, Message: "m", Status: 429, RetryAfter: 3 * time.Second}},
		{"text", "ERR_UPLOAD_NOT_FOUND: upload not found\n", nil},
		{"other-json", `{"detail": "x"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"3"}}}
			got := decodeError(resp, []byte(tc.body))
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
