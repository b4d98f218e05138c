package gateway

import (
	"context"
	"net/http"
	"testing"

	"actorim/protos/clientpb"
)

// eraseBackend is a fakeBackend that also erases users.
type eraseBackend struct{ *fakeBackend }

func (b eraseBackend) DeleteUser(_ context.Context, userID string) *clientpb.Error {
	if e := b.failing(); e != nil {
		return e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.accounts[userID]; !ok {
		return clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such user: "+userID)
	}
	delete(b.accounts, userID)
	return nil
}

func TestDeleteUserHTTP(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, testConfig(), eraseBackend{newFakeBackend()})
	admin := h.adminToken(t)
	var reg map[string]string
	decode(t, h.post(t, "/v1/register", "", `{"user_id": "bob", "password": "bob-pw-1"}`), http.StatusCreated, &reg)
	var tok tokenResponse
	decode(t, h.post(t, "/v1/login", "", `{"user_id": "bob", "password": "bob-pw-1"}`), http.StatusOK, &tok)

	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"user token", tok.Token, http.StatusForbidden},
	} {
		resp := h.request(t, http.MethodDelete, "/v1/admin/users/bob", tc.token, "", "", false)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	var got map[string]any
	decode(t, h.request(t, http.MethodDelete, "/v1/admin/users/bob", admin, "", "", false), http.StatusOK, &got)
	if got["user_id"] != "bob" || got["deleted"] != true {
		t.Fatalf("delete: %v", got)
	}
	decode(t, h.request(t, http.MethodDelete, "/v1/admin/users/bob", admin, "", "", false), http.StatusNotFound, &got)
	resp := h.post(t, "/v1/login", "", `{"user_id": "bob", "password": "bob-pw-1"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login after deletion: status %d, want 401", resp.StatusCode)
	}
}

func TestDeleteUserUnsupported(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig())
	var got map[string]any
	decode(t, h.request(t, http.MethodDelete, "/v1/admin/users/bob", h.adminToken(t), "", "", false), http.StatusNotImplemented, &got)
}
