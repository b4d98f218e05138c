package loadgen

import (
	"bytes"
	"crypto/sha256"
	"image/jpeg"
	"io"
	"testing"
)

// TestImageFiles: --images files are valid JPEGs of exactly the size asked,
// of the base picture's dimensions, and distinct from one another.
func TestImageFiles(t *testing.T) {
	for _, size := range []int64{8 << 10, 200 << 10, 1 << 20} {
		source, dim, err := imageSource(size)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[[32]byte]bool{}
		for i := 0; i < 3; i++ {
			b, err := io.ReadAll(io.NewSectionReader(source(i), 0, size+100))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != size {
				t.Fatalf("size %d: file %d has %d bytes", size, i, len(b))
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if err != nil || cfg.Width != dim.X || cfg.Height != dim.Y {
				t.Fatalf("size %d: file %d decodes as %+v (%v), want %v", size, i, cfg, err, dim)
			}
			if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
				t.Fatalf("size %d: file %d: %v", size, i, err)
			}
			sum := sha256.Sum256(b)
			if seen[sum] {
				t.Fatalf("size %d: file %d repeats another", size, i)
			}
			seen[sum] = true
		}
		t.Logf("%d bytes: %dx%d", size, dim.X, dim.Y)
	}
	if _, _, err := imageSource(100); err == nil {
		t.Fatal("a 100-byte image was made")
	}
}
