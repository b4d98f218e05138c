// Package ids validates the identifiers of the protocol (users, devices, client
// message ids) and builds and parses conversation ids.
package ids

import (
	"errors"
	"strings"
)

// Limits on identifier lengths.
const (
	MaxUserID      = 64
	MaxDeviceID    = 64
	MaxClientMsgID = 64
)

// ErrBadConversation reports a conversation id that is not "p:<a>:<b>",
// "g:<group>" or "s:<channel>".
var ErrBadConversation = errors.New("ids: malformed conversation id")

// ValidUser reports whether s is a well-formed user (or group) id: 1 to 64
// characters of [A-Za-z0-9_.@-].
func ValidUser(s string) bool {
	return validChars(s, MaxUserID, false)
}

// ValidDevice reports whether s is a well-formed device id: 1 to 64 characters
// of [A-Za-z0-9_.@:-].
func ValidDevice(s string) bool {
	return validChars(s, MaxDeviceID, true)
}

// ValidClientMsgID reports whether s is an acceptable client message id: 1 to
// 64 printable ASCII characters other than '/'.
func ValidClientMsgID(s string) bool {
	if len(s) == 0 || len(s) > MaxClientMsgID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

func validChars(s string, max int, colon bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '@', c == '-':
		case c == ':' && colon:
		default:
			return false
		}
	}
	return true
}

// Private returns the conversation id of the private chat between two users:
// "p:" and the two ids in byte order, so both sides compute the same id.
func Private(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "p:" + a + ":" + b
}

// Group returns the conversation id of a group.
func Group(groupID string) string { return "g:" + groupID }

// System returns the conversation id of a server broadcast channel.
func System(channel string) string { return "s:" + channel }

// Conversation is a parsed conversation id.
type Conversation struct {
	// Group is the group id of a group conversation, empty for a private one.
	Group string
	// System is the channel of a server broadcast conversation ("s:<channel>").
	System string
	// A and B are the two users of a private conversation, in byte order.
	A, B string
}

// Parse splits a conversation id into its parts.
func Parse(id string) (Conversation, error) {
	switch {
	case strings.HasPrefix(id, "p:"):
		a, b, ok := strings.Cut(id[2:], ":")
		if !ok || !ValidUser(a) || !ValidUser(b) || a > b {
			return Conversation{}, ErrBadConversation
		}
		return Conversation{A: a, B: b}, nil
	case strings.HasPrefix(id, "g:"):
		if !ValidUser(id[2:]) {
			return Conversation{}, ErrBadConversation
		}
		return Conversation{Group: id[2:]}, nil
	case strings.HasPrefix(id, "s:"):
		if !ValidUser(id[2:]) {
			return Conversation{}, ErrBadConversation
		}
		return Conversation{System: id[2:]}, nil
	}
	return Conversation{}, ErrBadConversation
}

// Has reports whether user takes part in the private conversation c.
func (c Conversation) Has(user string) bool {
	return c.Group == "" && c.System == "" && (c.A == user || c.B == user)
}

// DefaultApp is the id of the application every user belongs to when a
// deployment has no others, and of every token without an "app" claim.
// Its users' ids are stored unqualified, as before apps existed.
const DefaultApp = "default"

// MaxAppID bounds an application id's length.
const MaxAppID = 32

// ValidApp reports whether s is a well-formed application id: 1 to 32
// characters of [a-z0-9_-], starting with a letter or digit.
func ValidApp(s string) bool {
	if len(s) == 0 || len(s) > MaxAppID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Qualify returns the id under which user of app is known inside the
// server: its grain identity and the key of everything stored for it. A
// user of the default app keeps its id; any other is "<app>:<user>". No
// user id holds ':', so no qualified id is ever a default app's user id,
// and no two apps share one.
func Qualify(app, user string) string {
	if app == "" || app == DefaultApp {
		return user
	}
	return app + ":" + user
}

// Unqualify splits a qualified id (see Qualify) into its app and the id
// its app's clients know.
func Unqualify(q string) (app, user string) {
	if a, u, ok := strings.Cut(q, ":"); ok && ValidApp(a) && !strings.HasPrefix(q, "#") {
		return a, u
	}
	return DefaultApp, q
}
