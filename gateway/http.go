package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// maxBodyBytes bounds HTTP request bodies.
const maxBodyBytes = 1 << 20

// httpTimeout bounds the actor calls of one HTTP request.
const httpTimeout = 10 * time.Second

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ws", s.handleWS)
	m.HandleFunc("POST /v1/register", s.handleRegister)
	m.HandleFunc("POST /v1/login", s.handleLogin)
	m.HandleFunc("GET /v1/conversations/{conversation}/messages", s.handleHistory)
	m.HandleFunc("POST /v1/admin/users", s.admin(s.handleProvision))
	m.HandleFunc("POST /v1/admin/users/{user}/messages", s.admin(s.handleAdminSend))
	m.HandleFunc("GET /v1/admin/analytics/{query}", s.admin(s.handleAnalytics))
	m.HandleFunc("POST /v1/admin/broadcast", s.admin(s.handleBroadcast))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if s.gatherer != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	s.mux = m
}

type credentials struct {
	UserID   string `json:"user_id"`
	Password string `json:"password"`
}

type tokenResponse struct {
	UserID      string `json:"user_id"`
	Token       string `json:"token"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c) {
		return
	}
	hash, ok := newAccount(w, c.UserID, c.Password, true)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	if e := s.backend.CreateAccount(ctx, c.UserID, hash, false); e != nil {
		writeClientError(w, e)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": c.UserID})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !readJSON(w, r, &c) {
		return
	}
	refuse := func() {
		writeError(w, http.StatusUnauthorized, clientpb.ErrorCode_ERR_UNAUTHENTICATED, "unknown user or wrong password")
	}
	if !ids.ValidUser(c.UserID) {
		refuse()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	found, hash, e := s.backend.Account(ctx, c.UserID)
	if e != nil {
		writeClientError(w, e)
		return
	}
	if !found || !auth.CheckPassword(c.Password, hash) {
		refuse()
		return
	}
	s.writeToken(w, http.StatusOK, c.UserID)
}

func (s *Server) writeToken(w http.ResponseWriter, status int, userID string) {
	tok, exp, err := s.tokens.IssueFor(userID, false, s.cfg.TokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, clientpb.ErrorCode_ERR_INTERNAL, "token could not be issued")
		return
	}
	writeJSON(w, status, tokenResponse{UserID: userID, Token: tok, ExpiresAtMs: exp.UnixMilli()})
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
			writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "before_seq must be an unsigned integer")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "limit must be an unsigned integer")
			return
		}
		req.Limit = uint32(n)
	}
	res, e := s.backend.History(claims.UserID, req)
	if e != nil {
		writeClientError(w, e)
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
	if !readJSON(w, r, &p) {
		return
	}
	hash, ok := newAccount(w, p.UserID, p.Password, false)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	if e := s.backend.CreateAccount(ctx, p.UserID, hash, true); e != nil {
		writeClientError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": p.UserID})
}

// handleAdminSend sends a message as the user in the path; the body is a
// Send in the protocol's JSON form.
func (s *Server) handleAdminSend(w http.ResponseWriter, r *http.Request) {
	from := r.PathValue("user")
	if !ids.ValidUser(from) {
		writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "bad user id in path")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, "body too large")
		return
	}
	send := &clientpb.Send{}
	if err := wire.UnmarshalJSON(body, send); err != nil {
		writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "body is not a Send: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	ack, e := s.backend.Send(ctx, from, "server", send)
	if e != nil {
		writeClientError(w, e)
		return
	}
	writeProto(w, http.StatusOK, ack)
}

// newAccount validates a new account's user id and hashes its password (an
// empty password is allowed unless required); it answers the request itself
// when they are refused.
func newAccount(w http.ResponseWriter, userID, password string, required bool) (hash string, ok bool) {
	if !ids.ValidUser(userID) {
		writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "user_id must be 1 to 64 characters [A-Za-z0-9_.@-]")
		return "", false
	}
	if password == "" && !required {
		return "", true
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, err.Error())
		return "", false
	}
	return hash, true
}

// bearer verifies the request's "Authorization: Bearer <token>".
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (auth.Claims, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, http.StatusUnauthorized, clientpb.ErrorCode_ERR_UNAUTHENTICATED, "missing bearer token")
		return auth.Claims{}, false
	}
	c, err := s.tokens.Verify(strings.TrimSpace(tok))
	if err != nil {
		writeError(w, http.StatusUnauthorized, clientpb.ErrorCode_ERR_UNAUTHENTICATED, "token refused: "+err.Error())
		return auth.Claims{}, false
	}
	return c, true
}

// admin wraps a handler that requires an admin token.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.bearer(w, r)
		if !ok {
			return
		}
		if !c.Admin {
			writeError(w, http.StatusForbidden, clientpb.ErrorCode_ERR_FORBIDDEN, "admin token required")
			return
		}
		h(w, r)
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, "body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, clientpb.ErrorCode_ERR_BAD_REQUEST, "body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProto(w http.ResponseWriter, status int, m proto.Message) {
	data, err := wire.MarshalJSON(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, clientpb.ErrorCode_ERR_INTERNAL, "encoding failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeError answers {"error": {"code": "ERR_...", "message": "..."}}.
func writeError(w http.ResponseWriter, status int, code clientpb.ErrorCode, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code.String(), "message": msg}})
}

// writeClientError answers a protocol error with its HTTP status (status.go).
func writeClientError(w http.ResponseWriter, e *clientpb.Error) {
	writeError(w, httpStatus(e.GetCode()), e.GetCode(), e.GetMessage())
}
