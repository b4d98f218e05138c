package clientpb

import (
	"net/http"
	"testing"
)

// TestHTTPStatusOfEveryCode: every error code has its own entry, a refusal
// of the client's request is a 4xx, and only server faults are a 5xx.
func TestHTTPStatusOfEveryCode(t *testing.T) {
	serverSide := map[ErrorCode]bool{
		ErrorCode_ERR_UNSPECIFIED: true, // nobody sends it on purpose
		ErrorCode_ERR_INTERNAL:    true,
		ErrorCode_ERR_UNAVAILABLE: true,
	}
	for n, name := range ErrorCode_name {
		code := ErrorCode(n)
		t.Run(name, func(t *testing.T) {
			status, ok := httpStatuses[code]
			switch {
			case !ok:
				t.Fatalf("%s has no HTTP status: add it to httpStatuses", name)
			case http.StatusText(status) == "":
				t.Fatalf("%s maps to %d, not an HTTP status", name, status)
			case serverSide[code] && status < 500:
				t.Fatalf("%s is a server fault but maps to %d", name, status)
			case !serverSide[code] && (status < 400 || status >= 500):
				t.Fatalf("%s refuses the client's request but maps to %d (want a 4xx)", name, status)
			}
			if got := HTTPStatus(code); got != status {
				t.Fatalf("HTTPStatus(%s) = %d, table says %d", name, got, status)
			}
		})
	}
	// The media codes are named in the protocol's HTTP table and clients
	// rely on them.
	for code, want := range map[ErrorCode]int{
		ErrorCode_ERR_QUOTA_EXCEEDED:     http.StatusRequestEntityTooLarge,
		ErrorCode_ERR_MEDIA_TYPE_REFUSED: http.StatusUnsupportedMediaType,
		ErrorCode_ERR_PAYLOAD_TOO_LARGE:  http.StatusRequestEntityTooLarge,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%s) = %d, want %d", code, got, want)
		}
	}
	if len(httpStatuses) != len(ErrorCode_name) {
		t.Fatalf("httpStatuses has %d entries for %d codes", len(httpStatuses), len(ErrorCode_name))
	}
}
