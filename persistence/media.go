package persistence

import (
	"context"
	"errors"
)

// Errors of the Media contract.
var (
	// ErrQuotaExceeded reports a ChargeMedia that would take an owner's
	// usage above its limit; nothing was charged.
	ErrQuotaExceeded = errors.New("persistence: media quota exceeded")
	// ErrMediaSent reports a DeleteUnsentMedia of a file already marked sent.
	ErrMediaSent = errors.New("persistence: media file was sent")
)

// MediaFile is the record of one uploaded file. Its bytes are an object
// (see Objects) shared by every file of the same content.
type MediaFile struct {
	// ID names the file in the protocol (Media.file_id): 26 characters [a-z0-9].
	ID string
	// Owner is the user who uploaded it.
	Owner string
	// SHA256 is the hex SHA-256 of the content; Blob the object key it is
	// stored under (from AcquireBlob).
	SHA256 string
	Blob   string
	// Size in bytes, MIME type sniffed from the bytes, and the name the
	// uploader gave (may be empty).
	Size int64
	MIME string
	Name string
	// Width and Height of an image, in pixels; 0 for other types.
	Width  int32
	Height int32
	// The thumbnail of an image (empty Thumb* when it has none): its
	// content's SHA-256 and object key (also from AcquireBlob), size, MIME
	// type and dimensions.
	ThumbSHA256 string
	ThumbBlob   string
	ThumbSize   int64
	ThumbMIME   string
	ThumbWidth  int32
	ThumbHeight int32
	// Blurhash is a placeholder string to paint before the thumbnail arrives.
	Blurhash string
	// CreatedAtMs is when the upload finished; SentAtMs when a message first
	// carried it (0: never, and garbage after the configured time).
	CreatedAtMs uint64
	SentAtMs    uint64
}

// Media keeps the records of uploaded files, the reference counts of the
// objects that hold their bytes, and each owner's usage. Every method is
// atomic on its own, so several nodes may upload, send and collect garbage
// at once.
//
// Objects are keyed by content and reference-counted in generations: the
// key of a content hash changes every time its count falls to zero, so an
// upload that acquires a reference after the last release writes a new
// object instead of trusting one that is being deleted.
type Media interface {
	// AcquireBlob adds a reference to the content with hex SHA-256 sha and
	// returns the object key that holds, or must now be written to hold, it.
	AcquireBlob(ctx context.Context, sha string) (key string, err error)
	// ReleaseBlob drops a reference to sha's content. When that was the last
	// one it returns the key to delete (and the next AcquireBlob of sha
	// returns a different key); otherwise "". Releasing a content without
	// references is an error.
	ReleaseBlob(ctx context.Context, sha string) (deleteKey string, err error)
	// ChargeMedia adds delta (may be negative) to owner's usage in bytes and
	// returns the new usage. A positive delta that would take the usage
	// above limit fails with ErrQuotaExceeded and changes nothing; usage
	// never goes below 0.
	ChargeMedia(ctx context.Context, owner string, delta, limit int64) (used int64, err error)
	// MediaUsage returns owner's usage in bytes (0 for an owner never charged).
	MediaUsage(ctx context.Context, owner string) (int64, error)
	// PutMediaFile stores a new record; ErrExists if the id is taken.
	PutMediaFile(ctx context.Context, f MediaFile) error
	// GetMediaFile returns a record, or ErrNotFound.
	GetMediaFile(ctx context.Context, id string) (MediaFile, error)
	// MarkMediaSent sets SentAtMs to atMs if it is 0 (a later mark keeps the
	// first); ErrNotFound if the record is gone.
	MarkMediaSent(ctx context.Context, id string, atMs uint64) error
	// UnsentMedia returns up to limit records never marked sent whose
	// CreatedAtMs is below beforeMs, in no particular order.
	UnsentMedia(ctx context.Context, beforeMs uint64, limit int) ([]MediaFile, error)
	// DeleteUnsentMedia removes a record that was never marked sent and
	// returns it; ErrMediaSent (record kept) if it was, ErrNotFound if it
	// is gone. Of concurrent calls for one id, exactly one succeeds.
	DeleteUnsentMedia(ctx context.Context, id string) (MediaFile, error)
}

// ValidSHA256 reports whether sha is a hex SHA-256 as encoding/hex writes it
// (64 lowercase hex digits), the form the Media contract takes.
func ValidSHA256(sha string) bool {
	if len(sha) != 64 {
		return false
	}
	for _, c := range []byte(sha) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidFileID reports whether id can name a media file in a store: 1 to 128
// bytes of [A-Za-z0-9_-]. The ids the media service gives out are 26
// characters of [a-z0-9].
func ValidFileID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
