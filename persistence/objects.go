package persistence

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrObjectNotFound reports a missing object in an object store.
var ErrObjectNotFound = errors.New("persistence: object not found")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Key is the object's key: a path of [A-Za-z0-9._-] segments joined by '/'.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ContentType is what Put was given.
	ContentType string
	// ModTime is when the object was written.
	ModTime time.Time
}

// Object is an open object: readable from any offset (http.ServeContent
// serves Range requests from it) without the store reading it whole.
type Object interface {
	io.ReadSeekCloser
	Info() ObjectInfo
}

// Objects stores the bytes of uploaded media: the local filesystem under the
// data directory (persistence/objects/fs) or an S3-compatible service
// (persistence/objects/s3), one suite (persistence/objects/objtest) for both.
//
// Objects are written once and never modified: Put of an existing key
// replaces it whole, and a reader sees either the old or the new object,
// never a mix or a partial one. Memory does not grow with an object's size:
// both directions stream.
type Objects interface {
	// Put stores size bytes read from r under key. It fails, storing
	// nothing, if r yields fewer or more than size bytes or ctx ends.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object, or an error wrapping ErrObjectNotFound.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the object's info, or an error wrapping ErrObjectNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}
