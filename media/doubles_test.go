package media

// Test doubles of the stores the service consumes. The real ones
// (persistence/objects/fs for Objects, persistence/embedded for Media) are
// being written beside this package; when they land, newTestService builds
// the service over them and this file goes. Until then these keep the
// contracts' semantics that the service relies on: every call atomic,
// reference counts in generations (a content's key changes each time its
// count falls to zero), quotas that refuse without charging, and objects
// kept on disk so that memory does not grow with their size.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// diskObjects is a test double of persistence.Objects: one file per
// object, written to a temporary file and renamed into place.
type diskObjects struct {
	dir string

	mu    sync.Mutex
	types map[string]string // key -> content type
	puts  map[string]int    // key -> times written
}

func newDiskObjects(dir string) *diskObjects {
	return &diskObjects{dir: dir, types: map[string]string{}, puts: map[string]int{}}
}

func (o *diskObjects) path(key string) string {
	return filepath.Join(o.dir, strings.ReplaceAll(key, "/", "~"))
}

func (o *diskObjects) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	tmp, err := os.CreateTemp(o.dir, ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(r, size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return err
	case n != size:
		return fmt.Errorf("diskObjects: put %s: got %d bytes, want %d", key, n, size)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return o.commit(key, tmp.Name(), contentType)
}

func (o *diskObjects) commit(key, path, contentType string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := os.Rename(path, o.path(key)); err != nil {
		return err
	}
	o.types[key] = contentType
	o.puts[key]++
	return nil
}

func (o *diskObjects) Open(ctx context.Context, key string) (persistence.Object, error) {
	info, err := o.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(o.path(key))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, persistence.ErrObjectNotFound)
	}
	return diskObject{f, info}, nil
}

func (o *diskObjects) Stat(_ context.Context, key string) (persistence.ObjectInfo, error) {
	o.mu.Lock()
	ct, ok := o.types[key]
	o.mu.Unlock()
	st, err := os.Stat(o.path(key))
	if !ok || err != nil {
		return persistence.ObjectInfo{}, fmt.Errorf("%s: %w", key, persistence.ErrObjectNotFound)
	}
	return persistence.ObjectInfo{Key: key, Size: st.Size(), ContentType: ct, ModTime: st.ModTime()}, nil
}

func (o *diskObjects) Delete(_ context.Context, key string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.types, key)
	if err := os.Remove(o.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// keys returns the keys of the objects stored.
func (o *diskObjects) keys() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ks []string
	for k := range o.types {
		ks = append(ks, k)
	}
	return ks
}

// writes returns how many times objects were written, in all.
func (o *diskObjects) writes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.puts {
		n += c
	}
	return n
}

type diskObject struct {
	*os.File
	info persistence.ObjectInfo
}

func (d diskObject) Info() persistence.ObjectInfo { return d.info }

// fileObjects is diskObjects with the PutFile fast path the filesystem
// store may offer: it moves the finished file into place.
type fileObjects struct{ *diskObjects }

func (o fileObjects) PutFile(_ context.Context, key, path, contentType string) error {
	return o.commit(key, path, contentType)
}

// memMedia is a test double of persistence.Media.
type memMedia struct {
	mu    sync.Mutex
	blobs map[string]*blobRefs // by content hash
	usage map[string]int64
	files map[string]persistence.MediaFile
}

type blobRefs struct{ gen, refs int }

func newMemMedia() *memMedia {
	return &memMedia{blobs: map[string]*blobRefs{}, usage: map[string]int64{}, files: map[string]persistence.MediaFile{}}
}

func blobKey(sha string, gen int) string { return fmt.Sprintf("blobs/%s/%s-%d", sha[:2], sha, gen) }

func (m *memMedia) AcquireBlob(_ context.Context, sha string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.blobs[sha]
	if b == nil {
		b = &blobRefs{}
		m.blobs[sha] = b
	}
	if b.refs == 0 {
		b.gen++
	}
	b.refs++
	return blobKey(sha, b.gen), nil
}

func (m *memMedia) ReleaseBlob(_ context.Context, sha string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.blobs[sha]
	if b == nil || b.refs == 0 {
		return "", fmt.Errorf("memMedia: release of %s without references", sha)
	}
	b.refs--
	if b.refs == 0 {
		return blobKey(sha, b.gen), nil
	}
	return "", nil
}

// refs returns the references to sha's content.
func (m *memMedia) refs(sha string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.blobs[sha]; b != nil {
		return b.refs
	}
	return 0
}

func (m *memMedia) ChargeMedia(_ context.Context, owner string, delta, limit int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.usage[owner]
	if delta > 0 && used+delta > limit {
		return used, persistence.ErrQuotaExceeded
	}
	m.usage[owner] = max(0, used+delta)
	return m.usage[owner], nil
}

func (m *memMedia) MediaUsage(_ context.Context, owner string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage[owner], nil
}

func (m *memMedia) PutMediaFile(_ context.Context, f persistence.MediaFile) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[f.ID]; ok {
		return persistence.ErrExists
	}
	m.files[f.ID] = f
	return nil
}

func (m *memMedia) GetMediaFile(_ context.Context, id string) (persistence.MediaFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[id]
	if !ok {
		return f, persistence.ErrNotFound
	}
	return f, nil
}

func (m *memMedia) MarkMediaSent(_ context.Context, id string, atMs uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[id]
	if !ok {
		return persistence.ErrNotFound
	}
	if f.SentAtMs == 0 {
		f.SentAtMs = atMs
		m.files[id] = f
	}
	return nil
}

func (m *memMedia) UnsentMedia(_ context.Context, beforeMs uint64, limit int) ([]persistence.MediaFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []persistence.MediaFile
	for _, f := range m.files {
		if len(out) < limit && f.SentAtMs == 0 && f.CreatedAtMs < beforeMs {
			out = append(out, f)
		}
	}
	return out, nil
}

func (m *memMedia) DeleteUnsentMedia(_ context.Context, id string) (persistence.MediaFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[id]
	switch {
	case !ok:
		return f, persistence.ErrNotFound
	case f.SentAtMs != 0:
		return f, persistence.ErrMediaSent
	}
	delete(m.files, id)
	return f, nil
}

// fakeMessages is a test double of the actors' Messages: each user's
// timeline as a map. Its messages carry a file id as their text content
// (the protocol's Media kinds are not generated on this branch yet), read
// by testFileIDOf.
type fakeMessages struct {
	mu   sync.Mutex
	msgs map[string]map[uint64]*clientpb.Message
}

func (f *fakeMessages) MediaMessage(_ context.Context, user string, id uint64) (*clientpb.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[user][id]
	if !ok {
		return nil, fmt.Errorf("message %d of %s: %w", id, user, persistence.ErrNotFound)
	}
	return m, nil
}

// add puts a message carrying fileID into user's timeline.
func (f *fakeMessages) add(user string, id uint64, fileID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgs == nil {
		f.msgs = map[string]map[uint64]*clientpb.Message{}
	}
	if f.msgs[user] == nil {
		f.msgs[user] = map[uint64]*clientpb.Message{}
	}
	f.msgs[user][id] = &clientpb.Message{Id: id, Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: fileID}}}
}

// recall marks user's message id recalled. It keeps the content, so that a
// test sees the recall itself refused, not a missing file id.
func (f *fakeMessages) recall(user string, id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[user][id].Recalled = true
}

func testFileIDOf(m *clientpb.Message) string { return m.GetContent().GetText() }

// fakeClock is the service's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
