package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// The admin calls about an app's users (the HTTP's App, empty: the default
// app), each with an admin token.

// User is a user as the admin API lists them.
type User struct {
	UserID   string `json:"user_id"`
	Nickname string `json:"nickname,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// UserPage is a page of users; Next, when not empty, is the after of the
// next page.
type UserPage struct {
	Users []User `json:"users"`
	Next  string `json:"next,omitempty"`
}

// Users lists the app's users with ids after after ("" the first page), in
// byte order; limit is 1 to 1000, 0 the server's default (100).
func (h *HTTP) Users(ctx context.Context, after string, limit int) (UserPage, error) {
	return h.users(ctx, url.Values{}, after, limit)
}

// SearchUsers finds the app's users by exact id or nickname prefix
// (case-insensitive), whoever they blocked; after is the previous page's
// Next ("" the first page), limit as for Users.
func (h *HTTP) SearchUsers(ctx context.Context, query, after string, limit int) (UserPage, error) {
	return h.users(ctx, url.Values{"q": {query}}, after, limit)
}

func (h *HTTP) users(ctx context.Context, q url.Values, after string, limit int) (UserPage, error) {
	var page UserPage
	err := h.do(ctx, http.MethodGet, h.pagePath("/v1/admin/users", q, after, limit), nil, &page)
	return page, err
}

// pagePath is path with the query of a listing: q, the app, after and
// limit.
func (h *HTTP) pagePath(path string, q url.Values, after string, limit int) string {
	if h.App != "" {
		q.Set("app", h.App)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}

// Group is a group as the admin API lists them.
type Group struct {
	GroupID   string `json:"group_id"`
	Name      string `json:"name,omitempty"`
	Owner     string `json:"owner,omitempty"`
	Members   int    `json:"members"`
	Dissolved bool   `json:"dissolved,omitempty"`
}

// GroupPage is a page of groups; Next, when not empty, is the after of the
// next page.
type GroupPage struct {
	Groups []Group `json:"groups"`
	Next   string  `json:"next,omitempty"`
}

// Groups lists the app's groups with ids after after ("" the first page),
// in byte order; limit is 1 to 1000, 0 the server's default (100).
func (h *HTTP) Groups(ctx context.Context, after string, limit int) (GroupPage, error) {
	var page GroupPage
	err := h.do(ctx, http.MethodGet, h.pagePath("/v1/admin/groups", url.Values{}, after, limit), nil, &page)
	return page, err
}

// DisableUser disables userID: their logins are refused until EnableUser,
// and their connections are closed (Kick with KICK_REASON_DISABLED, then
// close 4001). It returns how many were.
func (h *HTTP) DisableUser(ctx context.Context, userID string) (kicked int, err error) {
	return h.kickCall(ctx, userID, "/disable", nil)
}

// EnableUser lets a disabled user log in again.
func (h *HTTP) EnableUser(ctx context.Context, userID string) error {
	_, err := h.kickCall(ctx, userID, "/enable", nil)
	return err
}

// Kick closes the connection of userID's device deviceID, or of all their
// devices when deviceID is "" (Kick with KICK_REASON_ADMIN, then close
// 4003); they may log in again. It returns how many were closed.
func (h *HTTP) Kick(ctx context.Context, userID, deviceID string) (kicked int, err error) {
	var body any
	if deviceID != "" {
		body = map[string]string{"device_id": deviceID}
	}
	return h.kickCall(ctx, userID, "/kick", body)
}

func (h *HTTP) kickCall(ctx context.Context, userID, suffix string, in any) (int, error) {
	var res struct {
		Kicked int `json:"kicked"`
	}
	err := h.do(ctx, http.MethodPost, h.adminPath("/v1/admin/users/"+url.PathEscape(userID)+suffix), in, &res)
	return res.Kicked, err
}
