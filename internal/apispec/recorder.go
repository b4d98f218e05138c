package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// maxCapture bounds the bodies a Recorder reads to check: JSON and text
// answers are far smaller; files are not read.
const maxCapture = 1 << 20

// Recorder validates every exchange that passes through its Transport or
// Proxy and keeps the verdicts for Report. Its methods are safe for
// concurrent use.
type Recorder struct {
	spec *Spec
	// Exempt are path prefixes not described by the spec (e.g.
	// /debug/pprof/); their exchanges are counted, not checked.
	Exempt []string

	mu        sync.Mutex
	validated int
	exempt    int
	probes    int // undocumented path or method, answered 404, 405 or a redirect
	ops       map[Operation]int
	failures  []Failure
}

// Failure is an exchange the spec does not allow.
type Failure struct {
	Method, Path string
	Status       int
	Err          error
}

// String is "METHOD /path -> status: error", one line of the report.
func (f Failure) String() string {
	return fmt.Sprintf("%s %s -> %d: %v", f.Method, f.Path, f.Status, f.Err)
}

// NewRecorder returns a Recorder over spec.
func NewRecorder(spec *Spec) *Recorder {
	return &Recorder{spec: spec, ops: map[Operation]int{}}
}

// Record validates one exchange and keeps the verdict. A request for a path
// or method the spec does not have is no failure when the server refused it
// as unknown too (404, 405, or a redirect to the slash-terminated path).
func (r *Recorder) Record(x Exchange) {
	path := x.Request.URL.Path
	for _, p := range r.Exempt {
		if strings.HasPrefix(path, p) {
			r.mu.Lock()
			r.exempt++
			r.mu.Unlock()
			return
		}
	}
	op, err := r.spec.Validate(x)
	status := x.Response.StatusCode
	r.mu.Lock()
	defer r.mu.Unlock()
	if (errors.Is(err, ErrUndocumentedPath) || errors.Is(err, ErrUndocumentedMethod)) &&
		(status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusMovedPermanently) {
		r.probes++
		return
	}
	r.validated++
	if op.Path != "" {
		r.ops[op]++
	}
	if err != nil {
		r.failures = append(r.failures, Failure{Method: x.Request.Method, Path: path, Status: status, Err: err})
	}
}

// Failures returns the exchanges that failed so far.
func (r *Recorder) Failures() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Failure(nil), r.failures...)
}

// Summary tells how many answers were checked, how many distinct operations
// they covered, and which documented operations none exercised.
func (r *Recorder) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "openapi: %d responses validated (%d failed), %d distinct operations of %d documented; %d answers to undocumented paths (404/405), %d exempt\n",
		r.validated, len(r.failures), len(r.ops), len(r.spec.Operations()), r.probes, r.exempt)
	var seen []string
	for op, n := range r.ops {
		seen = append(seen, fmt.Sprintf("  %6d  %s", n, op))
	}
	sort.Strings(seen)
	b.WriteString(strings.Join(seen, "\n"))
	var missing []string
	for _, op := range r.spec.Operations() {
		if r.ops[op] == 0 {
			missing = append(missing, op.String())
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\n  not exercised: %s", strings.Join(missing, ", "))
	}
	return b.String()
}

// Transport returns a RoundTripper that sends through base (nil:
// http.DefaultTransport) and records every exchange. A JSON or text answer
// is read whole and handed on from memory; others (files, 101) are checked
// without their bodies.
func (r *Recorder) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{r: r, base: base}
}

type roundTripper struct {
	r    *Recorder
	base http.RoundTripper
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	x := Exchange{Request: req}
	x.RequestBody, x.RequestBodyUnknown = requestBody(req)
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if err := captureResponse(&x, res); err != nil {
		return nil, err
	}
	t.r.Record(x)
	return res, nil
}

// requestBody returns a copy of a small request's body, read through
// GetBody so that the request's own is left for the transport.
func requestBody(req *http.Request) ([]byte, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, false
	}
	if req.GetBody == nil || req.ContentLength < 0 || req.ContentLength > maxCapture {
		return nil, true
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil, true
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, err != nil
}

// captureResponse reads a textual answer's body into x and puts it back
// into res; it leaves other bodies alone.
func captureResponse(x *Exchange, res *http.Response) error {
	x.Response = res
	if !textual(res) {
		x.ResponseBodyUnknown = true
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxCapture+1))
	if err != nil {
		_ = res.Body.Close()
		return err
	}
	if len(b) > maxCapture {
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), res.Body), res.Body}
		x.ResponseBodyUnknown = true
		return nil
	}
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	x.ResponseBody = b
	return nil
}

// textual reports whether an answer's body is JSON or text, which the
// checks read; a 206 is a range of a file whatever its type.
func textual(res *http.Response) bool {
	if res.StatusCode == http.StatusSwitchingProtocols || res.StatusCode == http.StatusPartialContent || res.Body == nil {
		return false
	}
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil {
		return res.Header.Get("Content-Type") == ""
	}
	return mt == "application/json" || strings.HasPrefix(mt, "text/")
}

// RecordResponse records an answer whose Request is set: a WebSocket
// handshake's (client.Options.OnHandshake, gorilla's Dialer), or one read
// with http.ReadResponse off a connection written by hand. Nil is ignored.
func (r *Recorder) RecordResponse(res *http.Response) {
	if res == nil || res.Request == nil {
		return
	}
	// gorilla/websocket sets its headers under non-canonical keys
	// ("Sec-WebSocket-Key"), which Header.Get does not find.
	req := res.Request.Clone(res.Request.Context())
	req.Header = http.Header{}
	for k, v := range res.Request.Header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	x := Exchange{Request: req}
	if captureResponse(&x, res) == nil {
		r.Record(x)
	}
}

// Proxy returns a reverse proxy to target that records every exchange
// (WebSocket upgrades included: their 101 is checked, then the proxy
// relays the socket).
func (r *Recorder) Proxy(target *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(res *http.Response) error {
		x := Exchange{Request: res.Request}
		// The outgoing request's body is spent by now; the incoming one's
		// was buffered below when small.
		if b, ok := res.Request.Context().Value(bodyKey{}).([]byte); ok {
			x.RequestBody = b
		} else {
			x.RequestBodyUnknown = res.Request.ContentLength != 0
		}
		if err := captureResponse(&x, res); err != nil {
			return err
		}
		r.Record(x)
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength > 0 && req.ContentLength <= maxCapture {
			b, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(b))
			req = req.WithContext(contextWithBody(req, b))
		}
		p.ServeHTTP(w, req)
	})
}

type bodyKey struct{}

// contextWithBody carries a proxied request's buffered body to
// ModifyResponse.
func contextWithBody(req *http.Request, b []byte) context.Context {
	return context.WithValue(req.Context(), bodyKey{}, b)
}
