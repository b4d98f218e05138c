package media

// The finishing step, shared by simple and tus uploads: a complete file on
// this node's disk becomes a stored file. In order: sniff the type from its
// first bytes and refuse a denied one; hash it (unless hashed on the way
// in); for an image, read its dimensions from the header and refuse one
// over the pixel limit before decoding anything, then decode it (a slot of
// the decode semaphore), make the thumbnail and blurhash; store content and
// thumbnail under their hashes (written only when missing); write the
// record; bring the quota charge to the real size.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registers GIF with image.DecodeConfig and image.Decode
	"image/jpeg"
	_ "image/png" // registers PNG
	"io"
	"os"
	"strings"

	"github.com/buckket/go-blurhash"
	"github.com/disintegration/imaging"
	"github.com/gabriel-vasile/mimetype"
	_ "golang.org/x/image/webp" // registers WebP

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// sniffBytes is how much of a file's start the type is sniffed from.
const sniffBytes = 3072

// thumbQuality is the JPEG quality of thumbnails.
const thumbQuality = 80

// Blurhash: 4x3 components from a 32x32 downscale.
const (
	blurX, blurY = 4, 3
	blurSize     = 32
)

// thumbnailed are the image types that get dimensions, a thumbnail and a
// blurhash; other images (svg, bmp, tiff, heic) are stored as they are.
var thumbnailed = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// received is a complete upload on this node's disk.
type received struct {
	id, owner, name string
	path            string
	size            int64
	sha             string // hex SHA-256, or "" when not hashed on the way in
	charged         int64  // what the owner's quota was charged for it
}

// finish stores u as a file and returns its record. On a refusal or
// failure nothing of it is left in the stores, but its charge is the
// caller's to release (and its bytes on disk the caller's to remove).
func (s *Service) finish(ctx context.Context, u received) (persistence.MediaFile, *clientpb.Error) {
	f, err := os.Open(u.path)
	if err != nil {
		s.log.Error("media: open upload", "id", u.id, "err", err)
		return persistence.MediaFile{}, errInternal
	}
	defer f.Close()
	if u.size > s.cfg.MaxBytes {
		return persistence.MediaFile{}, tooLarge(s.cfg.MaxBytes)
	}

	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return persistence.MediaFile{}, errInternal
	}
	mt := mimetype.Detect(head[:n])
	if !s.typeAllowed(mt) {
		return persistence.MediaFile{}, clientError(clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED, "files of type "+baseType(mt.String())+" are not accepted")
	}
	if u.sha == "" {
		if u.sha, err = hashFile(f); err != nil {
			return persistence.MediaFile{}, errInternal
		}
	}
	rec := persistence.MediaFile{
		ID: u.id, Owner: u.owner, SHA256: u.sha, Size: u.size, MIME: mt.String(), Name: u.name,
		CreatedAtMs: uint64(s.cfg.Now().UnixMilli()),
	}

	var thumb []byte
	if thumbnailed[baseType(rec.MIME)] {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return persistence.MediaFile{}, errInternal
		}
		var e *clientpb.Error
		if thumb, e = s.thumbnail(ctx, f, &rec); e != nil {
			return persistence.MediaFile{}, e
		}
	}

	var e *clientpb.Error
	if rec.Blob, e = s.putBlob(ctx, rec.SHA256, rec.Size, rec.MIME, u.path, nil); e != nil {
		return persistence.MediaFile{}, e
	}
	if thumb != nil {
		sum := sha256.Sum256(thumb)
		rec.ThumbSHA256 = hex.EncodeToString(sum[:])
		if rec.ThumbBlob, e = s.putBlob(ctx, rec.ThumbSHA256, int64(len(thumb)), rec.ThumbMIME, "", thumb); e != nil {
			s.releaseBlobs(ctx, rec.SHA256)
			return persistence.MediaFile{}, e
		}
	}
	if err := s.store.PutMediaFile(ctx, rec); err != nil {
		s.log.Warn("media: store file record", "id", rec.ID, "err", err)
		s.releaseBlobs(ctx, rec.SHA256, rec.ThumbSHA256)
		return persistence.MediaFile{}, errUnavailable
	}
	if d := rec.Size - u.charged; d < 0 {
		// A body without Content-Length was charged ahead of its bytes.
		// A failure leaves the owner over-charged, never under.
		if _, err := s.store.ChargeMedia(ctx, rec.Owner, d, s.cfg.QuotaBytes); err != nil {
			s.log.Warn("media: adjust charge", "id", rec.ID, "delta", d, "err", err)
		}
	}
	return rec, nil
}

// thumbnail reads an image's dimensions, refuses one over MaxPixels, then
// decodes it and sets rec's dimensions, thumbnail fields and blurhash. It
// returns the thumbnail's JPEG bytes (a few tens of KiB), or none when the
// image does not decode (it is then stored as a plain file).
func (s *Service) thumbnail(ctx context.Context, f *os.File, rec *persistence.MediaFile) ([]byte, *clientpb.Error) {
	cfg, _, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return nil, nil
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > s.cfg.MaxPixels {
		return nil, clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE,
			fmt.Sprintf("image of %dx%d pixels exceeds the limit of %d pixels", cfg.Width, cfg.Height, s.cfg.MaxPixels))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, errInternal
	}
	select {
	case s.decode <- struct{}{}:
	case <-ctx.Done():
		return nil, errBusy
	}
	defer func() { <-s.decode }()

	s.metrics.decoded.Inc()
	img, err := imaging.Decode(bufio.NewReader(f), imaging.AutoOrientation(true))
	if err != nil {
		rec.Width, rec.Height = int32(cfg.Width), int32(cfg.Height)
		return nil, nil
	}
	b := img.Bounds()
	rec.Width, rec.Height = int32(b.Dx()), int32(b.Dy())
	t := imaging.Fit(img, s.cfg.ThumbSize, s.cfg.ThumbSize, imaging.CatmullRom)
	if !t.Opaque() {
		// JPEG has no alpha: lay transparent images on white, not black.
		t = imaging.Overlay(imaging.New(t.Rect.Dx(), t.Rect.Dy(), color.White), t, image.Point{}, 1)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, t, &jpeg.Options{Quality: thumbQuality}); err != nil {
		return nil, errInternal
	}
	rec.Blurhash, err = blurhash.Encode(blurX, blurY, imaging.Resize(t, blurSize, blurSize, imaging.Box))
	if err != nil {
		rec.Blurhash = ""
	}
	rec.ThumbMIME, rec.ThumbSize = "image/jpeg", int64(buf.Len())
	rec.ThumbWidth, rec.ThumbHeight = int32(t.Rect.Dx()), int32(t.Rect.Dy())
	return buf.Bytes(), nil
}

// putBlob takes a reference to the content sha and writes its object under
// the key the store gives unless an object of that size is there already:
// from the file at path (PutFile when the store offers it), or from data.
func (s *Service) putBlob(ctx context.Context, sha string, size int64, contentType, path string, data []byte) (string, *clientpb.Error) {
	key, err := s.store.AcquireBlob(ctx, sha)
	if err != nil {
		s.log.Warn("media: acquire blob", "sha256", sha, "err", err)
		return "", errUnavailable
	}
	info, err := s.objects.Stat(ctx, key)
	switch {
	case err == nil && info.Size == size:
		return key, nil // stored once, by an earlier upload of the same bytes
	case err != nil && !errors.Is(err, persistence.ErrObjectNotFound):
		s.log.Warn("media: stat object", "key", key, "err", err)
		s.releaseBlobs(ctx, sha)
		return "", errUnavailable
	}
	if err := s.writeObject(ctx, key, size, contentType, path, data); err != nil {
		s.log.Warn("media: write object", "key", key, "err", err)
		s.releaseBlobs(ctx, sha)
		return "", errUnavailable
	}
	return key, nil
}

func (s *Service) writeObject(ctx context.Context, key string, size int64, contentType, path string, data []byte) error {
	if path == "" {
		return s.objects.Put(ctx, key, bytes.NewReader(data), size, contentType)
	}
	if fs, ok := s.objects.(fileStorer); ok {
		return fs.PutFile(ctx, key, path, contentType)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.objects.Put(ctx, key, f, size, contentType)
}

// releaseBlobs drops a reference to each content ("" skipped) and deletes
// the object of any whose last reference that was. Failures are logged: a
// reference left behind keeps an object alive, it never loses one.
func (s *Service) releaseBlobs(ctx context.Context, shas ...string) {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	for _, sha := range shas {
		if sha == "" {
			continue
		}
		key, err := s.store.ReleaseBlob(ctx, sha)
		if err != nil {
			s.log.Warn("media: release blob", "sha256", sha, "err", err)
			continue
		}
		if key != "" {
			if err := s.objects.Delete(ctx, key); err != nil {
				s.log.Warn("media: delete object", "key", key, "err", err)
			}
		}
	}
}

// charge charges owner's quota n bytes for an upload.
func (s *Service) charge(ctx context.Context, owner string, n int64) *clientpb.Error {
	_, err := s.store.ChargeMedia(ctx, owner, n, s.cfg.QuotaBytes)
	switch {
	case errors.Is(err, persistence.ErrQuotaExceeded):
		return errQuotaExceeded
	case err != nil:
		s.log.Warn("media: charge quota", "owner", owner, "err", err)
		return errUnavailable
	}
	return nil
}

// uncharge gives n bytes back to owner's quota.
func (s *Service) uncharge(ctx context.Context, owner string, n int64) {
	if n <= 0 {
		return
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := s.store.ChargeMedia(ctx, owner, -n, s.cfg.QuotaBytes); err != nil {
		s.log.Warn("media: release quota", "owner", owner, "bytes", n, "err", err)
	}
}

// typeAllowed applies AllowedTypes and DeniedTypes to a sniffed type and
// the types it is a kind of (application/x-executable is an
// application/x-elf); the root of every binary, application/octet-stream,
// counts only for a file sniffed as nothing more precise.
func (s *Service) typeAllowed(mt *mimetype.MIME) bool {
	matches := func(patterns []string) bool {
		for m := mt; m != nil; m = m.Parent() {
			if m.Parent() == nil && m != mt {
				break
			}
			for _, p := range patterns {
				if typeMatches(m, p) {
					return true
				}
			}
		}
		return false
	}
	if len(s.cfg.AllowedTypes) > 0 && !matches(s.cfg.AllowedTypes) {
		return false
	}
	return !matches(s.cfg.DeniedTypes)
}

// typeMatches matches a sniffed type (or an alias of it) against
// "type/subtype" or "type/*".
func typeMatches(m *mimetype.MIME, pattern string) bool {
	if major, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(baseType(m.String()), major+"/")
	}
	return m.Is(pattern)
}

// baseType is a MIME type without its parameters.
func baseType(t string) string {
	t, _, _ = strings.Cut(t, ";")
	return strings.TrimSpace(strings.ToLower(t))
}

func hashFile(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func tooLarge(limit int64) *clientpb.Error {
	return clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, fmt.Sprintf("file exceeds the limit of %d bytes", limit))
}
