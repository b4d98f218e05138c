package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"actorim/client/mediatest"
	"actorim/tools/loadgen"
)

// mediaTarget serves the node's media service (mediatest) and returns its
// WebSocket-style target, as imbench derives the HTTP address from it.
// With corrupt, downloads come back with one byte changed.
func mediaTarget(t *testing.T, corrupt bool) string {
	t.Helper()
	api, err := mediatest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the service stops after the server.
	t.Cleanup(func() {
		if err := api.Close(); err != nil {
			t.Error(err)
		}
	})
	var h http.Handler = api
	if corrupt {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Count(r.URL.Path, "/") == 3 { // GET /v1/media/{id}
				w = &flipWriter{ResponseWriter: w}
			}
			api.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// flipWriter changes the 1000th byte of a response body.
type flipWriter struct {
	http.ResponseWriter
	n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if i := 1000 - f.n; i >= 0 && i < len(p) {
		p = bytes.Clone(p)
		p[i] ^= 0xff
	}
	f.n += len(p)
	return f.ResponseWriter.Write(p)
}

// mediaConfig is a small media run. Its RunID is fixed, as is then the
// noise of its files (seeded by RunID): the node sniffs a file's type from
// its first bytes, and fresh noise sometimes starts with a signature (about
// 4 files in 10,000; "MZ", an executable, is refused), which this noise
// does not.
func mediaConfig(target string) loadgen.Config {
	c := config(target)
	c.MediaSize, c.Streams, c.Files, c.ChunkSize = 300<<10+1, 4, 10, 128<<10
	c.RunID = "imbmedia"
	return c
}

// TestMediaWorkload runs the media workload against the media service: every
// file goes up and comes back intact, and the report counts them.
func TestMediaWorkload(t *testing.T) {
	target := mediaTarget(t, false)
	for i, tc := range []struct {
		name   string
		procs  int
		simple bool
	}{{"tus", 1, false}, {"tus-two-processes", 2, false}, {"simple", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mediaConfig(target)
			cfg.Procs, cfg.SimpleUpload = tc.procs, tc.simple
			cfg.RunID += strconv.Itoa(i) // users of their own on the shared target
			r := run(t, "media", cfg)
			f := r.Figures
			wantMiB := float64(int64(10*cfg.MediaSize)*10/(1<<20)) / 10
			if f["upload_files"] != 10 || f["download_files"] != 10 || f["upload_mib"] < wantMiB || f["download_mib"] < wantMiB ||
				f["upload_mib_per_s"] <= 0 || f["download_files_per_s"] <= 0 {
				t.Fatalf("figures %v", f)
			}
			if r.Latency["upload"].Count != 10 || r.Latency["download"].Count != 10 || r.Latency["upload"].P50 <= 0 || r.Procs != tc.procs {
				t.Fatalf("latency %+v, procs %d", r.Latency, r.Procs)
			}
			var js bytes.Buffer
			if err := r.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back struct {
				Workload string             `json:"workload"`
				Figures  map[string]float64 `json:"figures"`
				Latency  map[string]struct {
					P50, P99 float64
				} `json:"latency_ms"`
				Passed bool `json:"passed"`
			}
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Workload != "media" || !back.Passed ||
				back.Figures["download_mib_per_s"] <= 0 || back.Latency["download"].P99 <= 0 {
				t.Fatalf("JSON report: %v\n%s", err, js.String())
			}
		})
	}
}

// TestMediaWorkloadCatchesCorruption: a byte changed on the way back is a
// violation, and the run fails.
func TestMediaWorkloadCatchesCorruption(t *testing.T) {
	cfg := mediaConfig(mediaTarget(t, true))
	cfg.Files = 5
	r, err := loadgen.Run(context.Background(), "media", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Passed || r.Checks.Corrupt != 5 || len(r.Checks.Examples) == 0 || r.Checks.Examples[0].Kind != loadgen.KindCorrupt ||
		!strings.Contains(r.Summary, "corrupt files 5") {
		t.Fatalf("passed %v, checks %+v, summary %q", r.Passed, r.Checks, r.Summary)
	}
	var table bytes.Buffer
	_ = r.WriteTable(&table)
	if !strings.Contains(table.String(), "corrupt: user ") {
		t.Fatalf("table without the example:\n%s", table.String())
	}
}

func TestMediaConfig(t *testing.T) {
	d := loadgen.Config{}.WithDefaults("media")
	if d.Files != d.Streams || d.MediaSize != 1<<20 || d.ChunkSize != 8<<20 {
		t.Fatalf("defaults %+v", d)
	}
	cfg := mediaConfig("ws://127.0.0.1:1/ws")
	cfg.Files = 2
	if _, err := loadgen.Run(context.Background(), "media", cfg); err == nil || !strings.Contains(err.Error(), "--files (2) must be at least --streams (4)") {
		t.Fatalf("fewer files than streams: %v", err)
	}
	nothing := httptest.NewServer(http.NotFoundHandler()) // a node without the media API
	defer nothing.Close()
	cfg = mediaConfig("ws" + strings.TrimPrefix(nothing.URL, "http") + "/ws")
	if _, err := loadgen.Run(context.Background(), "media", cfg); err == nil || !strings.Contains(err.Error(), "no upload succeeded") {
		t.Fatalf("no media API: %v", err)
	}
	for s, want := range map[string]int64{"100MiB": 100 << 20, "200KiB": 200 << 10, "1.5 GiB": 3 << 29, "4096": 4096, "2mb": 2e6, "7B": 7} {
		if got, err := loadgen.ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1KiB", "10 parsecs", "1e30GiB"} {
		if _, err := loadgen.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q): no error", bad)
		}
	}
	for n, want := range map[int64]string{100 << 20: "100MiB", 200 << 10: "200KiB", 1000: "1000B", 3 << 30: "3GiB"} {
		if got := loadgen.SizeString(n); got != want {
			t.Errorf("SizeString(%d) = %q, want %q", n, got, want)
		}
	}
}
