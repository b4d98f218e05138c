package client

import (
	"context"
	"net/http"
	"net/url"

	"actorim/protos/clientpb"
)

// SetProfile changes the user's own profile: only the fields set in sp
// change ("" clears one). It returns the profile as stored.
func (c *Conn) SetProfile(ctx context.Context, sp *clientpb.SetProfile) (*clientpb.Profile, error) {
	r, err := c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_SetProfile{SetProfile: sp}})
	if err != nil {
		return nil, err
	}
	return r.GetProfile(), nil
}

// GetProfiles returns the profiles of up to 100 users, in the order asked,
// without the users who do not exist or blocked the caller.
func (c *Conn) GetProfiles(ctx context.Context, users ...string) ([]*clientpb.Profile, error) {
	r, err := c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_GetProfiles{GetProfiles: &clientpb.GetProfiles{Users: users}}})
	if err != nil {
		return nil, err
	}
	return r.GetProfiles().GetProfiles(), nil
}

// SearchUsers finds users by exact id or nickname prefix (case-insensitive);
// limit 0 is the server's default, cursor "" the first page, and the
// result's NextCursor the next.
func (c *Conn) SearchUsers(ctx context.Context, query string, limit uint32, cursor string) (*clientpb.UserSearchResult, error) {
	r, err := c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_SearchUsers{SearchUsers: &clientpb.SearchUsers{
		Query: query, Limit: limit, Cursor: cursor,
	}}})
	if err != nil {
		return nil, err
	}
	return r.GetSearch(), nil
}

// Profile returns userID's whole profile (admin token).
func (h *HTTP) Profile(ctx context.Context, userID string) (*clientpb.Profile, error) {
	p := &clientpb.Profile{}
	if err := h.doProto(ctx, http.MethodGet, h.adminPath(profilePath(userID)), nil, p); err != nil {
		return nil, err
	}
	return p, nil
}

// SetProfileOf changes userID's profile as SetProfile does (admin token).
func (h *HTTP) SetProfileOf(ctx context.Context, userID string, sp *clientpb.SetProfile) (*clientpb.Profile, error) {
	p := &clientpb.Profile{}
	if err := h.doProto(ctx, http.MethodPut, h.adminPath(profilePath(userID)), sp, p); err != nil {
		return nil, err
	}
	return p, nil
}

func profilePath(userID string) string {
	return "/v1/admin/users/" + url.PathEscape(userID) + "/profile"
}
