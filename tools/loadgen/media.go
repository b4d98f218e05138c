package loadgen

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"actorim/client"
)

// The media workload moves files through a node's media HTTP API: Streams
// users each upload their share of Files files of MediaSize bytes at once
// (tus, or one POST with SimpleUpload), then download them all back. Every
// file is distinct random content, so the node's deduplication by content
// cannot shortcut anything; the bytes that come back are checked against
// those sent (a difference is a KindCorrupt violation).
//
// Barriers: "start" (contents generated and hashed), "uploaded",
// "downloaded", then the reference's "ref-start", "ref-uploaded" and
// "ref-downloaded" (mediaref.go). The report gives MiB/s and files/s each
// way, per-file latency (upload, download), the node's CPU-s per phase and
// peak RSS, the reference's MiB/s each way, and the node's throughput as a
// fraction of the reference's (upload_vs_ref, download_vs_ref).
var mediaWorkload = &workload{
	check: func(c *Config) error {
		switch {
		case c.MediaSize < 0:
			return errors.New("loadgen: --size must not be negative")
		case c.Files < c.Streams:
			return fmt.Errorf("loadgen: media: --files (%d) must be at least --streams (%d)", c.Files, c.Streams)
		}
		return nil
	},
	sockets: func(c *Config) int { return c.Streams },
	run:     runMedia,
	setup: func(c *Config) string {
		how := fmt.Sprintf("tus, %s chunks", SizeString(c.ChunkSize))
		if c.SimpleUpload {
			how = "one POST each"
		}
		what := "random files"
		if c.Images {
			what = "JPEG images"
		}
		return fmt.Sprintf("%d distinct %s of %s (%s) uploaded by %d streams at once (%s), then downloaded by them",
			c.Files, what, SizeString(c.MediaSize), mib(c.MediaSize*int64(c.Files)), c.Streams, how)
	},
	summarize: summarizeMedia,
	nodeArgs:  mediaNodeArgs,
}

// The media limits of a node's defaults (media-spec): a spawned node gets
// them raised when a run needs more.
const (
	nodeMediaMaxBytes = 100 << 20
	nodeMediaQuota    = 1 << 30
)

func mediaNodeArgs(c *Config) []string {
	var args []string
	if c.MediaSize > nodeMediaMaxBytes {
		args = append(args, "--media-max-bytes", strconv.FormatInt(c.MediaSize, 10))
	}
	perUser := c.MediaSize * int64((c.Files+c.Streams-1)/max(c.Streams, 1))
	if perUser > nodeMediaQuota {
		args = append(args, "--media-quota-bytes", strconv.FormatInt(2*perUser, 10))
	}
	return args
}

// mediaStream is one user moving files one after the other.
type mediaStream struct {
	user  string
	h     *client.HTTP
	files []*mediaFile
}

// mediaFile is one file of the run.
type mediaFile struct {
	index int
	src   io.ReaderAt // MediaSize bytes
	sha   string      // of the bytes uploaded, hex
	id    string      // the node's file id, once uploaded
}

func runMedia(ctx context.Context, e *env) error {
	cfg := e.cfg
	lo, hi := e.span(cfg.Streams)
	tr := &http.Transport{MaxIdleConnsPerHost: max(hi-lo, 2), IdleConnTimeout: time.Minute, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var streams []*mediaStream
	var files []*mediaFile
	source := func(index int) io.ReaderAt { return newNoise(cfg.RunID, index, cfg.MediaSize) }
	if cfg.Images {
		var err error
		if source, _, err = imageSource(cfg.MediaSize); err != nil {
			return err
		}
	}
	for i := lo; i < hi; i++ {
		user := fmt.Sprintf("%s-%d-m", cfg.RunID, i)
		tok, err := e.dial.token(user)
		if err != nil {
			return err
		}
		base, err := httpBase(cfg.Targets[i%len(cfg.Targets)])
		if err != nil {
			return err
		}
		s := &mediaStream{user: user, h: &client.HTTP{BaseURL: base, Token: tok, Client: hc}}
		for f := i; f < cfg.Files; f += cfg.Streams {
			mf := &mediaFile{index: f, src: source(f)}
			s.files = append(s.files, mf)
			files = append(files, mf)
		}
		streams = append(streams, s)
	}
	// The expected hashes, before anything is timed.
	parallel(ctx, len(files), runtime.GOMAXPROCS(0), func(i int) {
		h := sha256.New()
		_, _ = io.Copy(h, io.NewSectionReader(files[i].src, 0, cfg.MediaSize))
		files[i].sha = hex.EncodeToString(h.Sum(nil))
	})

	if err := e.barrier(ctx, "start"); err != nil {
		return err
	}
	up := e.st.hist(histUpload)
	var uploaded atomic.Int64
	var firstErr error
	var once sync.Once
	parallel(ctx, len(streams), len(streams), func(k int) {
		for _, f := range streams[k].files {
			if err := mediaUpload(ctx, e, streams[k], f, up); err != nil {
				once.Do(func() { firstErr = err })
			} else {
				uploaded.Add(1)
			}
		}
	})
	if len(files) > 0 && uploaded.Load() == 0 && firstErr != nil {
		// Nothing to measure: say why rather than report zeros.
		return fmt.Errorf("loadgen: media: no upload succeeded, the first failed with: %w (does the node serve %s?)", firstErr, client.UploadsPath)
	}
	if err := e.barrier(ctx, "uploaded"); err != nil {
		return err
	}
	down := e.st.hist(histDownload)
	parallel(ctx, len(streams), len(streams), func(k int) {
		for _, f := range streams[k].files {
			if f.id != "" {
				mediaDownload(ctx, e, streams[k], f, down)
			}
		}
	})
	if err := e.barrier(ctx, "downloaded"); err != nil {
		return err
	}
	return runMediaRef(ctx, e, streams, hc)
}

// mediaUpload uploads one file and checks the node's account of it.
func mediaUpload(ctx context.Context, e *env, s *mediaStream, f *mediaFile, h *hist) error {
	size := e.cfg.MediaSize
	name := fmt.Sprintf("imbench-%d.bin", f.index)
	start := time.Now()
	var file client.File
	var err error
	if e.cfg.SimpleUpload {
		file, err = s.h.UploadSimple(ctx, io.NewSectionReader(f.src, 0, size), name)
		if err == nil {
			e.st.upBytes.Add(size)
		}
	} else {
		var sent int64 // the client calls Progress in order, never decreasing
		file, err = s.h.Upload(ctx, f.src, size, name, client.UploadOptions{ChunkSize: e.cfg.ChunkSize,
			Progress: func(done, _ int64) { e.st.upBytes.Add(done - sent); sent = done }})
	}
	if err != nil {
		e.st.mediaFailed.Add(1)
		e.st.fail("upload", err)
		return err
	}
	h.record(time.Since(start))
	e.st.upFiles.Add(1)
	f.id = file.ID
	if file.Size != size || file.SHA256 != f.sha {
		e.check.Corrupt(s.user, file.ID, fmt.Sprintf("the node has %d bytes with sha256 %s; %d with sha256 %s were sent", file.Size, file.SHA256, size, f.sha))
	}
	return nil
}

// mediaDownload downloads one file and checks its bytes.
func mediaDownload(ctx context.Context, e *env, s *mediaStream, f *mediaFile, h *hist) {
	sum := sha256.New()
	start := time.Now()
	_, err := s.h.Download(ctx, f.id, 0, &countingWriter{w: sum, n: &e.st.downBytes}, 0)
	if err != nil {
		e.st.mediaFailed.Add(1)
		e.st.fail("download", err)
		return
	}
	h.record(time.Since(start))
	e.st.downFiles.Add(1)
	if got := hex.EncodeToString(sum.Sum(nil)); got != f.sha {
		e.check.Corrupt(s.user, f.id, fmt.Sprintf("downloaded bytes have sha256 %s; those uploaded %s", got, f.sha))
	}
}

// countingWriter adds what it writes to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func summarizeMedia(r *Report, t *total, marks map[string]Mark) {
	r.window(t, marks, "start", "downloaded")
	phase := func(name, from, to, bytesKey, filesKey string) {
		secs := marks[to].At.Sub(marks[from].At).Seconds()
		bytes := t.at[to].Counts[bytesKey] - t.at[from].Counts[bytesKey]
		files := t.at[to].Counts[filesKey] - t.at[from].Counts[filesKey]
		if filesKey != "" {
			r.Figures[name+"_files"] = float64(files)
		}
		r.Figures[name+"_mib"] = round(float64(bytes)/(1<<20), 1)
		r.Figures[name+"_s"] = round(secs, 3)
		if secs > 0 {
			r.Figures[name+"_mib_per_s"] = round(float64(bytes)/(1<<20)/secs, 1)
			if filesKey != "" {
				r.Figures[name+"_files_per_s"] = round(float64(files)/secs, 1)
			}
		}
		if m0, m1 := marks[from].Node, marks[to].Node; m0.OK && m1.OK && !strings.HasPrefix(name, "ref_") {
			r.Figures["node_cpu_s_"+name] = round(m1.CPU-m0.CPU, 2)
		}
	}
	phase("upload", "start", "uploaded", "up_bytes", "up_files")
	phase("download", "uploaded", "downloaded", "down_bytes", "down_files")
	// The reference (mediaref.go), and the node as a fraction of it.
	phase("ref_upload", "ref-start", "ref-uploaded", "ref_up_bytes", "")
	phase("ref_download", "ref-uploaded", "ref-downloaded", "ref_down_bytes", "")
	for _, p := range []string{"upload", "download"} {
		if ref := r.Figures["ref_"+p+"_mib_per_s"]; ref > 0 {
			r.Figures[p+"_vs_ref"] = round(r.Figures[p+"_mib_per_s"]/ref, 3)
		}
	}
	if n := t.counts["media_failed"]; n > 0 {
		r.Figures["failed_transfers"] = float64(n)
	}
}

// httpBase derives a node's HTTP API address from its WebSocket URL.
func httpBase(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	return httpURL(target, strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/ws"))
}

// noisePrefix starts every generated file, so that no file's first bytes
// happen to look like a type the node refuses (an executable's "MZ").
const noisePrefix = "imbench\x00"

// noise is size bytes of AES-CTR keystream under a key of its own: random
// to the node, distinct per file, and readable at any offset without being
// stored, so that 100 MiB files or thousands of files cost no memory.
type noise struct {
	block cipher.Block
	size  int64
}

func newNoise(seed string, index int, size int64) *noise {
	key := sha256.Sum256([]byte(fmt.Sprintf("imbench media %s/%d", seed, index)))
	b, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return &noise{block: b, size: size}
}

// ReadAt implements io.ReaderAt.
func (n *noise) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("loadgen: negative offset")
	}
	if off >= n.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), n.size-off)]
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/aes.BlockSize))
	s := cipher.NewCTR(n.block, iv[:])
	var skip [aes.BlockSize]byte
	s.XORKeyStream(skip[:off%aes.BlockSize], skip[:off%aes.BlockSize])
	clear(p)
	s.XORKeyStream(p, p)
	if off < int64(len(noisePrefix)) {
		copy(p, noisePrefix[off:])
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// ParseSize parses a size in bytes: a number with an optional unit, B, KB,
// MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), case
// insensitive: "200KiB", "1.5 GiB", "4096".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v < 0 || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("loadgen: bad size %q: want a number and B, KB, MB, GB, KiB, MiB or GiB", s)
	}
	return int64(math.Round(v * mult)), nil
}

// SizeString formats a size as ParseSize reads it, in the largest binary
// unit it is a whole number of: "100MiB", "200KiB", "1000B".
func SizeString(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
