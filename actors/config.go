package actors

import (
	"fmt"
	"time"
)

// Config tunes the actors. Zero values are the defaults.
type Config struct {
	// DevicePolicy is the multi-device policy. Default multi.
	DevicePolicy DevicePolicy
	// MaxContentBytes bounds a message's content (text, emoji or custom JSON).
	// Default 16 KiB.
	MaxContentBytes int
	// PushRetryMin is the first resend delay of an unacknowledged push; it
	// doubles up to PushRetryMax. Defaults 2s and 30s.
	PushRetryMin, PushRetryMax time.Duration
	// PushWindow bounds a device's unacknowledged entries. Default 512.
	PushWindow int
	// PushPage bounds the entries in one Push frame. Default 100.
	PushPage int
	// GrainIdle passivates a user grain with no device after this long
	// without messages. Default 2m.
	GrainIdle time.Duration
	// StoreTimeout bounds one store call. Default 5s.
	StoreTimeout time.Duration
	// Deliveries, when set, learns of every acknowledged push (see
	// DeliveryObserver).
	Deliveries DeliveryObserver
	// MaxGroupMembers bounds a group's size. Default 2,000.
	MaxGroupMembers int
	// RecallWindow is how long after sending a message may be recalled.
	// Default 2m.
	RecallWindow time.Duration
	// WriteBudget and WriteBurst bound what one connection's sends may make
	// the store write, in bytes per second: each stored message costs its
	// content plus 256 bytes, once per timeline it lands in, so a group
	// message costs its fan-out. A connection whose budget is spent gets
	// ERR_RATE_LIMITED for its sends until it recovers. Defaults 2 MiB/s
	// and 32 MiB.
	WriteBudget int
	WriteBurst  int
	// MaxUsersPerRequest bounds the users one group create, invite, kick or
	// ban names (ERR_LIMIT_EXCEEDED beyond). Default 500.
	MaxUsersPerRequest int
	// MaxGroupBans bounds a group's ban list. Default 1,000.
	MaxGroupBans int
	// MaxPendingFriendRequests bounds a user's pending friend requests in
	// each direction, received and sent (ERR_LIMIT_EXCEEDED beyond).
	// Default 100.
	MaxPendingFriendRequests int
	// FriendRequestCooldown is how long after a rejection the requester may
	// not ask the same user again (ERR_RATE_LIMITED). Default 24h.
	FriendRequestCooldown time.Duration
}

func (c *Config) setDefaults() {
	if c.DevicePolicy == "" {
		c.DevicePolicy = PolicyMulti
	}
	if c.MaxContentBytes <= 0 {
		c.MaxContentBytes = 16 << 10
	}
	if c.PushRetryMin <= 0 {
		c.PushRetryMin = 2 * time.Second
	}
	if c.PushRetryMax <= 0 {
		c.PushRetryMax = 30 * time.Second
	}
	c.PushRetryMax = max(c.PushRetryMax, c.PushRetryMin)
	if c.PushWindow <= 0 {
		c.PushWindow = 512
	}
	if c.PushPage <= 0 {
		c.PushPage = 100
	}
	if c.GrainIdle <= 0 {
		c.GrainIdle = 2 * time.Minute
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.MaxGroupMembers <= 0 {
		c.MaxGroupMembers = 2000
	}
	if c.RecallWindow <= 0 {
		c.RecallWindow = 2 * time.Minute
	}
	if c.WriteBudget <= 0 {
		c.WriteBudget = 2 << 20
	}
	if c.WriteBurst <= 0 {
		c.WriteBurst = 32 << 20
	}
	if c.MaxUsersPerRequest <= 0 {
		c.MaxUsersPerRequest = 500
	}
	if c.MaxGroupBans <= 0 {
		c.MaxGroupBans = 1000
	}
	if c.MaxPendingFriendRequests <= 0 {
		c.MaxPendingFriendRequests = 100
	}
	if c.FriendRequestCooldown <= 0 {
		c.FriendRequestCooldown = 24 * time.Hour
	}
}

// DevicePolicy decides which devices of one user may be online together.
type DevicePolicy string

// The multi-device policies.
const (
	// PolicyMulti admits any number of devices (the default).
	PolicyMulti DevicePolicy = "multi"
	// PolicyPerPlatform admits one device per platform: a new login kicks the
	// older device of the same platform.
	PolicyPerPlatform DevicePolicy = "per-platform"
	// PolicySingle admits one device in all.
	PolicySingle DevicePolicy = "single"
)

// ParseDevicePolicy validates a policy name.
func ParseDevicePolicy(s string) (DevicePolicy, error) {
	switch p := DevicePolicy(s); p {
	case PolicyMulti, PolicyPerPlatform, PolicySingle:
		return p, nil
	case "":
		return PolicyMulti, nil
	}
	return "", fmt.Errorf("actors: unknown device policy %q (want multi, per-platform or single)", s)
}
