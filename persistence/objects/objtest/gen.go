package objtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// The suite's objects are generated, not held: byte i of the object of seed
// s is a function of (s, i), so a test can stream 64 MiB, read any range
// back and check it, with a few KiB of memory.

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// fill sets p to the bytes at off.. of the object of seed.
func fill(p []byte, seed uint64, off int64) {
	for i := 0; i < len(p); {
		x := uint64(off) + uint64(i)
		w := mix(seed*0x9e3779b97f4a7c15 ^ x>>3)
		for b := x & 7; b < 8 && i < len(p); b++ {
			p[i] = byte(w >> (8 * b))
			i++
		}
	}
}

// content returns bytes off..off+n of the object of seed.
func content(seed uint64, off, n int64) []byte {
	p := make([]byte, n)
	fill(p, seed, off)
	return p
}

// gen yields the first size bytes of the object of seed.
type gen struct {
	seed      uint64
	off, size int64
}

func newGen(seed uint64, size int64) *gen { return &gen{seed: seed, size: size} }

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), g.size-g.off))
	fill(p[:n], g.seed, g.off)
	g.off += int64(n)
	return n, nil
}

// errMismatch reports bytes or a length that are not the object's: a
// read that returned wrong data rather than an error.
var errMismatch = errors.New("not the object written")

// checker is a writer that compares what it is given with the object of
// seed from offset 0.
type checker struct {
	seed    uint64
	off     int64
	scratch []byte
	bad     error
}

func (c *checker) Write(p []byte) (int, error) {
	if c.bad != nil {
		return 0, c.bad
	}
	if cap(c.scratch) < len(p) {
		c.scratch = make([]byte, len(p))
	}
	want := c.scratch[:len(p)]
	fill(want, c.seed, c.off)
	if !bytes.Equal(p, want) {
		i := 0
		for p[i] == want[i] {
			i++
		}
		c.bad = fmt.Errorf("%w: byte %d differs: got %#x, want %#x", errMismatch, c.off+int64(i), p[i], want[i])
		return i, c.bad
	}
	c.off += int64(len(p))
	return len(p), nil
}

// check reads r to its end and reports whether it is exactly the first size
// bytes of the object of seed.
func check(r io.Reader, seed uint64, size int64) error {
	c := &checker{seed: seed}
	n, err := io.Copy(c, r)
	if c.bad != nil {
		return c.bad
	}
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if n != size {
		return fmt.Errorf("%w: read %d bytes, want %d", errMismatch, n, size)
	}
	return nil
}

// cancelAfter cancels a context once n bytes were read through it, and keeps
// yielding bytes: a Put must notice the context, not the reader.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	c.n -= int64(m)
	if c.n <= 0 {
		c.cancel()
	}
	return m, err
}
