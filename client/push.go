package client

import (
	"context"

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
