package objtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"actorim/persistence"
	"actorim/persistence/objects/fs"
	"actorim/persistence/objects/objtest"
)

// broken stores: each breaks one promise of the contract, over a correct
// fs store, and names the subtest of the suite that must catch it.
var broken = map[string]struct {
	catches string
	wrap    func(persistence.Objects) persistence.Objects
}{
	"buffers-whole":   {"Memory", func(s persistence.Objects) persistence.Objects { return bufferingStore{s} }},
	"stores-partial":  {"WrongLength", func(s persistence.Objects) persistence.Objects { return partialStore{s} }},
	"plain-not-found": {"Missing", func(s persistence.Objects) persistence.Objects { return plainErrStore{s} }},
	"ignores-context": {"Cancelled", func(s persistence.Objects) persistence.Objects { return noCtxStore{s} }},
	"seek-ignored":    {"Ranges", func(s persistence.Objects) persistence.Objects { return badSeekStore{s} }},
}

// TestSuiteCatchesBrokenStores runs the suite over each broken store in a
// child process (TestBroken) and expects it to fail, in the subtest named.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBroken$/^"+b.catches+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), "OBJTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store that %s:\n%s", name, out)
			}
			if want := "--- FAIL: TestBroken/" + b.catches; !bytes.Contains(out, []byte(want)) {
				t.Fatalf("the suite failed, but not in %s:\n%s", b.catches, out)
			}
		})
	}
}

// TestBroken is the child half of TestSuiteCatchesBrokenStores: it runs the
// suite over the broken store OBJTEST_BROKEN names, and nothing without it.
func TestBroken(t *testing.T) {
	name := os.Getenv("OBJTEST_BROKEN")
	if name == "" {
		return
	}
	objtest.Run(t, func(t *testing.T) persistence.Objects {
		s, err := fs.Open(filepath.Join(t.TempDir(), "objects"))
		if err != nil {
			t.Fatal(err)
		}
		return broken[name].wrap(s)
	})
}

// bufferingStore reads the whole object into memory before storing it.
type bufferingStore struct{ persistence.Objects }

func (s bufferingStore) Put(ctx context.Context, key string, r io.Reader, size int64, ctype string) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return s.Objects.Put(ctx, key, bytes.NewReader(b), size, ctype)
}

// partialStore stores what the reader gave, whatever size was declared.
type partialStore struct{ persistence.Objects }

func (s partialStore) Put(ctx context.Context, key string, r io.Reader, size int64, ctype string) error {
	if size < 0 {
		return errors.New("negative size")
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, size))
	if err != nil {
		return err
	}
	return s.Objects.Put(ctx, key, &buf, n, ctype)
}

// plainErrStore reports missing objects with an error of its own.
type plainErrStore struct{ persistence.Objects }

func (s plainErrStore) Stat(ctx context.Context, key string) (persistence.ObjectInfo, error) {
	info, err := s.Objects.Stat(ctx, key)
	if errors.Is(err, persistence.ErrObjectNotFound) {
		err = errors.New("no such object")
	}
	return info, err
}

// noCtxStore does not pass the context on.
type noCtxStore struct{ persistence.Objects }

func (s noCtxStore) Put(_ context.Context, key string, r io.Reader, size int64, ctype string) error {
	return s.Objects.Put(context.Background(), key, r, size, ctype)
}

// badSeekStore's objects report the position asked for but keep reading
// where they were.
type badSeekStore struct{ persistence.Objects }

func (s badSeekStore) Open(ctx context.Context, key string) (persistence.Object, error) {
	o, err := s.Objects.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &badSeek{Object: o}, nil
}

type badSeek struct {
	persistence.Object
	pos int64
}

func (o *badSeek) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		o.pos = off
	case io.SeekEnd:
		o.pos = o.Info().Size + off
	}
	return o.pos, nil
}
