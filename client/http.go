package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/protos/clientpb"
	"actorim/wire"
)

// HTTP calls a node's HTTP API at BaseURL (e.g. http://127.0.0.1:8080).
// A refused call returns an *Error with the protocol code; for 429
// (ERR_RATE_LIMITED) and 503 (ERR_UNAVAILABLE) its RetryAfter is the
// server's Retry-After.
type HTTP struct {
	BaseURL string
	// Token authenticates calls that need it: a user token for history, an
	// admin token (signed with the admin secret) for the admin calls, which
	// go to the node's admin listener when it has one.
	Token  string
	Client *http.Client
	// App is the application (tenant) whose users Register and Login
	// name, and the admin calls about users address; empty: the default
	// app (a deployment without apps has only it).
	App string
}

// credentials is the body of Register and Login.
func (h *HTTP) credentials(userID, password string) map[string]string {
	body := map[string]string{"user_id": userID, "password": password}
	if h.App != "" {
		body["app"] = h.App
	}
	return body
}

// adminPath adds the app query parameter to an admin path about users.
func (h *HTTP) adminPath(path string) string {
	if h.App == "" {
		return path
	}
	return path + "?app=" + url.QueryEscape(h.App)
}

// Token is a token issued by POST /v1/login.
type Token struct {
	UserID    string
	Token     string
	ExpiresAt time.Time
}

// Register creates an account.
func (h *HTTP) Register(ctx context.Context, userID, password string) error {
	return h.do(ctx, http.MethodPost, "/v1/register", h.credentials(userID, password), nil)
}

// Login exchanges a password for a token.
func (h *HTTP) Login(ctx context.Context, userID, password string) (Token, error) {
	var res struct {
		UserID      string `json:"user_id"`
		Token       string `json:"token"`
		ExpiresAtMs int64  `json:"expires_at_ms"`
	}
	if err := h.do(ctx, http.MethodPost, "/v1/login", h.credentials(userID, password), &res); err != nil {
		return Token{}, err
	}
	return Token{UserID: res.UserID, Token: res.Token, ExpiresAt: time.UnixMilli(res.ExpiresAtMs)}, nil
}

// Provision creates a user for an application server (admin token); it
// succeeds when the user exists. An empty password means token login only.
func (h *HTTP) Provision(ctx context.Context, userID, password string) error {
	body := map[string]string{"user_id": userID}
	if password != "" {
		body["password"] = password
	}
	return h.do(ctx, http.MethodPost, h.adminPath("/v1/admin/users"), body, nil)
}

// SendAs sends a message as userID (admin token).
func (h *HTTP) SendAs(ctx context.Context, userID string, s *clientpb.Send) (*clientpb.SendAck, error) {
	ack := &clientpb.SendAck{}
	if err := h.doProto(ctx, http.MethodPost, h.adminPath("/v1/admin/users/"+url.PathEscape(userID)+"/messages"), s, ack); err != nil {
		return nil, err
	}
	return ack, nil
}

// Revocation is the answer of RevokeTokens.
type Revocation struct {
	// RevokedBefore is the revocation in force: tokens issued before it
	// are refused (it never moves back).
	RevokedBefore time.Time
	// Kicked counts the connections closed (Kick with KICK_REASON_REVOKED,
	// then close 4001).
	Kicked int
}

// RevokeTokens revokes userID's tokens issued before before (zero: now) and
// disconnects the devices using them (admin token).
func (h *HTTP) RevokeTokens(ctx context.Context, userID string, before time.Time) (Revocation, error) {
	body := map[string]int64{}
	if !before.IsZero() {
		body["before_ms"] = before.UnixMilli()
	}
	var res struct {
		RevokedBeforeMs int64 `json:"revoked_before_ms"`
		Kicked          int   `json:"kicked"`
	}
	if err := h.do(ctx, http.MethodPost, h.adminPath("/v1/admin/users/"+url.PathEscape(userID)+"/revoke-tokens"), body, &res); err != nil {
		return Revocation{}, err
	}
	return Revocation{RevokedBefore: time.UnixMilli(res.RevokedBeforeMs), Kicked: res.Kicked}, nil
}

// DeleteUser erases userID and their data (admin token; the right to
// erasure): their devices are disconnected, their groups and friends left,
// their records, timeline, sessions and account deleted, and the id freed.
// An unknown user is an *Error with ERR_NOT_FOUND; a call that failed
// midway is finished by calling again.
func (h *HTTP) DeleteUser(ctx context.Context, userID string) error {
	return h.do(ctx, http.MethodDelete, h.adminPath("/v1/admin/users/"+url.PathEscape(userID)), nil, nil)
}

// History pages a conversation of the token's user backwards.
func (h *HTTP) History(ctx context.Context, conversationID string, beforeSeq uint64, limit uint32) (*clientpb.HistoryResult, error) {
	q := url.Values{}
	if beforeSeq > 0 {
		q.Set("before_seq", strconv.FormatUint(beforeSeq, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.FormatUint(uint64(limit), 10))
	}
	path := "/v1/conversations/" + url.PathEscape(conversationID) + "/messages"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	res := &clientpb.HistoryResult{}
	if err := h.doProto(ctx, http.MethodGet, path, nil, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (h *HTTP) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	data, err := h.roundTrip(ctx, method, path, body)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(data, out)
}

func (h *HTTP) doProto(ctx context.Context, method, path string, in, out proto.Message) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = wire.MarshalJSON(in); err != nil {
			return err
		}
	}
	data, err := h.roundTrip(ctx, method, path, body)
	if err != nil {
		return err
	}
	return wire.UnmarshalJSON(data, out)
}

func (h *HTTP) roundTrip(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	hc := h.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		if e := decodeError(resp, data); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("client: %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	return data, nil
}

// decodeError reads a refused response's coded error body: the gateway's
// {"error": {"code": "ERR_...", "message": "..."}}, or the flat
// {"code": 26, "name": "ERR_...", "message": "..."}. It returns nil when the
// body is neither. 429 and 503 say when to retry in seconds (Retry-After).
func decodeError(resp *http.Response, data []byte) *Error {
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Code    json.RawMessage `json:"code"`
		Name    string          `json:"name"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	e := &Error{Status: resp.StatusCode}
	switch {
	case body.Error != nil && body.Error.Code != "":
		e.Code, e.Message = codeNamed(body.Error.Code, 0), body.Error.Message
	case body.Name != "" || len(body.Code) > 0:
		var num int32
		if json.Unmarshal(body.Code, &num) != nil { // the code may be the name too
			var name string
			if json.Unmarshal(body.Code, &name) == nil && body.Name == "" {
				body.Name = name
			}
		}
		e.Code, e.Message = codeNamed(body.Name, num), body.Message
	default:
		return nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// codeNamed is the code called name, or num when this build does not know
// the name (a code newer than its protos).
func codeNamed(name string, num int32) clientpb.ErrorCode {
	if v, ok := clientpb.ErrorCode_value[name]; ok {
		return clientpb.ErrorCode(v)
	}
	return clientpb.ErrorCode(num)
}
