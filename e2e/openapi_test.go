package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"

	"actorim/client"
	"actorim/internal/apispec"
)

// specCheck validates every HTTP answer the suite sees against
// docs/openapi.yaml: through http.DefaultClient (which the Go client uses
// unless given another), the clients the tests build (specTransport), the
// WebSocket handshakes of the client (specDial), and imctl's calls (through
// specProxy). TestMain fails the run when any answer is not as documented.
var specCheck *apispec.Recorder

// startSpecCheck loads the spec and installs the validating transport on
// http.DefaultClient.
func startSpecCheck() error {
	spec, err := apispec.LoadDefault()
	if err != nil {
		return err
	}
	specCheck = apispec.NewRecorder(spec)
	specCheck.Exempt = []string{"/debug/pprof/"} // Go's profiler, not the API
	http.DefaultClient.Transport = specCheck.Transport(http.DefaultTransport)
	return nil
}

// reportSpecCheck prints the answers that were not as documented, and with
// E2E_OPENAPI_VERBOSE=1 a summary; it reports whether all were.
func reportSpecCheck() bool {
	failures := specCheck.Failures()
	if len(failures) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d HTTP answers not as docs/openapi.yaml says:\n", len(failures))
		for _, f := range failures {
			fmt.Fprintf(os.Stderr, "  %s\n", f)
		}
	}
	if len(failures) > 0 || os.Getenv("E2E_OPENAPI_VERBOSE") == "1" {
		fmt.Fprintln(os.Stderr, specCheck.Summary())
	}
	return len(failures) == 0
}

// specTransport wraps a test's own transport in the check.
func specTransport(base http.RoundTripper) http.RoundTripper { return specCheck.Transport(base) }

// specDial adds the handshake check to a client's options.
func specDial(o client.Options) client.Options {
	o.OnHandshake = specCheck.RecordResponse
	return o
}

var (
	proxyOnce sync.Once
	proxyURL  string
)

// specProxy returns the URL of a validating reverse proxy to the shared
// node, for the imctl processes (which build their own HTTP clients).
func specProxy(t *testing.T) string {
	t.Helper()
	proxyOnce.Do(func() {
		target, err := url.Parse(shared.http)
		if err != nil {
			panic(err)
		}
		// Closed when the test binary exits.
		proxyURL = httptest.NewServer(specCheck.Proxy(target)).URL
	})
	return proxyURL
}
