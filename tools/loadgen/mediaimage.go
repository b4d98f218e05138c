package loadgen

// The media workload's images (--images): every file is a JPEG of exactly
// MediaSize bytes that the node decodes for its thumbnail and placeholder.
// One base picture is encoded once; each file is that picture behind JPEG
// comment segments that name the file and pad it to the size, so the files
// are distinct content (the node's deduplication cannot shortcut them) while
// the client holds a single copy of the pixels.

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
)

// jpegSegmentMax is the most data bytes one JPEG segment carries.
const jpegSegmentMax = 65533

// baseJPEG is a photo-like picture (gradients and grain, so that the
// encoder cannot shrink it to nothing) encoded to at most limit bytes, or
// an error when even a small one does not fit.
func baseJPEG(limit int) ([]byte, image.Point, error) {
	w, h := 1600, 1200
	rng := rand.New(rand.NewPCG(1, 2))
	for w >= 64 {
		img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.Y[y*img.YStride+x] = uint8(x*255/w/2 + y*255/h/2 + rng.IntN(48))
			}
		}
		for i := range img.Cb {
			img.Cb[i], img.Cr[i] = uint8(96+rng.IntN(64)), uint8(96+rng.IntN(64))
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
			return nil, image.Point{}, err
		}
		if b.Len() <= limit {
			return b.Bytes(), image.Point{X: w, Y: h}, nil
		}
		// Shrink the area by the ratio of the excess, a little more.
		scale := 0.95 * float64(limit) / float64(b.Len())
		if scale > 0.9 {
			scale = 0.9
		}
		w, h = int(float64(w)*math.Sqrt(scale)), int(float64(h)*math.Sqrt(scale))
	}
	return nil, image.Point{}, fmt.Errorf("loadgen: --images needs --size of at least a few KiB (%d bytes)", limit)
}

// imageFile is file index's bytes: the SOI marker, comment segments naming
// the file and padding it to size, then the base JPEG after its SOI.
type imageFile struct {
	head []byte // SOI and the comment segments
	base []byte // the base JPEG without its SOI
}

// newImageFile builds file index of size bytes on base, which must leave
// room for the comments (len(base)+64 <= size).
func newImageFile(base []byte, index int, size int64) *imageFile {
	pad := int(size) - len(base) // bytes of comment segments to add
	head := []byte{0xFF, 0xD8}
	tag := []byte(fmt.Sprintf("imbench image %d ", index))
	for pad > 0 {
		n := min(pad, 4+jpegSegmentMax) // a segment: marker, length, data
		if rest := pad - n; rest > 0 && rest < 4 {
			n -= 4 // leave room for one more segment
		}
		data := bytes.Repeat([]byte{'.'}, n-4)
		copy(data, tag)
		tag = nil
		head = append(head, 0xFF, 0xFE, byte((n-2)>>8), byte(n-2))
		head = append(head, data...)
		pad -= n
	}
	return &imageFile{head: head, base: base[2:]}
}

// ReadAt implements io.ReaderAt over head then base.
func (f *imageFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		var src []byte
		switch {
		case pos < int64(len(f.head)):
			src = f.head[pos:]
		case pos < int64(len(f.head)+len(f.base)):
			src = f.base[pos-int64(len(f.head)):]
		default:
			return n, io.EOF
		}
		n += copy(p[n:], src)
	}
	return n, nil
}

// imageSource returns the function that makes file index's source when
// --images is set: a JPEG of size bytes.
func imageSource(size int64) (func(index int) io.ReaderAt, image.Point, error) {
	base, dim, err := baseJPEG(int(size) - 64)
	if err != nil {
		return nil, dim, err
	}
	return func(index int) io.ReaderAt { return newImageFile(base, index, size) }, dim, nil
}
