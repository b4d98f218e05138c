package actorim

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs: every Go package of the module has a doc comment, in the
// Go form: "Package name ..." (a command: "Command name ..."). A package of
// test files only (e2e) has it in one of them.
func TestPackageDocs(t *testing.T) {
	type pkg struct {
		name       string
		docs       []string // files with a package doc
		hasNonTest bool
	}
	dirs := map[string]*pkg{}
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != "." && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		if strings.HasSuffix(f.Name.Name, "_test") {
			continue // an external test package documents nothing
		}
		dir := filepath.Dir(path)
		p := dirs[dir]
		if p == nil {
			p = &pkg{name: f.Name.Name}
			dirs[dir] = p
		}
		test := strings.HasSuffix(path, "_test.go")
		p.hasNonTest = p.hasNonTest || !test
		if f.Doc != nil {
			p.docs = append(p.docs, path)
			want := "Package " + f.Name.Name + " "
			if f.Name.Name == "main" {
				want = "Command "
			}
			if text := f.Doc.Text(); !strings.HasPrefix(text, want) {
				t.Errorf("%s: package doc starts %q, want %q...", path, firstLine(text), want)
			}
		}
	}
	for dir, p := range dirs {
		var docs []string
		for _, f := range p.docs {
			if !p.hasNonTest || !strings.HasSuffix(f, "_test.go") {
				docs = append(docs, f)
			}
		}
		switch {
		case len(docs) == 0:
			t.Errorf("%s: package %s has no doc comment", dir, p.name)
		case len(docs) > 1:
			t.Logf("%s: package doc in several files %q", dir, docs)
		}
	}
	if len(dirs) < 20 {
		t.Fatalf("only %d packages found: run from the module root", len(dirs))
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
