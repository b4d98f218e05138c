package storetest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"actorim/persistence"
)

// DirectoryStore is what the Directory suite runs over.
type DirectoryStore interface {
	persistence.Directory
	io.Closer
}

// Directory is the conformance suite of persistence.Directory.
func Directory(t *testing.T, open func(t *testing.T) DirectoryStore, known ...Known) {
	runSuite(t, open, known, []test[DirectoryStore]{
		{"PrefixOrderAndPages", testDirectoryPages},
		{"RenameAndRemove", testDirectoryRename},
		{"ScopesApart", testDirectoryScopes},
		{"RefusesBadInput", testDirectoryRefuses},
		{"ConcurrentRenames", testDirectoryConcurrent},
		{"CanceledContext", func(t *testing.T, s DirectoryStore) { checkCanceled(t, directoryCalls(s)) }},
		{"Closed", func(t *testing.T, s DirectoryStore) { checkClosed(t, s, directoryCalls(s)) }},
	})
}

func directoryCalls(s persistence.Directory) map[string]call {
	return map[string]call{
		"IndexName":  func(ctx context.Context) error { return s.IndexName(ctx, "app", "alice", "alice") },
		"RemoveName": func(ctx context.Context) error { return s.RemoveName(ctx, "app", "alice") },
		"SearchNames": func(ctx context.Context) error {
			_, err := s.SearchNames(ctx, "app", "a", persistence.Name{}, 10)
			return err
		},
	}
}

func mustIndex(t *testing.T, s persistence.Directory, scope, user, name string) {
	t.Helper()
	if err := s.IndexName(context.Background(), scope, user, name); err != nil {
		t.Fatalf("IndexName(%s, %s, %q): %v", scope, user, name, err)
	}
}

func search(t *testing.T, s persistence.Directory, scope, prefix string, after persistence.Name, limit int) []persistence.Name {
	t.Helper()
	got, err := s.SearchNames(context.Background(), scope, prefix, after, limit)
	if err != nil {
		t.Fatalf("SearchNames(%s, %q, %v, %d): %v", scope, prefix, after, limit, err)
	}
	return got
}

func names(ns []persistence.Name) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Name+"/"+n.User)
	}
	return out
}

func requireNames(t *testing.T, what string, got []persistence.Name, want ...string) {
	t.Helper()
	if g := names(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, g, want)
	}
}

func testDirectoryPages(t *testing.T, s DirectoryStore) {
	// Two users share a name; "ann" is a prefix of "anna"; "bob" is not "an".
	mustIndex(t, s, "app", "u3", "anna")
	mustIndex(t, s, "app", "u1", "ann")
	mustIndex(t, s, "app", "u2", "ann")
	mustIndex(t, s, "app", "u4", "bob")
	mustIndex(t, s, "app", "u5", "änne") // multi-byte names sort by bytes, after "b"
	requireNames(t, "search an", search(t, s, "app", "an", persistence.Name{}, 10), "ann/u1", "ann/u2", "anna/u3")
	requireNames(t, "search ann", search(t, s, "app", "ann", persistence.Name{}, 10), "ann/u1", "ann/u2", "anna/u3")
	requireNames(t, "search anna", search(t, s, "app", "anna", persistence.Name{}, 10), "anna/u3")
	requireNames(t, "search all", search(t, s, "app", "", persistence.Name{}, 10), "ann/u1", "ann/u2", "anna/u3", "bob/u4", "änne/u5")
	requireNames(t, "search ä", search(t, s, "app", "ä", persistence.Name{}, 10), "änne/u5")
	requireNames(t, "search x", search(t, s, "app", "x", persistence.Name{}, 10))

	// Pages of one, each after the last: every entry once, in order.
	var all []persistence.Name
	var after persistence.Name
	for range 10 {
		page := search(t, s, "app", "an", after, 1)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	requireNames(t, "paged search an", all, "ann/u1", "ann/u2", "anna/u3")
	// A cursor before the prefix starts at the prefix.
	requireNames(t, "after a smaller entry", search(t, s, "app", "b", persistence.Name{Name: "ann", User: "u1"}, 10), "bob/u4")
	if got := search(t, s, "app", "an", persistence.Name{}, 0); len(got) != 0 {
		t.Fatalf("limit 0 = %v, want none", got)
	}
}

func testDirectoryRename(t *testing.T, s DirectoryStore) {
	ctx := context.Background()
	mustIndex(t, s, "app", "alice", "alice")
	mustIndex(t, s, "app", "alice", "wonder") // replaces "alice"
	requireNames(t, "old name", search(t, s, "app", "ali", persistence.Name{}, 10))
	requireNames(t, "new name", search(t, s, "app", "won", persistence.Name{}, 10), "wonder/alice")
	mustIndex(t, s, "app", "alice", "wonder") // the same again: still once
	requireNames(t, "same name twice", search(t, s, "app", "", persistence.Name{}, 10), "wonder/alice")
	if err := s.RemoveName(ctx, "app", "alice"); err != nil {
		t.Fatalf("RemoveName: %v", err)
	}
	requireNames(t, "after remove", search(t, s, "app", "", persistence.Name{}, 10))
	if err := s.RemoveName(ctx, "app", "alice"); err != nil {
		t.Fatalf("RemoveName of a user without a name = %v, want nil", err)
	}
	mustIndex(t, s, "app", "alice", "back")
	requireNames(t, "indexed again", search(t, s, "app", "", persistence.Name{}, 10), "back/alice")
}

func testDirectoryScopes(t *testing.T, s DirectoryStore) {
	mustIndex(t, s, "app1", "alice", "alice")
	mustIndex(t, s, "app2", "alice", "other")
	mustIndex(t, s, "app10", "bob", "alice")
	requireNames(t, "app1", search(t, s, "app1", "", persistence.Name{}, 10), "alice/alice")
	requireNames(t, "app2", search(t, s, "app2", "", persistence.Name{}, 10), "other/alice")
	requireNames(t, "app10", search(t, s, "app10", "a", persistence.Name{}, 10), "alice/bob")
	if err := s.RemoveName(context.Background(), "app2", "alice"); err != nil {
		t.Fatalf("RemoveName: %v", err)
	}
	requireNames(t, "app1 after a removal in app2", search(t, s, "app1", "", persistence.Name{}, 10), "alice/alice")
}

func testDirectoryRefuses(t *testing.T, s DirectoryStore) {
	ctx := context.Background()
	long := string(make([]byte, persistence.MaxDirectoryBytes+1))
	for name, err := range map[string]error{
		"empty scope":    s.IndexName(ctx, "", "alice", "a"),
		"empty name":     s.IndexName(ctx, "app", "alice", ""),
		"empty user":     s.IndexName(ctx, "app", "", "a"),
		"NUL in name":    s.IndexName(ctx, "app", "alice", "a\x00b"),
		"long name":      s.IndexName(ctx, "app", "alice", long),
		"invalid UTF-8":  s.IndexName(ctx, "app", "alice", "\xff"),
		"slash in user":  s.IndexName(ctx, "app", "a/b", "a"),
		"remove no user": s.RemoveName(ctx, "app", ""),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := s.SearchNames(ctx, "app", "\xff", persistence.Name{}, 10); err == nil {
		t.Errorf("search with an invalid prefix: accepted")
	}
	requireNames(t, "after refusals", search(t, s, "app", "", persistence.Name{}, 10))
}

// testDirectoryConcurrent renames one user from many goroutines: exactly
// one entry stays, the last name written.
func testDirectoryConcurrent(t *testing.T, s DirectoryStore) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				if err := s.IndexName(context.Background(), "app", "alice", fmt.Sprintf("n%d-%d", i, j)); err != nil {
					t.Errorf("IndexName: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	got := search(t, s, "app", "", persistence.Name{}, 100)
	if len(got) != 1 || got[0].User != "alice" {
		t.Fatalf("after concurrent renames: %q, want one entry of alice", names(got))
	}
}
