package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Name is one entry of a Directory: a user and the name they are found by.
type Name struct {
	User string
	Name string
}

// Directory indexes users by name so that they can be found by a prefix of
// it (user search). Each scope is a namespace of its own (the callers pass
// the application a user belongs to), and no call reads across scopes.
//
// Names are compared as bytes: a caller that wants case-insensitive search
// folds names and prefixes before it passes them. A user has at most one
// name per scope. Scopes and names are 1 to 256 bytes without NUL; users
// are valid ids (see ValidID). Every write is durable when it returns.
type Directory interface {
	// IndexName makes user findable in scope under name, replacing the
	// name it had there; the replacement is atomic (a search sees the old
	// name or the new one, never both or neither).
	IndexName(ctx context.Context, scope, user, name string) error
	// RemoveName makes user unfindable in scope; removing a user without a
	// name is not an error.
	RemoveName(ctx context.Context, scope, user string) error
	// SearchNames returns up to limit entries of scope whose name starts
	// with prefix, ordered by name and then user (byte order), starting
	// after the entry after (its zero value: from the first).
	SearchNames(ctx context.Context, scope, prefix string, after Name, limit int) ([]Name, error)
}

// MaxDirectoryBytes bounds a Directory's scopes and names.
const MaxDirectoryBytes = 256

// CheckDirectory rejects what no Directory accepts: an empty scope; a
// scope or name longer than MaxDirectoryBytes, holding NUL or invalid
// UTF-8; an invalid user id. An empty user or name is not checked (a search
// has no user, a prefix may be empty). Its text starts with "directory";
// backends add their prefix.
func CheckDirectory(scope, user, name string) error {
	if scope == "" {
		return errors.New("directory: empty scope")
	}
	for _, p := range [...]struct{ what, v string }{{"scope", scope}, {"name", name}} {
		if p.v == "" {
			continue
		}
		if len(p.v) > MaxDirectoryBytes || strings.IndexByte(p.v, 0) >= 0 || !utf8.ValidString(p.v) {
			return fmt.Errorf("directory: invalid %s %q", p.what, p.v)
		}
	}
	if user != "" && (!ValidID(user) || strings.IndexByte(user, 0) >= 0) {
		return fmt.Errorf("directory: invalid user %q", user)
	}
	return nil
}

// CheckIndexName is CheckDirectory for IndexName, where every argument is
// required.
func CheckIndexName(scope, user, name string) error {
	if user == "" || name == "" {
		return errors.New("directory: user and name are required")
	}
	return CheckDirectory(scope, user, name)
}

// CheckRemoveName is CheckDirectory for RemoveName, where the user is
// required.
func CheckRemoveName(scope, user string) error {
	if user == "" {
		return errors.New("directory: user is required")
	}
	return CheckDirectory(scope, user, "")
}
