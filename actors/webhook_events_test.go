package actors

import (
	"testing"

	"actorim/protos/clientpb"
)

// TestHookNames: platforms and roles as the webhook payloads name them.
func TestHookNames(t *testing.T) {
	for p, want := range map[clientpb.Platform]string{
		clientpb.Platform_PLATFORM_UNSPECIFIED: "", clientpb.Platform_PLATFORM_WEB: "web", clientpb.Platform_PLATFORM_IOS: "ios",
		clientpb.Platform_PLATFORM_ANDROID: "android", clientpb.Platform_PLATFORM_DESKTOP: "desktop",
	} {
		if got := platformName(p); got != want {
			t.Errorf("platformName(%v) = %q, want %q", p, got, want)
		}
	}
	for r, want := range map[clientpb.GroupRole]string{
		clientpb.GroupRole_GROUP_ROLE_OWNER: "owner", clientpb.GroupRole_GROUP_ROLE_ADMIN: "admin", clientpb.GroupRole_GROUP_ROLE_MEMBER: "member",
	} {
		if got := roleName(r); got != want {
			t.Errorf("roleName(%v) = %q, want %q", r, got, want)
		}
	}
	for typ, want := range map[clientpb.EventType]string{
		clientpb.EventType_EVENT_FRIEND_REQUEST: "request", clientpb.EventType_EVENT_FRIEND_ADDED: "accepted",
		clientpb.EventType_EVENT_FRIEND_REJECTED: "rejected", clientpb.EventType_EVENT_FRIEND_DELETED: "removed",
	} {
		if got := friendChanges[typ]; got != want {
			t.Errorf("friendChanges[%v] = %q, want %q", typ, got, want)
		}
	}
}
