package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"actorim/persistence"
)

// Media keys (persistence.Media), beside those in keys.go:
//
//	b/<sha>                 -> references, generation: 8 + 8 bytes big-endian
//	q/<owner>               -> usage in bytes, 8 bytes big-endian (absent: 0)
//	u/<file id>             -> the file's record (see encodeMediaFile)
//	n/<createdAtMs><id>     -> empty: the unsent index; <createdAtMs> is 8
//	                           bytes big-endian, so the index is in upload
//	                           order and UnsentMedia reads only its head
//
// A content's b/ record stays when its count falls to zero, keeping the
// next generation: the object of the old one may still be being deleted.
//
// Every method is one synced Pebble batch, written while holding the lock of
// the one record it decides on (see mediaLocks): a file's record and its
// index entry are written together under the file's lock, since the entry's
// key follows from the record. Media writes are rare next to appends and go
// straight to Pebble, like state writes, not through the committer.

var _ persistence.Media = (*Store)(nil)

// mediaLocks serialise the read-modify-write of each media record. Records
// share a lock by hash; each method takes exactly one, so none can deadlock.
// Reads of one record take its lock too: Pebble shows a batch before its
// fsync returns, and the lock keeps a reader from acting on a write that a
// crash could still undo.
type mediaLocks [64]sync.Mutex

// lock locks key's mutex and returns its unlock.
func (l *mediaLocks) lock(key []byte) func() {
	h := uint32(2166136261) // FNV-1a
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	m := &l[h%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

func blobRefKey(sha string) []byte  { return append([]byte("b/"), sha...) }
func usageKey(owner string) []byte  { return append([]byte("q/"), owner...) }
func mediaFileKey(id string) []byte { return append([]byte("u/"), id...) }
func blobObjectKey(sha string, gen uint64) string {
	return "b/" + sha + "." + strconv.FormatUint(gen, 10)
}

var unsentLower = []byte("n/")

func unsentKey(createdAtMs uint64, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte("n/"), createdAtMs)
	return append(k, id...)
}

// mediaUpdate runs f, inside the gate and holding key's lock, on key's
// current value (nil when absent), then commits with an fsync whatever f
// put in the batch.
func (s *Store) mediaUpdate(ctx context.Context, key []byte, f func(b *pebble.Batch, v []byte) error) error {
	if err := s.gate.Enter(ctx); err != nil {
		return err
	}
	defer s.gate.Leave()
	defer s.media.lock(key)()
	v, err := s.getCopy(key)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := f(b, v); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.Sync)
}

// admitted returns the error the gate gives a call with ctx now, for calls
// that answer without reading (an id no record can have). A non-empty what
// prefixes it like the method's other errors.
func (s *Store) admitted(ctx context.Context, what string) error {
	if err := s.gate.Enter(ctx); err != nil {
		if what != "" {
			return fmt.Errorf("embedded: %s: %w", what, err)
		}
		return err
	}
	s.gate.Leave()
	return nil
}

// mediaRead returns key's value (nil when absent), inside the gate and
// holding key's lock.
func (s *Store) mediaRead(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.gate.Leave()
	defer s.media.lock(key)()
	return s.getCopy(key)
}

// getCopy returns a copy of key's value, nil when it is absent.
func (s *Store) getCopy(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(v)+1), v...) // non-nil even when empty
	return out, closer.Close()
}

// blobRefs decodes a b/ record; absent means no references, generation 0.
func blobRefs(v []byte) (refs, gen uint64, err error) {
	if v == nil {
		return 0, 0, nil
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("corrupt blob record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

func setBlobRefs(b *pebble.Batch, key []byte, refs, gen uint64) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), refs)
	return b.Set(key, binary.BigEndian.AppendUint64(v, gen), nil)
}

// AcquireBlob implements persistence.Media. Object keys are
// "b/<sha>.<generation>".
func (s *Store) AcquireBlob(ctx context.Context, sha string) (string, error) {
	if !persistence.ValidSHA256(sha) {
		return "", fmt.Errorf("embedded: acquire blob: invalid sha %q", sha)
	}
	var key string
	err := s.mediaUpdate(ctx, blobRefKey(sha), func(b *pebble.Batch, v []byte) error {
		refs, gen, err := blobRefs(v)
		if err != nil {
			return err
		}
		key = blobObjectKey(sha, gen)
		return setBlobRefs(b, blobRefKey(sha), refs+1, gen)
	})
	if err != nil {
		return "", fmt.Errorf("embedded: acquire blob %s: %w", sha, err)
	}
	return key, nil
}

// ReleaseBlob implements persistence.Media. Releasing a content without
// references fails with an error wrapping persistence.ErrNotFound.
func (s *Store) ReleaseBlob(ctx context.Context, sha string) (string, error) {
	if !persistence.ValidSHA256(sha) {
		return "", fmt.Errorf("embedded: release blob: invalid sha %q", sha)
	}
	var del string
	err := s.mediaUpdate(ctx, blobRefKey(sha), func(b *pebble.Batch, v []byte) error {
		refs, gen, err := blobRefs(v)
		if err != nil {
			return err
		}
		if refs == 0 {
			return fmt.Errorf("no references: %w", persistence.ErrNotFound)
		}
		if refs == 1 {
			del = blobObjectKey(sha, gen)
			gen++
		}
		return setBlobRefs(b, blobRefKey(sha), refs-1, gen)
	})
	if err != nil {
		return "", fmt.Errorf("embedded: release blob %s: %w", sha, err)
	}
	return del, nil
}

func decodeUsage(v []byte) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt usage record of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// ChargeMedia implements persistence.Media. With ErrQuotaExceeded it
// returns the unchanged usage.
func (s *Store) ChargeMedia(ctx context.Context, owner string, delta, limit int64) (int64, error) {
	if !persistence.ValidID(owner) {
		return 0, fmt.Errorf("embedded: charge media: invalid owner %q", owner)
	}
	key := usageKey(owner)
	var used int64
	err := s.mediaUpdate(ctx, key, func(b *pebble.Batch, v []byte) error {
		var err error
		if used, err = decodeUsage(v); err != nil {
			return err
		}
		// Written so that nothing overflows: used >= 0 and, past the first
		// test, limit-used >= 0.
		if delta > 0 && (used > limit || delta > limit-used) {
			return persistence.ErrQuotaExceeded
		}
		used = max(used+delta, 0)
		if used == 0 {
			return b.Delete(key, nil)
		}
		return b.Set(key, binary.BigEndian.AppendUint64(nil, uint64(used)), nil)
	})
	if err != nil {
		return used, fmt.Errorf("embedded: charge media of %q: %w", owner, err)
	}
	return used, nil
}

// MediaUsage implements persistence.Media.
func (s *Store) MediaUsage(ctx context.Context, owner string) (int64, error) {
	if !persistence.ValidID(owner) {
		return 0, s.admitted(ctx, "media usage")
	}
	v, err := s.mediaRead(ctx, usageKey(owner))
	if err == nil {
		var used int64
		if used, err = decodeUsage(v); err == nil {
			return used, nil
		}
	}
	return 0, fmt.Errorf("embedded: media usage of %q: %w", owner, err)
}

// PutMediaFile implements persistence.Media.
func (s *Store) PutMediaFile(ctx context.Context, f persistence.MediaFile) error {
	if !persistence.ValidFileID(f.ID) {
		return fmt.Errorf("embedded: put media file: invalid id %q", f.ID)
	}
	if !persistence.ValidID(f.Owner) {
		return fmt.Errorf("embedded: put media file %s: invalid owner %q", f.ID, f.Owner)
	}
	key := mediaFileKey(f.ID)
	err := s.mediaUpdate(ctx, key, func(b *pebble.Batch, v []byte) error {
		if v != nil {
			return persistence.ErrExists
		}
		if err := b.Set(key, encodeMediaFile(f), nil); err != nil {
			return err
		}
		if f.SentAtMs != 0 {
			return nil
		}
		return b.Set(unsentKey(f.CreatedAtMs, f.ID), nil, nil)
	})
	if err != nil {
		return fmt.Errorf("embedded: put media file %s: %w", f.ID, err)
	}
	return nil
}

// GetMediaFile implements persistence.Media.
func (s *Store) GetMediaFile(ctx context.Context, id string) (persistence.MediaFile, error) {
	f, err := s.getMediaFile(ctx, id)
	if err != nil {
		return persistence.MediaFile{}, fmt.Errorf("embedded: get media file %s: %w", id, err)
	}
	return f, nil
}

func (s *Store) getMediaFile(ctx context.Context, id string) (persistence.MediaFile, error) {
	if !persistence.ValidFileID(id) {
		if err := s.admitted(ctx, ""); err != nil {
			return persistence.MediaFile{}, err
		}
		return persistence.MediaFile{}, persistence.ErrNotFound
	}
	v, err := s.mediaRead(ctx, mediaFileKey(id))
	if err != nil {
		return persistence.MediaFile{}, err
	}
	if v == nil {
		return persistence.MediaFile{}, persistence.ErrNotFound
	}
	return decodeMediaFile(id, v)
}

// MarkMediaSent implements persistence.Media. atMs must not be 0, which
// means "never sent".
func (s *Store) MarkMediaSent(ctx context.Context, id string, atMs uint64) error {
	if atMs == 0 {
		return fmt.Errorf("embedded: mark media %s sent: at time 0", id)
	}
	err := s.updateMediaFile(ctx, id, func(b *pebble.Batch, f persistence.MediaFile) error {
		if f.SentAtMs != 0 {
			return nil
		}
		f.SentAtMs = atMs
		if err := b.Set(mediaFileKey(id), encodeMediaFile(f), nil); err != nil {
			return err
		}
		return b.Delete(unsentKey(f.CreatedAtMs, id), nil)
	})
	if err != nil {
		return fmt.Errorf("embedded: mark media %s sent: %w", id, err)
	}
	return nil
}

// DeleteUnsentMedia implements persistence.Media.
func (s *Store) DeleteUnsentMedia(ctx context.Context, id string) (persistence.MediaFile, error) {
	var deleted persistence.MediaFile
	err := s.updateMediaFile(ctx, id, func(b *pebble.Batch, f persistence.MediaFile) error {
		if f.SentAtMs != 0 {
			return persistence.ErrMediaSent
		}
		if err := b.Delete(mediaFileKey(id), nil); err != nil {
			return err
		}
		deleted = f
		return b.Delete(unsentKey(f.CreatedAtMs, id), nil)
	})
	if err != nil {
		return persistence.MediaFile{}, fmt.Errorf("embedded: delete unsent media %s: %w", id, err)
	}
	return deleted, nil
}

// updateMediaFile runs f on file id's record under mediaUpdate;
// persistence.ErrNotFound when there is none.
func (s *Store) updateMediaFile(ctx context.Context, id string, f func(b *pebble.Batch, rec persistence.MediaFile) error) error {
	if !persistence.ValidFileID(id) {
		if err := s.admitted(ctx, ""); err != nil {
			return err
		}
		return persistence.ErrNotFound
	}
	return s.mediaUpdate(ctx, mediaFileKey(id), func(b *pebble.Batch, v []byte) error {
		if v == nil {
			return persistence.ErrNotFound
		}
		rec, err := decodeMediaFile(id, v)
		if err != nil {
			return err
		}
		return f(b, rec)
	})
}

// UnsentMedia implements persistence.Media, oldest first. It reads the
// unsent index, not every record, and takes no lock: a file sent or
// deleted meanwhile is left out.
func (s *Store) UnsentMedia(ctx context.Context, beforeMs uint64, limit int) ([]persistence.MediaFile, error) {
	if err := s.gate.Enter(ctx); err != nil {
		return nil, fmt.Errorf("embedded: unsent media: %w", err)
	}
	defer s.gate.Leave()
	if limit <= 0 || beforeMs == 0 {
		return nil, nil
	}
	// Keys of files created at beforeMs or later sort at or after upper.
	upper := binary.BigEndian.AppendUint64([]byte("n/"), beforeMs)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: unsentLower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("embedded: unsent media: %w", err)
	}
	defer it.Close()
	var out []persistence.MediaFile
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		if len(out)%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("embedded: unsent media: %w", err)
			}
		}
		k := it.Key()
		if len(k) <= len(unsentLower)+8 {
			return nil, fmt.Errorf("embedded: unsent media: corrupt index key %q", k)
		}
		id := string(k[len(unsentLower)+8:])
		v, err := s.getCopy(mediaFileKey(id))
		if err != nil {
			return nil, fmt.Errorf("embedded: unsent media: %w", err)
		}
		if v == nil {
			continue // deleted since the iterator was made
		}
		f, err := decodeMediaFile(id, v)
		if err != nil {
			return nil, fmt.Errorf("embedded: unsent media: %w", err)
		}
		if f.SentAtMs == 0 {
			out = append(out, f)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: unsent media: %w", err)
	}
	return out, nil
}

// A file's record is protobuf wire format, written and read by hand (no
// storepb message holds it): compact, and any byte of a name survives,
// which JSON would not promise. The id is the key's. Field numbers:
const (
	mfOwner protowire.Number = iota + 1
	mfSHA256
	mfBlob
	mfSize
	mfMIME
	mfName
	mfWidth
	mfHeight
	mfThumbSHA256
	mfThumbBlob
	mfThumbSize
	mfThumbMIME
	mfThumbWidth
	mfThumbHeight
	mfBlurhash
	mfCreatedAtMs
	mfSentAtMs
)

// encodeMediaFile encodes f without its ID, leaving out empty fields.
func encodeMediaFile(f persistence.MediaFile) []byte {
	b := make([]byte, 0, 256)
	str := func(n protowire.Number, v string) {
		if v != "" {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
	}
	num := func(n protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, n, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	str(mfOwner, f.Owner)
	str(mfSHA256, f.SHA256)
	str(mfBlob, f.Blob)
	num(mfSize, uint64(f.Size))
	str(mfMIME, f.MIME)
	str(mfName, f.Name)
	num(mfWidth, uint64(int64(f.Width)))
	num(mfHeight, uint64(int64(f.Height)))
	str(mfThumbSHA256, f.ThumbSHA256)
	str(mfThumbBlob, f.ThumbBlob)
	num(mfThumbSize, uint64(f.ThumbSize))
	str(mfThumbMIME, f.ThumbMIME)
	num(mfThumbWidth, uint64(int64(f.ThumbWidth)))
	num(mfThumbHeight, uint64(int64(f.ThumbHeight)))
	str(mfBlurhash, f.Blurhash)
	num(mfCreatedAtMs, f.CreatedAtMs)
	num(mfSentAtMs, f.SentAtMs)
	return b
}

// decodeMediaFile decodes a record of file id; unknown fields are skipped.
func decodeMediaFile(id string, b []byte) (persistence.MediaFile, error) {
	f := persistence.MediaFile{ID: id}
	corrupt := fmt.Errorf("corrupt record of media file %s", id)
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return persistence.MediaFile{}, corrupt
		}
		b = b[l:]
		switch typ {
		case protowire.BytesType:
			v, l := protowire.ConsumeString(b)
			if l < 0 {
				return persistence.MediaFile{}, corrupt
			}
			b = b[l:]
			switch n {
			case mfOwner:
				f.Owner = v
			case mfSHA256:
				f.SHA256 = v
			case mfBlob:
				f.Blob = v
			case mfMIME:
				f.MIME = v
			case mfName:
				f.Name = v
			case mfThumbSHA256:
				f.ThumbSHA256 = v
			case mfThumbBlob:
				f.ThumbBlob = v
			case mfThumbMIME:
				f.ThumbMIME = v
			case mfBlurhash:
				f.Blurhash = v
			}
		case protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return persistence.MediaFile{}, corrupt
			}
			b = b[l:]
			switch n {
			case mfSize:
				f.Size = int64(v)
			case mfWidth:
				f.Width = int32(v)
			case mfHeight:
				f.Height = int32(v)
			case mfThumbSize:
				f.ThumbSize = int64(v)
			case mfThumbWidth:
				f.ThumbWidth = int32(v)
			case mfThumbHeight:
				f.ThumbHeight = int32(v)
			case mfCreatedAtMs:
				f.CreatedAtMs = v
			case mfSentAtMs:
				f.SentAtMs = v
			}
		default:
			l := protowire.ConsumeFieldValue(n, typ, b)
			if l < 0 {
				return persistence.MediaFile{}, corrupt
			}
			b = b[l:]
		}
	}
	return f, nil
}
