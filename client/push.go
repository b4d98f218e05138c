package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"actorim/protos/clientpb"
)

// RegisterPush records this device's push token with provider ("apns",
// "fcm" or any name the app server understands), for the app's offline
// push webhook; it replaces the device's earlier registration.
func (c *Conn) RegisterPush(ctx context.Context, provider, token string) error {
	_, err := c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_RegisterPush{RegisterPush: &clientpb.RegisterPush{Provider: provider, Token: token}}})
	return err
}

// UnregisterPush removes this device's push registration (Logout removes
// it too).
func (c *Conn) UnregisterPush(ctx context.Context) error {
	return c.RegisterPush(ctx, "", "")
}

// SetDeviceState reports whether the app is in the background: a
// backgrounded device keeps receiving pushes on this connection and is
// also pushed through the app's webhook as if offline. Every connection
// starts in the foreground.
func (c *Conn) SetDeviceState(ctx context.Context, background bool) error {
	_, err := c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_DeviceState{DeviceState: &clientpb.DeviceState{Background: background}}})
	return err
}

// PushRegistration is a device's push registration, as the admin API
// lists it.
type PushRegistration struct {
	DeviceID       string `json:"device_id"`
	Platform       string `json:"platform,omitempty"`
	Provider       string `json:"provider"`
	Token          string `json:"token"`
	RegisteredAtMs uint64 `json:"registered_at_ms"`
}

// PushRegistrations lists a user's push registrations (admin token).
func (h *HTTP) PushRegistrations(ctx context.Context, userID string) ([]PushRegistration, error) {
	var res struct {
		Devices []PushRegistration `json:"devices"`
	}
	err := h.do(ctx, http.MethodGet, h.adminPath("/v1/admin/users/"+url.PathEscape(userID)+"/push"), nil, &res)
	return res.Devices, err
}

// RemovePushRegistration removes a device's push registration (admin
// token); with a token, only while the device is still registered with it.
// It reports whether one was removed.
func (h *HTTP) RemovePushRegistration(ctx context.Context, userID, deviceID, token string) (bool, error) {
	path := h.adminPath("/v1/admin/users/" + url.PathEscape(userID) + "/push/" + url.PathEscape(deviceID))
	if token != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "token=" + url.QueryEscape(token)
	}
	var res struct {
		Removed bool `json:"removed"`
	}
	err := h.do(ctx, http.MethodDelete, path, nil, &res)
	return res.Removed, err
}
