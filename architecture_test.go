package actorim

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureNamesExist: every file named in docs/architecture.md
// exists, and every function or method named beside a file in one of its
// tables is declared in that file, so the walk through the message path
// cannot drift from the code.
func TestArchitectureNamesExist(t *testing.T) {
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile("`((?:[a-z0-9_]+/)+[a-z0-9_]+\\.(?:go|proto))`").FindAllStringSubmatch(string(doc), -1)
	if len(files) < 20 {
		t.Fatalf("found only %d file names in docs/architecture.md", len(files))
	}
	for _, f := range files {
		if _, err := os.Stat(f[1]); err != nil {
			t.Errorf("docs/architecture.md names %s: %v", f[1], err)
		}
	}
	// Table rows "| step | `file` | `Type.Method` or `func` | ...".
	row := regexp.MustCompile("\\| `([a-z0-9_/]+\\.go)` \\| `([A-Za-z_.]+)` \\|")
	checked := 0
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		src, err := os.ReadFile(m[1])
		if err != nil {
			continue // reported above
		}
		name := m[2]
		if recv, method, ok := strings.Cut(name, "."); ok {
			if !regexp.MustCompile(`func \(\w+ \*?` + recv + `\) ` + method + `\(`).Match(src) {
				t.Errorf("docs/architecture.md: %s has no method %s", m[1], name)
			}
		} else if !strings.Contains(string(src), "func "+name+"(") {
			t.Errorf("docs/architecture.md: %s has no func %s", m[1], name)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("checked only %d file/function rows", checked)
	}
}
