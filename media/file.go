package media

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// fileIDLen is the length of a file id: 26 characters [a-z2-7], 130 random bits.
const fileIDLen = 26

// maxName bounds a file's name in bytes.
const maxName = 255

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// newFileID returns a random file id (also the tus upload id).
func newFileID() string {
	b := make([]byte, fileIDLen)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = idAlphabet[b[i]%32]
	}
	return string(b)
}

// validFileID reports whether s can be a file id: 26 characters [a-z0-9]
// (the protocol's rule; this package draws from a subset).
func validFileID(s string) bool {
	if len(s) != fileIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validName reports whether name may name a file: at most 255 bytes of
// UTF-8 without control characters (it ends up in headers and file systems).
func validName(name string) bool {
	if len(name) > maxName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// fileJSON is a file as the API shows it (the answer of uploads and /info).
type fileJSON struct {
	FileID      string     `json:"file_id"`
	Name        string     `json:"name,omitempty"`
	MIMEType    string     `json:"mime_type,omitempty"`
	Size        int64      `json:"size,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	Width       int32      `json:"width,omitempty"`
	Height      int32      `json:"height,omitempty"`
	Thumbnail   *thumbJSON `json:"thumbnail,omitempty"`
	Blurhash    string     `json:"blurhash,omitempty"`
	CreatedAtMs uint64     `json:"created_at_ms,omitempty"`
	QuotaUsed   int64      `json:"quota_used,omitempty"`
	QuotaLimit  int64      `json:"quota_limit,omitempty"`
}

type thumbJSON struct {
	MIMEType string `json:"mime_type"`
	Width    int32  `json:"width"`
	Height   int32  `json:"height"`
	Size     int64  `json:"size"`
}

// fileView returns f as the API shows it to user: the quota only to its owner.
func (s *Service) fileView(ctx context.Context, f persistence.MediaFile, user string) fileJSON {
	v := fileJSON{
		FileID: f.ID, Name: f.Name, MIMEType: f.MIME, Size: f.Size, SHA256: f.SHA256,
		Width: f.Width, Height: f.Height, Blurhash: f.Blurhash, CreatedAtMs: f.CreatedAtMs,
	}
	if f.ThumbBlob != "" {
		v.Thumbnail = &thumbJSON{MIMEType: f.ThumbMIME, Width: f.ThumbWidth, Height: f.ThumbHeight, Size: f.ThumbSize}
	}
	if user == f.Owner {
		v.QuotaLimit = s.cfg.QuotaBytes
		if used, err := s.store.MediaUsage(ctx, user); err == nil {
			v.QuotaUsed = used
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fileIDOf is the file_id of the Media that a message's content holds,
// whichever kind (image, audio, video, file); "" for other contents.
func fileIDOf(m *clientpb.Message) string {
	md, _ := clientpb.MediaOf(m.GetContent())
	return md.GetFileId()
}
