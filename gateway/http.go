package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/proto"

	"actorim/auth"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// Body limits per endpoint, in bytes. A request declaring more is refused
// with 413 before anything is read.
const (
	// maxCredentialsBody: a user id (64), a password (256), JSON around them.
	maxCredentialsBody = 4 << 10
	// maxSendBody: a Send in JSON; content is at most --max-content-bytes
	// (16 KiB by default), which JSON escaping can make a few times larger.
	maxSendBody = 256 << 10
	// maxRevokeBody: {"before_ms": N}.
	maxRevokeBody = 1 << 10
)

// httpTimeout bounds the actor calls of one HTTP request.
const httpTimeout = 10 * time.Second

func (s *Server) routes() {
	pub := http.NewServeMux()
	s.publicRoutes(pub)
	adm := http.NewServeMux()
	s.adminListenerRoutes(adm)

	public := withCORS(s.cfg, pub)
	all := http.NewServeMux()
	all.Handle("/", public)
	s.adminRoutes(all)
	if s.gatherer != nil {
		all.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	s.all, s.public, s.adminMux = s.limitConns(all), s.limitConns(public), adm
}

func (s *Server) adminRoutes(m routeMux) {
	m.HandleFunc("POST /v1/admin/users", s.requireAdmin(s.handleProvision))
	m.HandleFunc("POST /v1/admin/users/{user}/messages", s.requireAdmin(s.handleAdminSend))
	m.HandleFunc("POST /v1/admin/users/{user}/revoke-tokens", s.requireAdmin(s.handleRevokeTokens))
	m.HandleFunc("GET /v1/admin/analytics/{query}", s.requireAdmin(s.handleAnalytics))
	m.HandleFunc("POST /v1/admin/broadcast", s.requireAdmin(s.handleBroadcast))
	s.appRoutes(m)
	s.profileRoutes(m) // profile.go
	s.userRoutes(m)    // users.go
	s.moderationRoutes(m)
	s.eraseRoutes(m) // erase.go
}

func (s *Server) health(m routeMux) {
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

type credentials struct {
	// App is the user's application; empty: the default app.
	App      string `json:"app,omitempty"`
	UserID   string `json:"user_id"`
	Password string `json:"password"`
}

type tokenResponse struct {
	App         string `json:"app,omitempty"`
	UserID      string `json:"user_id"`
	Token       string `json:"token"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

// handleRegister creates an account. The order of the checks puts the
// cheap ones first: the address's rate, the password's length, whether the
// id is taken; only then does it hash (19 MiB, tens of ms).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c, maxCredentialsBody) || !s.allowAddr(w, r) {
		return
	}
	if !validNewAccount(w, c.UserID, c.Password, true) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	app, ok := s.usableApp(w, ctx, c.App)
	if !ok {
		return
	}
	found, ok := s.createAccount(w, ctx, ids.Qualify(app, c.UserID), c.Password, false)
	if !ok {
		return
	}
	if found {
		writeError(w, errUserTaken)
		return
	}
	writeJSON(w, http.StatusCreated, userAnswer(app, c.UserID))
}

// createAccount creates userID's account with password (none if empty)
// unless it exists, which found reports; ifMissing makes losing a race to
// create it no error. It answers the request itself when it fails.
func (s *Server) createAccount(w http.ResponseWriter, ctx context.Context, userID, password string, ifMissing bool) (found, ok bool) {
	found, _, e := s.backend.Account(ctx, userID)
	if e != nil {
		writeError(w, e)
		return false, false
	}
	if found {
		return true, true
	}
	var hash string
	if password != "" {
		if hash, ok = s.hash(w, ctx, password); !ok {
			return false, false
		}
	}
	if e := s.backend.CreateAccount(ctx, userID, hash, ifMissing); e != nil {
		writeError(w, e)
		return false, false
	}
	return false, true
}

// handleLogin exchanges a password for a token. An unknown user costs the
// same hash as a known one (against a dummy), so the answer's timing does
// not tell who exists; an account with too many failures in a row is
// locked for a growing backoff, whoever asks.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c, maxCredentialsBody) || !s.allowAddr(w, r) {
		return
	}
	if !ids.ValidUser(c.UserID) {
		writeError(w, errLoginFailed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	app, ok := s.usableApp(w, ctx, c.App)
	if !ok {
		return
	}
	user := ids.Qualify(app, c.UserID)
	if d := s.logins.locked(user); d > 0 {
		s.metrics.loginRefused.WithLabelValues("account_backoff").Inc()
		writeRetryable(w, errAccountLock, d)
		return
	}
	found, hash, e := s.backend.Account(ctx, user)
	if e != nil {
		writeError(w, e)
		return
	}
	if !found {
		hash = "" // checked against the dummy hash
	}
	ok, err := s.hasher.Check(ctx, c.Password, hash)
	if err != nil {
		s.busy(w)
		return
	}
	s.metrics.hashes.WithLabelValues("check").Inc()
	if !ok || !found {
		s.logins.failed(user)
		writeError(w, errLoginFailed)
		return
	}
	s.logins.succeeded(user)
	if !s.loginAllowed(w, ctx, user) {
		return
	}
	s.writeToken(w, ctx, http.StatusOK, app, c.UserID)
}

// allowAddr applies the per-address rate of register and login; it answers
// 429 itself when the address is over it.
func (s *Server) allowAddr(w http.ResponseWriter, r *http.Request) bool {
	d, ok := s.logins.allowAddr(s.logins.clientAddr(r))
	if !ok {
		s.metrics.loginRefused.WithLabelValues("address_rate").Inc()
		writeRetryable(w, errAddrRate, d)
	}
	return ok
}

// hash hashes a new password within the hashing bounds; it answers 503
// itself when no slot came free in time.
func (s *Server) hash(w http.ResponseWriter, ctx context.Context, password string) (string, bool) {
	hash, err := s.hasher.Hash(ctx, password)
	switch {
	case errors.Is(err, auth.ErrBadPassword):
		writeError(w, errBadPassword)
		return "", false
	case err != nil:
		s.busy(w)
		return "", false
	}
	s.metrics.hashes.WithLabelValues("hash").Inc()
	return hash, true
}

func (s *Server) busy(w http.ResponseWriter) {
	s.metrics.loginRefused.WithLabelValues("busy").Inc()
	writeRetryable(w, errHashingBusy, time.Second)
}

func (s *Server) writeToken(w http.ResponseWriter, ctx context.Context, status int, app, userID string) {
	tok, exp, err := s.tokens.Issue(ctx, app, userID, s.cfg.TokenTTL)
	if err != nil {
		writeError(w, errTokenIssue)
		return
	}
	res := tokenResponse{UserID: userID, Token: tok, ExpiresAtMs: exp.UnixMilli()}
	if app != ids.DefaultApp {
		res.App = app
	}
	writeJSON(w, status, res)
}

// userAnswer is the body naming a user: {"user_id"}, and "app" when it is
// not the default app's (the answers of a deployment without apps are as
// they always were).
func userAnswer(app, userID string) map[string]string {
	m := map[string]string{"user_id": userID}
	if app != ids.DefaultApp {
		m["app"] = app
	}
	return m
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.bearer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := &clientpb.HistoryRequest{ConversationId: r.PathValue("conversation")}
	var err error
	if v := q.Get("before_seq"); v != "" {
		if req.BeforeSeq, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, errBadBeforeSeq)
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			writeError(w, errBadLimit)
			return
		}
		req.Limit = uint32(n)
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	res, e := s.backend.History(ctx, claims.Qualified(), req)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, http.StatusOK, res)
}

type provisionRequest struct {
	UserID   string `json:"user_id"`
	Password string `json:"password,omitempty"`
}

// handleProvision creates a user for an application server, optionally with
// a password; it succeeds when the user already exists.
func (s *Server) handleProvision(w http.ResponseWriter, r *http.Request) {
	var p provisionRequest
	if !readJSON(w, r, &p, maxCredentialsBody) || !validNewAccount(w, p.UserID, p.Password, false) {
		return
	}
	app, ok := s.adminApp(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	if _, ok := s.createAccount(w, ctx, ids.Qualify(app, p.UserID), p.Password, true); ok {
		writeJSON(w, http.StatusOK, userAnswer(app, p.UserID))
	}
}

// handleAdminSend sends a message as the user in the path; the body is a
// Send in the protocol's JSON form.
func (s *Server) handleAdminSend(w http.ResponseWriter, r *http.Request) {
	from, ok := s.adminUser(w, r)
	if !ok {
		return
	}
	send := &clientpb.Send{}
	if !readWireJSON(w, r, send, maxSendBody) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	ack, e := s.backend.Send(ctx, from, "server", send)
	if e != nil {
		writeError(w, e)
		return
	}
	writeProto(w, http.StatusOK, ack)
}

type revokeRequest struct {
	// BeforeMs revokes the tokens issued before this time (Unix ms);
	// 0 or absent: now.
	BeforeMs int64 `json:"before_ms,omitempty"`
}

// handleRevokeTokens revokes the user's tokens issued before a time (now by
// default) and kicks their live connections (POST
// /v1/admin/users/{user}/revoke-tokens, admin token). The body is optional.
func (s *Server) handleRevokeTokens(w http.ResponseWriter, r *http.Request) {
	user, ok := s.adminUser(w, r)
	if !ok {
		return
	}
	var req revokeRequest
	if r.ContentLength != 0 && !readJSON(w, r, &req, maxRevokeBody) {
		return
	}
	before := time.Now()
	if req.BeforeMs != 0 {
		t := time.UnixMilli(req.BeforeMs)
		if req.BeforeMs < 0 || t.After(before) {
			writeError(w, errBadBeforeMs)
			return
		}
		before = t
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	at, kicked, e := s.backend.RevokeTokens(ctx, user, before)
	if e != nil {
		writeError(w, e)
		return
	}
	_, id := ids.Unqualify(user)
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "revoked_before_ms": at.UnixMilli(), "kicked": kicked})
}

// validNewAccount checks a new account's user id and password (an empty
// password is allowed unless required); it answers the request itself when
// they are refused.
func validNewAccount(w http.ResponseWriter, userID, password string, required bool) bool {
	if !ids.ValidUser(userID) {
		writeError(w, errBadUserID)
		return false
	}
	if (password != "" || required) && !auth.ValidPassword(password) {
		writeError(w, errBadPassword)
		return false
	}
	return true
}

// pathUser returns the user id in the request's path; it answers 400
// itself when the id is not valid.
func pathUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	user := r.PathValue("user")
	if !ids.ValidUser(user) {
		writeError(w, errBadPathUser)
		return "", false
	}
	return user, true
}

// bearerToken returns the token of "Authorization: Bearer <token>"; it
// answers 401 itself when there is none.
func bearerToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, errNoBearer)
	}
	return strings.TrimSpace(tok), ok
}

// bearer verifies the request's "Authorization: Bearer <token>", a user
// token that has not been revoked, of a user not disabled.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (auth.Claims, bool) {
	tok, ok := bearerToken(w, r)
	if !ok {
		return auth.Claims{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	c, err := s.tokens.Verify(ctx, tok)
	if err != nil {
		writeError(w, errTokenRefused(err))
		return auth.Claims{}, false
	}
	before, e := s.backend.TokensRevokedBefore(ctx, c.Qualified())
	if e != nil {
		writeError(w, e)
		return auth.Claims{}, false
	}
	if c.Revoked(before) {
		writeError(w, errTokenRevoked)
		return auth.Claims{}, false
	}
	if !s.loginAllowed(w, ctx, c.Qualified()) {
		return auth.Claims{}, false
	}
	return c, true
}

// requireAdmin wraps a handler that requires an admin token: one signed
// with the admin secret and carrying role admin. A valid user token, or
// an admin claim signed with the app-server secret, is 403.
func (s *Server) requireAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(w, r)
		if !ok {
			return
		}
		c, err := s.admin.Verify(tok)
		if err == nil && c.Admin {
			h(w, r)
			return
		}
		if _, uerr := s.tokens.Verify(r.Context(), tok); err == nil || uerr == nil {
			writeError(w, errNotAdmin)
			return
		}
		writeError(w, errTokenRefused(err))
	}
}

// readJSON decodes a JSON body of at most limit bytes into v; it answers
// the request itself (415, 413, 400) when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	body, ok := readBody(w, r, limit)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "body is not the expected JSON: "+err.Error()))
		return false
	}
	return true
}

// readWireJSON reads a body of at most limit bytes (readBody) holding m in
// the protocol's JSON form; it answers the request itself when it does not.
func readWireJSON(w http.ResponseWriter, r *http.Request, m proto.Message, limit int64) bool {
	body, ok := readBody(w, r, limit)
	if !ok {
		return false
	}
	if err := wire.UnmarshalJSON(body, m); err != nil {
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST,
			"body is not a "+string(m.ProtoReflect().Descriptor().Name())+": "+err.Error()))
		return false
	}
	return true
}

// readBody reads a JSON body of at most limit bytes. Other content types
// are 415: a web page can POST text/plain or a form to any origin without
// asking, but not application/json. A body declared over the limit is 413
// before anything is read; one that arrives slower than the server's read
// timeout is cut off by it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeErrorStatus(w, http.StatusUnsupportedMediaType, errContentType)
		return nil, false
	}
	tooLarge := func() {
		writeError(w, clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, "body exceeds "+strconv.FormatInt(limit, 10)+" bytes"))
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		tooLarge()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		tooLarge()
		return nil, false
	case err != nil:
		writeError(w, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "body could not be read: "+err.Error()))
		return nil, false
	}
	return body, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProto(w http.ResponseWriter, status int, m proto.Message) {
	data, err := wire.MarshalJSON(m)
	if err != nil {
		writeError(w, errEncoding)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
