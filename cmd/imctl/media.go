package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/client"
	"actorim/protos/clientpb"
)

// mediaFlags are send's flags for a file.
type mediaFlags struct {
	path, fileID, caption string
	voice                 bool
	duration              time.Duration
}

// uploadContent uploads the file of send --file (or looks up the one of
// --file-id) and returns the content that carries it, its kind picked from
// the type the node sniffed.
func (a *app) uploadContent(ctx context.Context, mf mediaFlags) (*clientpb.Content, client.File, error) {
	p, err := a.asProfile()
	if err != nil {
		return nil, client.File{}, err
	}
	var f client.File
	if mf.fileID != "" {
		ictx, cancel := a.deadline(ctx)
		f, err = a.http(p.Token).Info(ictx, mf.fileID, 0)
		cancel()
		mf.path = mf.fileID
	} else {
		f, err = a.uploadFile(ctx, a.http(p.Token), p.UserID, mf.path)
	}
	if err != nil {
		return nil, client.File{}, err
	}
	kind := client.MediaKind(f.MIMEType)
	switch {
	case mf.voice && kind != "audio":
		return nil, f, fmt.Errorf("--voice needs an audio file; %s is %s (uploaded as file %s)", mf.path, f.MIMEType, f.ID)
	case mf.duration > 0 && kind != "audio" && kind != "video":
		return nil, f, fmt.Errorf("--duration is for audio and video; %s is %s (uploaded as file %s)", mf.path, f.MIMEType, f.ID)
	}
	c, err := mediaContent(kind, &clientpb.Media{FileId: f.ID, Caption: mf.caption, Voice: mf.voice, DurationMs: uint32(mf.duration.Milliseconds())})
	return c, f, err
}

// uploadFile uploads path with a progress meter on stderr. An upload cut
// short (Ctrl-C, the network) is remembered in the profile directory, and
// the same command resumes it from what the node has.
func (a *app) uploadFile(ctx context.Context, h *client.HTTP, user, path string) (client.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return client.File{}, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return client.File{}, err
	}
	if !fi.Mode().IsRegular() {
		return client.File{}, fmt.Errorf("%s is not a regular file", path)
	}
	abs, _ := filepath.Abs(path)
	key := fmt.Sprintf("%s|%d|%d", abs, fi.Size(), fi.ModTime().UnixNano())
	pending := &pendingUploads{home: a.profileHome(), user: user}
	m := newMeter(a.stderr, "uploading "+filepath.Base(path))
	opts := client.UploadOptions{Progress: m.update}

	var f client.File
	if u := pending.get(key); u != "" {
		fmt.Fprintf(a.stderr, "imctl: resuming the upload of %s\n", path)
		f, err = h.ResumeUpload(ctx, u, src, fi.Size(), opts)
		if isGone(err) {
			fmt.Fprintln(a.stderr, "imctl: the node no longer has that upload; starting again")
			pending.put(key, "")
			m = newMeter(a.stderr, "uploading "+filepath.Base(path))
			opts.Progress = m.update
		} else if err != nil {
			m.stop()
			return f, a.keepOrForget(pending, key, err)
		} else {
			pending.put(key, "")
			m.done(fi.Size(), "uploaded")
			return f, nil
		}
	}
	opts.Created = func(u string) { pending.put(key, u) }
	f, err = h.Upload(ctx, src, fi.Size(), filepath.Base(path), opts)
	if err != nil {
		m.stop()
		return f, a.keepOrForget(pending, key, err)
	}
	pending.put(key, "")
	m.done(fi.Size(), "uploaded")
	return f, nil
}

// keepOrForget keeps an upload that may be resumed (cut short by Ctrl-C or
// the network) and forgets one the node refused.
func (a *app) keepOrForget(pending *pendingUploads, key string, err error) error {
	var e *client.Error
	if errors.As(err, &e) && e.Status/100 == 4 && e.Status != 408 && e.Status != 429 {
		pending.put(key, "")
		return err
	}
	if pending.get(key) != "" {
		return fmt.Errorf("%w (the same command resumes the upload)", err)
	}
	return err
}

func isGone(err error) bool {
	return errors.Is(err, client.ErrUploadMismatch) || client.CodeOf(err) == clientpb.ErrorCode_ERR_NOT_FOUND
}

// pendingUploads are the URLs of uploads begun and not finished, by file
// (path, size and modification time), in <home>/<user>.uploads.json.
type pendingUploads struct {
	home, user string
	mu         sync.Mutex
}

func (p *pendingUploads) path() string { return filepath.Join(p.home, p.user+".uploads.json") }

func (p *pendingUploads) load() map[string]string {
	m := map[string]string{}
	if data, err := os.ReadFile(p.path()); err == nil {
		_ = json.Unmarshal(data, &m) // a damaged file only loses resumption
	}
	return m
}

func (p *pendingUploads) get(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.load()[key]
}

// put records url for key, or forgets key when url is empty. Failing to
// record only loses resumption, so errors are ignored.
func (p *pendingUploads) put(key, url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.load()
	if url == "" {
		if _, ok := m[key]; !ok {
			return
		}
		delete(m, key)
	} else {
		m[key] = url
	}
	if len(m) == 0 {
		_ = os.Remove(p.path())
		return
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	_ = os.MkdirAll(p.home, 0o700)
	_ = os.WriteFile(p.path(), append(data, '\n'), 0o600)
}

func (a *app) downloadCmd() *ffcli.Command {
	fs := a.flagSet("download")
	msg := fs.Uint64("msg", 0, "`ID` of a message carrying the file: needed by anyone but its uploader")
	out := fs.String("o", "", "write to this `PATH` (default: the file's name in the current directory; - for stdout); a shorter file there is resumed")
	thumb := fs.Bool("thumb", false, "download the image's thumbnail instead")
	return a.command(fs, "--as USER download FILE_ID [--msg ID] [-o PATH] [--thumb]",
		"download a file, resuming a partial one, and check its SHA-256", 1, 1,
		func(ctx context.Context, args []string) error {
			p, err := a.asProfile()
			if err != nil {
				return err
			}
			return a.download(ctx, a.http(p.Token), args[0], *msg, *out, *thumb)
		})
}

// download fetches a file into out, resuming from the bytes out already
// holds, and checks the whole file's SHA-256 against the node's.
func (a *app) download(ctx context.Context, h *client.HTTP, id string, msg uint64, out string, thumb bool) error {
	ictx, cancel := a.deadline(ctx)
	info, err := h.Info(ictx, id, msg)
	cancel()
	if err != nil {
		return err
	}
	if out == "" {
		out = localName(info.Name, id)
		if thumb {
			out = "thumb-" + out
		}
	}
	if thumb {
		return a.downloadThumb(ctx, h, id, msg, out)
	}
	if out == "-" {
		hash := sha256.New()
		_, err := h.Download(ctx, id, msg, io.MultiWriter(a.stdout, hash), 0)
		return a.checkSum(err, id, out, info, hash.Sum(nil))
	}

	var offset int64
	if fi, err := os.Stat(out); err == nil {
		switch {
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", out)
		case fi.Size() > info.Size:
			return fmt.Errorf("%s is larger (%d bytes) than file %s (%d bytes): remove it or give another -o", out, fi.Size(), id, info.Size)
		}
		offset = fi.Size()
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if offset > 0 && offset < info.Size {
		fmt.Fprintf(a.stderr, "imctl: %s has %s of %s: resuming\n", out, humanBytes(offset), humanBytes(info.Size))
	}
	m := newMeter(a.stderr, "downloading "+filepath.Base(out))
	m.update(offset, info.Size)
	w := &meterWriter{w: f, m: m, done: offset, total: info.Size}
	d, err := h.Download(ctx, id, msg, w, offset)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.stop()
		return fmt.Errorf("%w (%s holds %s of %s: the same command resumes)", err, out, humanBytes(d.Offset+d.Written), humanBytes(info.Size))
	}
	m.done(info.Size, "downloaded")
	sum, err := fileSHA256(out)
	return a.checkSum(err, id, out, info, sum)
}

// downloadThumb fetches an image's thumbnail into out ("-": stdout).
func (a *app) downloadThumb(ctx context.Context, h *client.HTTP, id string, msg uint64, out string) error {
	var w io.Writer = a.stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	d, err := h.DownloadThumb(ctx, id, msg, w)
	if err != nil || out == "-" {
		return err
	}
	return a.print(map[string]any{"file_id": id, "path": out, "size": d.Written, "mime_type": d.MIMEType},
		"downloaded the thumbnail of %s to %s: %s, %s\n", id, out, humanBytes(d.Written), d.MIMEType)
}

// checkSum reports a download: its SHA-256, checked against the node's.
func (a *app) checkSum(err error, id, out string, info client.File, sum []byte) error {
	if err != nil {
		return err
	}
	got := hex.EncodeToString(sum)
	if info.SHA256 != "" && got != info.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s, but the node says %s: remove it and download again", out, got, info.SHA256)
	}
	if out == "-" {
		fmt.Fprintf(a.stderr, "imctl: sha256 %s verified\n", got)
		return nil
	}
	return a.print(map[string]any{"file_id": id, "path": out, "size": info.Size, "mime_type": info.MIMEType, "sha256": got},
		"downloaded %s to %s: %s, %s, sha256 %s verified\n", id, out, humanBytes(info.Size), info.MIMEType, got)
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// localName is a safe local file name for a download: the file's base
// name, or its id when the name is empty or a path trick.
func localName(name, id string) string {
	base := filepath.Base(filepath.FromSlash(strings.ReplaceAll(name, `\`, "/")))
	if base == "." || base == ".." || base == "/" || base == "" || strings.HasPrefix(base, ".") {
		return id
	}
	return base
}

// meter shows a transfer's progress on stderr: one line rewritten in place
// on a terminal, a line every 5 seconds otherwise.
type meter struct {
	w     io.Writer
	what  string
	tty   bool
	start time.Time

	mu      sync.Mutex
	last    time.Time
	base    int64 // the bytes done at the first update: what a resumed transfer had
	started bool
	printed bool
}

func newMeter(w io.Writer, what string) *meter {
	m := &meter{w: w, what: what, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			m.tty = true
		}
	}
	if !m.tty {
		m.last = m.start // the first line after 5 s
	}
	return m
}

// update shows done of total bytes, at most every 100ms on a terminal and
// every 5s otherwise.
func (m *meter) update(done, total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		m.base, m.started = done, true
	}
	now := time.Now()
	every := 5 * time.Second
	if m.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(m.last) < every || done >= total {
		return // the end is done's line
	}
	m.last = now
	line := fmt.Sprintf("imctl: %s: %3d%% %s of %s, %s/s", m.what, percent(done, total), humanBytes(done), humanBytes(total),
		humanBytes(m.rate(done-m.base, now)))
	if m.tty {
		fmt.Fprintf(m.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(m.w, line)
	}
	m.printed = true
}

// stop ends the line being rewritten.
func (m *meter) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tty && m.printed {
		fmt.Fprintln(m.w)
	}
	m.printed = false
}

// done prints the closing line: size, time and rate.
func (m *meter) done(total int64, verb string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := time.Since(m.start)
	prefix := ""
	if m.tty && m.printed {
		prefix = "\r\033[K"
	}
	_, what, _ := strings.Cut(m.what, " ")
	moved := total - m.base
	resumed := ""
	if m.base > 0 {
		resumed = fmt.Sprintf(" (resumed: %s this time)", humanBytes(moved))
	}
	fmt.Fprintf(m.w, "%simctl: %s %s: %s%s in %s (%s/s)\n", prefix, verb, what, humanBytes(total), resumed,
		el.Round(time.Millisecond), humanBytes(m.rate(moved, time.Now())))
}

// rate is bytes per second since the start.
func (m *meter) rate(bytes int64, now time.Time) int64 {
	return int64(float64(bytes) / max(now.Sub(m.start).Seconds(), 0.001))
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return done * 100 / total
}

// meterWriter counts bytes written through it into a meter.
type meterWriter struct {
	w           io.Writer
	m           *meter
	done, total int64
}

func (w *meterWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.done += int64(n)
	w.m.update(w.done, w.total)
	return n, err
}

// humanBytes formats a size: "512 B", "120 KiB", "3.4 MiB", "1.2 GiB".
func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", (n+1<<9)>>10)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
