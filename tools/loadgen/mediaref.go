package loadgen

// The media workload's reference: after the node's phases, the same streams
// move the same files through a plain HTTP file server in this process,
// which writes each upload to a temporary file and syncs it, and serves it
// back with http.ServeFile (sendfile). It does what the node's store does to
// the bytes and nothing else (no tus, no hashing, no sniffing, no records),
// so it is this machine's ceiling for moving files over loopback HTTP to
// disk, measured in the same run; the report gives the node's throughput as
// a fraction of it.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// refServer is the reference file server.
type refServer struct {
	dir string
	srv *http.Server
	url string
}

func startRefServer() (*refServer, error) {
	dir, err := os.MkdirTemp("", "imbench-media-ref-*")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	r := &refServer{dir: dir, url: "http://" + l.Addr().String() + "/"}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *refServer) close() {
	_ = r.srv.Close()
	_ = os.RemoveAll(r.dir)
}

func (r *refServer) serve(w http.ResponseWriter, req *http.Request) {
	name := strings.TrimPrefix(req.URL.Path, "/")
	if _, err := strconv.Atoi(name); err != nil {
		http.Error(w, "bad name", http.StatusBadRequest)
		return
	}
	path := filepath.Join(r.dir, name)
	switch req.Method {
	case http.MethodPut:
		if err := writeSynced(path, req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		http.ServeFile(w, req, path)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// writeSynced writes body to a temporary file, syncs it and renames it to
// path, as the node's filesystem store does with an object.
func writeSynced(path string, body io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// runMediaRef moves every file of streams up to the reference server and
// back, between the barriers "ref-start", "ref-uploaded" and
// "ref-downloaded"; a failure ends the run (the reference has no reason to
// fail).
func runMediaRef(ctx context.Context, e *env, streams []*mediaStream, hc *http.Client) error {
	ref, err := startRefServer()
	if err != nil {
		return fmt.Errorf("loadgen: media reference server: %w", err)
	}
	defer ref.close()
	size := e.cfg.MediaSize
	do := func(req *http.Request, want int, w io.Writer) error {
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("loadgen: media reference %s: HTTP %d", req.Method, resp.StatusCode)
		}
		_, err = io.Copy(w, resp.Body)
		return err
	}
	phase := func(move func(f *mediaFile) error) error {
		errs := make([]error, len(streams))
		parallel(ctx, len(streams), len(streams), func(k int) {
			for _, f := range streams[k].files {
				if err := move(f); err != nil && errs[k] == nil {
					errs[k] = err
				}
			}
		})
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := e.barrier(ctx, "ref-start"); err != nil {
		return err
	}
	err = phase(func(f *mediaFile) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, ref.url+strconv.Itoa(f.index), io.NewSectionReader(f.src, 0, size))
		if err != nil {
			return err
		}
		req.ContentLength = size
		if err := do(req, http.StatusCreated, io.Discard); err != nil {
			return err
		}
		e.st.refUpBytes.Add(size)
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.barrier(ctx, "ref-uploaded"); err != nil {
		return err
	}
	err = phase(func(f *mediaFile) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.url+strconv.Itoa(f.index), nil)
		if err != nil {
			return err
		}
		return do(req, http.StatusOK, &countingWriter{w: io.Discard, n: &e.st.refDownBytes})
	})
	if err != nil {
		return err
	}
	return e.barrier(ctx, "ref-downloaded")
}
