package loadgen

import (
	"bytes"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNoise: the generated content reads the same at any offset and in any
// piece sizes, starts with the harmless prefix, and differs per file.
func TestNoise(t *testing.T) {
	const size = 100_003
	n := newNoise("run", 1, size)
	whole, err := io.ReadAll(io.NewSectionReader(n, 0, size))
	if err != nil || len(whole) != size || !bytes.HasPrefix(whole, []byte(noisePrefix)) {
		t.Fatalf("read %d bytes, %v", len(whole), err)
	}
	for range 200 {
		off := rand.Int64N(size + 10)
		p := make([]byte, rand.IntN(5000))
		k, err := n.ReadAt(p, off)
		want := whole[min(off, size):min(off+int64(len(p)), size)]
		if !bytes.Equal(p[:k], want) || (k < len(p)) != (err == io.EOF) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; differs from the whole read", len(p), off, k, err)
		}
	}
	other, _ := io.ReadAll(io.NewSectionReader(newNoise("run", 2, size), 0, size))
	if bytes.Equal(other[len(noisePrefix):len(noisePrefix)+64], whole[len(noisePrefix):len(noisePrefix)+64]) {
		t.Fatal("two files have the same bytes")
	}
}

func TestHTTPBase(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8080/ws": "http://127.0.0.1:8080", "wss://h/ws": "https://h", "ws://h/prefix/ws/": "http://h/prefix",
	} {
		if got, err := httpBase(in); err != nil || got != want {
			t.Errorf("httpBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := httpBase("http://h/ws"); err == nil {
		t.Error("http:// target accepted")
	}
}

// TestMediaNodeArgs: a spawned node's limits are raised only when the run
// needs more than media-spec's defaults.
func TestMediaNodeArgs(t *testing.T) {
	c := Config{}.WithDefaults("media")
	c.MediaSize, c.Streams, c.Files = 100<<20, 1, 1
	if a := mediaNodeArgs(&c); len(a) != 0 {
		t.Fatalf("100 MiB: %v", a)
	}
	c.MediaSize, c.Files = 200<<20, 6
	if a := mediaNodeArgs(&c); !slices.Equal(a, []string{"--media-max-bytes", "209715200", "--media-quota-bytes", "2516582400"}) {
		t.Fatalf("6 x 200 MiB for one user: %v", a)
	}
}
