// Package apispec checks HTTP exchanges against the API's OpenAPI description
// (docs/openapi.yaml) with kin-openapi: that the operation is documented, the
// answer's status is one the operation lists, and its headers and body match
// the documented ones. A Recorder collects the verdicts of many exchanges (an
// http.RoundTripper, a reverse proxy) for a report at the end of a test run.
package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// SpecPath is where the description lives, from the module's root.
const SpecPath = "docs/openapi.yaml"

// Errors of Validate, wrapped: the request's path, or its method on that
// path, is not in the description.
var (
	ErrUndocumentedPath   = errors.New("apispec: path not in the spec")
	ErrUndocumentedMethod = errors.New("apispec: method not in the spec for this path")
)

// Spec is a loaded description.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

// Load reads and validates the description at path.
func Load(path string) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("apispec: load %s: %w", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("apispec: %s is not a valid OpenAPI 3 description: %w", path, err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apispec: %s: %w", path, err)
	}
	return &Spec{doc: doc, router: router}, nil
}

// Find returns the path of docs/openapi.yaml in the module that holds the
// working directory (a test's package directory, or the root).
func Find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, SpecPath), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("apispec: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LoadDefault loads the module's docs/openapi.yaml (see Find).
func LoadDefault() (*Spec, error) {
	path, err := Find()
	if err != nil {
		return nil, err
	}
	return Load(path)
}

// Operation is one documented method and path, e.g. "POST /v1/login".
type Operation struct{ Method, Path string }

// String is "METHOD /path".
func (o Operation) String() string { return o.Method + " " + o.Path }

// Operations lists the documented operations, sorted by path then method.
func (s *Spec) Operations() []Operation {
	var ops []Operation
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, Operation{Method: method, Path: path})
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	return ops
}

// Enum returns the values of the enum schema components/schemas/name.
func (s *Spec) Enum(name string) []string {
	ref := s.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return nil
	}
	var out []string
	for _, v := range ref.Value.Enum {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// Exchange is a request and the answer to it.
type Exchange struct {
	Request *http.Request
	// RequestBody is the request's body; with RequestBodyUnknown it was not
	// captured and is not checked.
	RequestBody        []byte
	RequestBodyUnknown bool
	Response           *http.Response
	// ResponseBody is the answer's body; with ResponseBodyUnknown it was not
	// captured (a file's bytes) and only its status and headers are checked.
	ResponseBody        []byte
	ResponseBodyUnknown bool
}

// Validate checks an exchange against the description and returns the
// operation it matched. The answer must have a status the operation lists
// and the headers and body documented for it. The request is checked too
// when the answer is a success (2xx or 101): a request the server accepted
// must be one the description allows; refusals are often answers to requests
// made wrong on purpose. Request bodies are checked when JSON.
func (s *Spec) Validate(x Exchange) (Operation, error) {
	req, res := x.Request, x.Response
	find := req
	if req.URL.RawPath != "" {
		// A path with an escaped '/' in one segment (a bad id sent on
		// purpose, %2F) is matched as the server's mux matches it: by
		// segments of the escaped path.
		find = req.Clone(context.Background())
		find.URL.Path, find.URL.RawPath = req.URL.EscapedPath(), ""
	}
	route, params, err := s.router.FindRoute(find)
	var re *routers.RouteError
	switch {
	case errors.As(err, &re) && re.Reason == routers.ErrMethodNotAllowed.Error():
		return Operation{}, fmt.Errorf("%w: %s %s", ErrUndocumentedMethod, req.Method, req.URL.Path)
	case err != nil:
		return Operation{}, fmt.Errorf("%w: %s %s", ErrUndocumentedPath, req.Method, req.URL.Path)
	}
	for _, v := range params {
		if v == "" { // the router lets {id} match an empty segment: /v1/uploads/ is no upload
			return Operation{}, fmt.Errorf("%w: %s %s", ErrUndocumentedPath, req.Method, req.URL.Path)
		}
	}
	op := Operation{Method: route.Method, Path: route.Path}
	ctx := context.Background()
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    authenticated,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}

	if res.StatusCode/100 == 2 || res.StatusCode == http.StatusSwitchingProtocols {
		rin := *in
		ropts := *opts
		rin.Options = &ropts
		r := req.Clone(ctx)
		if x.RequestBodyUnknown || !isJSON(req.Header.Get("Content-Type")) {
			ropts.ExcludeRequestBody = true
			r.Body = http.NoBody
		} else {
			r.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
		}
		rin.Request = r
		if err := openapi3filter.ValidateRequest(ctx, &rin); err != nil {
			return op, fmt.Errorf("request: %w", err)
		}
	}

	if route.Operation.Responses.Status(res.StatusCode) == nil {
		return op, fmt.Errorf("status %d is not documented for %s", res.StatusCode, op)
	}
	if req.Method == http.MethodHead {
		// kin-openapi checks nothing of a HEAD's answer: its headers here.
		return op, headHeaders(route.Operation.Responses.Status(res.StatusCode).Value, res.Header)
	}
	if res.StatusCode == http.StatusNotModified {
		return op, nil
	}
	body := x.ResponseBody
	if x.ResponseBodyUnknown {
		opts.ExcludeResponseBody = true
		body = nil
	}
	rv := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, rv); err != nil {
		return op, fmt.Errorf("response: %w", err)
	}
	return op, nil
}

// headHeaders checks that the required headers of a HEAD's documented
// answer are there and are integers where documented so.
func headHeaders(r *openapi3.Response, h http.Header) error {
	for name, ref := range r.Headers {
		v := h.Get(name)
		if ref.Value == nil {
			continue
		}
		if v == "" {
			if ref.Value.Required {
				return fmt.Errorf("response: header %s is required", name)
			}
			continue
		}
		if sch := ref.Value.Schema; sch != nil && sch.Value != nil && sch.Value.Type.Is("integer") {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("response: header %s: %q is not an integer", name, v)
			}
		}
	}
	return nil
}

// authenticated satisfies a security requirement when the request carries
// the credential's form (a bearer token, the signed link's query); whether
// it is valid is the server's to say.
func authenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req := in.RequestValidationInput.Request
	switch s := in.SecurityScheme; s.Type {
	case "http":
		if len(req.Header.Get("Authorization")) > len("Bearer ") {
			return nil
		}
		return errors.New("no bearer token")
	case "apiKey":
		if s.In == "query" && req.URL.Query().Has(s.Name) {
			return nil
		}
		return fmt.Errorf("no %s in the %s", s.Name, s.In)
	}
	return fmt.Errorf("security scheme type %q is not checked", in.SecurityScheme.Type)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
