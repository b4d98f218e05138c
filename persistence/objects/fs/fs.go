// Package fs is a persistence.Objects on the local filesystem: one file per
// object under a directory, written to a temporary file, fsynced and renamed
// into place, so that a reader (or a crash) sees a whole object or none.
//
// A file holds the object's bytes followed by a short trailer with its
// content type: content, type, then the type's length (2 bytes, big
// endian) and the magic "aob1". One file, one rename: the type can never
// belong to another version of the bytes, as a separate sidecar could
// during an overwrite.
//
// Key "a/b" is the file <dir>/a/b~: the '~', outside the keys' alphabet,
// lets "a" and "a/b" both be objects, as in S3. The store's own names start
// with '.', which keys may not: temporary files live in <dir>/.tmp until
// they are renamed.
package fs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"actorim/persistence"
)

// MaxContentType is the longest content type Put stores, in bytes.
const MaxContentType = 1024

// DefaultContentType is what an object stored with an empty content type
// reports, as an S3 service does.
const DefaultContentType = "application/octet-stream"

const (
	magic      = "aob1"
	footerLen  = 2 + 4 // the type's length, then magic
	tmpDirName = ".tmp"
	fileSuffix = "~"
	// staleTmp is how old a temporary file must be for Open to remove it:
	// another process sharing the directory may still be writing a younger
	// one.
	staleTmp = 24 * time.Hour
)

// Store is a persistence.Objects in a directory. Create it with Open; it is
// safe for concurrent use, also by several processes sharing the directory.
type Store struct {
	dir string
	tmp string
}

var _ persistence.Objects = (*Store)(nil)

// Open returns the store in dir, creating dir (mode 0700) if needed. It
// removes temporary files a crashed Put left behind more than a day ago.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objects/fs: %w", err)
	}
	s := &Store{dir: abs, tmp: filepath.Join(abs, tmpDirName)}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("objects/fs: %w", err)
	}
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("objects/fs: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmp {
			_ = os.Remove(filepath.Join(s.tmp, e.Name()))
		}
	}
	return s, nil
}

// Dir is the store's directory, absolute.
func (s *Store) Dir() string { return s.dir }

// Put stores size bytes of r under key. See persistence.Objects.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	path, trailer, err := s.prepare(key, size, contentType)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	tmp := f.Name()
	err = write(ctx, f, r, size, trailer)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.commit(ctx, tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	return nil
}

// PutFile moves the complete file at path into the store under key, with
// contentType, without copying its bytes when path is on the store's
// filesystem (it appends the trailer and renames the file); on another
// filesystem it copies and then removes path. On success path is gone; on
// failure it is left as it was.
//
// It is an optional fast path beside persistence.Objects, for a caller that
// already has the bytes in a file (a finished upload): such a caller may
// type-assert for it and fall back to Put.
func (s *Store) PutFile(ctx context.Context, key, path, contentType string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("objects/fs: put %s: %s is not a regular file", key, path)
	}
	size := st.Size()
	final, trailer, err := s.prepare(key, size, contentType)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	_, err = f.Write(trailer)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.commit(ctx, path, final)
	}
	if err == nil {
		return nil
	}
	// Give the caller its file back as it was.
	if terr := os.Truncate(path, size); terr != nil {
		return fmt.Errorf("objects/fs: put %s: %w (and restoring %s: %v)", key, err, path, terr)
	}
	if errors.Is(err, syscall.EXDEV) {
		return s.putCopy(ctx, key, path, size, contentType)
	}
	return fmt.Errorf("objects/fs: put %s: %w", key, err)
}

// putCopy is PutFile across filesystems.
func (s *Store) putCopy(ctx context.Context, key, path string, size int64, contentType string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("objects/fs: put %s: %w", key, err)
	}
	err = s.Put(ctx, key, f, size, contentType)
	_ = f.Close()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("objects/fs: put %s: stored, but removing %s: %w", key, path, err)
	}
	return nil
}

// prepare checks Put's arguments and returns the object's path and trailer.
func (s *Store) prepare(key string, size int64, contentType string) (path string, trailer []byte, err error) {
	if err := checkKey(key); err != nil {
		return "", nil, err
	}
	if size < 0 {
		return "", nil, fmt.Errorf("objects/fs: put %s: negative size %d", key, size)
	}
	if contentType == "" {
		contentType = DefaultContentType
	}
	if len(contentType) > MaxContentType {
		return "", nil, fmt.Errorf("objects/fs: put %s: content type longer than %d bytes", key, MaxContentType)
	}
	trailer = append([]byte(contentType), 0, 0)
	binary.BigEndian.PutUint16(trailer[len(contentType):], uint16(len(contentType)))
	return s.path(key), append(trailer, magic...), nil
}

// write copies exactly size bytes of r to f, then the trailer, and fsyncs.
func write(ctx context.Context, f *os.File, r io.Reader, size int64, trailer []byte) error {
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, size))
	if err != nil {
		return err
	}
	if n < size {
		return fmt.Errorf("reader ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	var one [1]byte
	if m, err := io.ReadFull(ctxReader{ctx, r}, one[:]); m > 0 {
		return fmt.Errorf("reader has more than %d bytes", size)
	} else if err != io.EOF {
		return err
	}
	if _, err := f.Write(trailer); err != nil {
		return err
	}
	return f.Sync()
}

// commit renames the complete file from into place at to and makes the
// rename durable.
func (s *Store) commit(ctx context.Context, from, to string) error {
	if err := s.mkdirs(filepath.Dir(to)); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

// mkdirs creates dir and its missing parents below the store's directory,
// each made durable in its parent.
func (s *Store) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var missing []string
	for d := dir; d != s.dir; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open returns the object under key. Its reads do not depend on ctx.
func (s *Store) Open(ctx context.Context, key string) (persistence.Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objects/fs: open %s: %w", key, err)
	}
	o, err := s.open(key)
	if err != nil {
		return nil, fmt.Errorf("objects/fs: open %s: %w", key, err)
	}
	return o, nil
}

// Stat returns the info of the object under key.
func (s *Store) Stat(ctx context.Context, key string) (persistence.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return persistence.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return persistence.ObjectInfo{}, fmt.Errorf("objects/fs: stat %s: %w", key, err)
	}
	o, err := s.open(key)
	if err != nil {
		return persistence.ObjectInfo{}, fmt.Errorf("objects/fs: stat %s: %w", key, err)
	}
	_ = o.Close()
	return o.info, nil
}

// Delete removes the object under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objects/fs: delete %s: %w", key, err)
	}
	path := s.path(key)
	if err := os.Remove(path); err != nil {
		if missing(err) {
			return nil
		}
		return fmt.Errorf("objects/fs: delete %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("objects/fs: delete %s: %w", key, err)
	}
	return nil
}

func (s *Store) path(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key)) + fileSuffix
}

// missing reports an error that means "no object there": no such file, or a
// path through something that is no directory.
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// object is an open object: a section of its file, before the trailer.
type object struct {
	*io.SectionReader
	f    *os.File
	info persistence.ObjectInfo
}

func (o *object) Close() error                 { return o.f.Close() }
func (o *object) Info() persistence.ObjectInfo { return o.info }

func (s *Store) open(key string) (*object, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		if missing(err) {
			return nil, persistence.ErrObjectNotFound
		}
		return nil, err
	}
	o, err := readTrailer(f, key)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return o, nil
}

func readTrailer(f *os.File, key string) (*object, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() { // not written by Put
		return nil, persistence.ErrObjectNotFound
	}
	var footer [footerLen]byte
	end := st.Size() - footerLen
	if end < 0 {
		return nil, fmt.Errorf("%s: not an object file (%d bytes)", f.Name(), st.Size())
	}
	if _, err := f.ReadAt(footer[:], end); err != nil {
		return nil, err
	}
	if string(footer[2:]) != magic {
		return nil, fmt.Errorf("%s: not an object file (no trailer)", f.Name())
	}
	n := int64(binary.BigEndian.Uint16(footer[:2]))
	if n > MaxContentType || n > end {
		return nil, fmt.Errorf("%s: not an object file (bad trailer)", f.Name())
	}
	ctype := make([]byte, n)
	if _, err := f.ReadAt(ctype, end-n); err != nil {
		return nil, err
	}
	size := end - n
	return &object{
		SectionReader: io.NewSectionReader(f, 0, size),
		f:             f,
		info:          persistence.ObjectInfo{Key: key, Size: size, ContentType: string(ctype), ModTime: st.ModTime()},
	}, nil
}

// ctxReader fails its reads once ctx is done, so that a Put of a slow
// reader ends soon after its context does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkKey returns an error for a key that is not a '/'-joined path of
// segments of [A-Za-z0-9._-], none empty or starting with '.'.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("objects/fs: empty key")
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("objects/fs: bad key %q: empty segment or one starting with '.'", key)
		}
		for _, c := range []byte(seg) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("objects/fs: bad key %q: character %q", key, c)
			}
		}
	}
	return nil
}
