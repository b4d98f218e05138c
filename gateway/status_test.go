package gateway

import (
	"net/http"
	"testing"

	"actorim/protos/clientpb"
)

// TestHTTPStatusOfEveryCode: every error code has its own entry, a refusal
// of the client's request is a 4xx, and only server faults are a 5xx.
func TestHTTPStatusOfEveryCode(t *testing.T) {
	serverSide := map[clientpb.ErrorCode]bool{
		clientpb.ErrorCode_ERR_UNSPECIFIED: true, // nobody sends it on purpose
		clientpb.ErrorCode_ERR_INTERNAL:    true,
		clientpb.ErrorCode_ERR_UNAVAILABLE: true,
	}
	for n, name := range clientpb.ErrorCode_name {
		code := clientpb.ErrorCode(n)
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
			if got := httpStatus(code); got != status {
				t.Fatalf("httpStatus(%s) = %d, table says %d", name, got, status)
			}
		})
	}
	// The media codes are named in the protocol's HTTP table and clients
	// rely on them.
	for code, want := range map[clientpb.ErrorCode]int{
		clientpb.ErrorCode_ERR_QUOTA_EXCEEDED:     http.StatusRequestEntityTooLarge,
		clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED: http.StatusUnsupportedMediaType,
		clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE:  http.StatusRequestEntityTooLarge,
	} {
		if got := httpStatus(code); got != want {
			t.Errorf("httpStatus(%s) = %d, want %d", code, got, want)
		}
	}
	if len(httpStatuses) != len(clientpb.ErrorCode_name) {
		t.Fatalf("httpStatuses has %d entries for %d codes", len(httpStatuses), len(clientpb.ErrorCode_name))
	}
}
