package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/persistence/objects/objtest"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	objtest.Run(t, func(t *testing.T) persistence.Objects { return openStore(t) })
}

// The store's files are private to its user.
func TestOpenCreatesPrivateDir(t *testing.T) {
	s := openStore(t)
	st, err := os.Stat(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", st.Mode().Perm())
	}
}

// A failed Put leaves no temporary file behind.
func TestFailedPutLeavesNothing(t *testing.T) {
	s := openStore(t)
	_ = s.Put(context.Background(), "a/b", strings.NewReader("short"), 10, "")
	_ = s.Put(context.Background(), "a/c", strings.NewReader("much too long"), 3, "")
	left, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d temporary files left: %v", len(left), left)
	}
}

// Open removes temporary files older than a day, and only those.
func TestOpenRemovesStaleTemporaries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "objects")
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, tmpDirName, "put-1"), filepath.Join(dir, tmpDirName, "put-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file: %v, want removed", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file: %v, want kept", err)
	}
}

// A file in the store's directory that is no object (no trailer) is an
// error, not an object of garbage.
func TestForeignFile(t *testing.T) {
	s := openStore(t)
	if err := os.WriteFile(filepath.Join(s.Dir(), "foreign"+fileSuffix), []byte("hello, world"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "foreign"); err == nil || errors.Is(err, persistence.ErrObjectNotFound) {
		t.Errorf("Stat of a foreign file: %v, want a corruption error", err)
	}
}

// putFile writes data to a file in dir and PutFiles it under key.
func putFile(t *testing.T, s *Store, dir, key, data, ctype string) (string, error) {
	t.Helper()
	path := filepath.Join(dir, "upload")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, s.PutFile(context.Background(), key, path, ctype)
}

func readAll(t *testing.T, s *Store, key string) (string, persistence.ObjectInfo) {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer o.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(o); err != nil {
		t.Fatal(err)
	}
	return b.String(), o.Info()
}

// PutFile moves a file in: the object has its bytes and the type given, the
// file is gone, and the inode is the same (no copy).
func TestPutFile(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "upload")
	if err := os.WriteFile(path, []byte("the whole upload"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(context.Background(), "ab/cd", path, "text/plain"); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the source file: %v, want gone", err)
	}
	got, info := readAll(t, s, "ab/cd")
	if got != "the whole upload" || info.Size != 16 || info.ContentType != "text/plain" {
		t.Errorf("object %q %+v", got, info)
	}
	after, err := os.Stat(s.path("ab/cd"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("PutFile copied the file instead of moving it")
	}

	// It replaces an object whole, and an empty type is the default.
	if _, err := putFile(t, s, dir, "ab/cd", "new", ""); err != nil {
		t.Fatal(err)
	}
	if got, info := readAll(t, s, "ab/cd"); got != "new" || info.ContentType != DefaultContentType {
		t.Errorf("after a second PutFile: %q %+v", got, info)
	}
}

// A refused PutFile leaves the source file as it was and stores nothing.
func TestPutFileRefused(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, f := range map[string]func(path string) error{
		"bad key": func(p string) error { return s.PutFile(context.Background(), "../x", p, "") },
		"long type": func(p string) error {
			return s.PutFile(context.Background(), "x", p, strings.Repeat("a", MaxContentType+1))
		},
		"done ctx": func(p string) error { return s.PutFile(cancelled, "x", p, "") },
		// A directory where x/y's file goes: the rename fails after the
		// trailer was appended.
		"rename fails": func(p string) error {
			if err := os.MkdirAll(s.path("x/y"), 0o700); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(s.path("x/y"))
			return s.PutFile(context.Background(), "x/y", p, "")
		},
	} {
		path := filepath.Join(dir, "upload")
		if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f(path); err == nil {
			t.Errorf("%s: PutFile succeeded", name)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
			t.Errorf("%s: source file %q, %v; want it unchanged", name, b, err)
		}
		if _, err := s.Stat(context.Background(), "x/y"); !errors.Is(err, persistence.ErrObjectNotFound) {
			t.Errorf("%s: Stat x/y: %v, want not found", name, err)
		}
	}
	if err := s.PutFile(context.Background(), "d", dir, ""); err == nil {
		t.Error("PutFile of a directory: no error")
	}
}
