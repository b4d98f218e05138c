package media

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// patchThenDrop sends a PATCH of data at offset 0 declaring all of it, but
// writes only the first part bytes and closes the connection: an upload
// interrupted half-way.
func (e *testEnv) patchThenDrop(t *testing.T, user, loc string, data []byte, part int) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nTus-Resumable: 1.0.0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		u.Path, u.Host, user, len(data))
	w.Write(data[:part])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestTusResumesAfterInterruption(t *testing.T) {
	env := newTestService(t)
	data := jpegBytes(t, 900, 700)
	size := int64(len(data))
	loc := env.tusCreate(t, "alice", "holiday.jpg", size)
	if n := env.usage(t, "alice"); n != size {
		t.Fatalf("usage %d after creation, want the declared %d", n, size)
	}

	half := size / 2
	env.patchThenDrop(t, "alice", loc, data, int(half))
	// The server keeps what arrived. Wait until it has written it: a HEAD
	// sooner would interrupt that PATCH (as tus has a new request on an
	// upload do) and the resume would start earlier.
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(env.svc.metrics.received) < float64(half) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	offset, _ := env.tusOffset(t, "alice", loc)
	if offset != half {
		t.Fatalf("offset %d after sending %d of %d bytes", offset, half, size)
	}
	t.Logf("interrupted at %d of %d bytes; resuming", offset, size)
	res, body := env.tusPatch(t, "alice", loc, offset, data[offset:])
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("resume: %d %s", res.StatusCode, body)
	}
	if got := testutil.ToFloat64(env.svc.metrics.received); got != float64(size) {
		t.Fatalf("server wrote %v bytes for a %d-byte file", got, size)
	}

	id := loc[len(loc)-fileIDLen:]
	res, body = env.request(t, "GET", "/v1/media/"+id+"/info", "alice", nil)
	var f fileJSON
	if res.StatusCode != 200 || json.Unmarshal(body, &f) != nil {
		t.Fatalf("info: %d %s", res.StatusCode, body)
	}
	if f.FileID != id || f.Name != "holiday.jpg" || f.SHA256 != sha(data) || f.Width != 900 || f.Thumbnail == nil || f.Blurhash == "" {
		t.Fatalf("info %+v", f)
	}
	if f.QuotaUsed != size {
		t.Fatalf("usage %d, want %d", f.QuotaUsed, size)
	}
	res, body = env.request(t, "GET", "/v1/media/"+id, "alice", nil)
	if sha(body) != sha(data) {
		t.Fatalf("download: %d, sha256 differs", res.StatusCode)
	}
	// The upload is done: nothing left of it on disk.
	if _, status := env.tusOffset(t, "alice", loc); status != 404 {
		t.Fatalf("HEAD after finishing: %d", status)
	}
}

func TestTusCreationWithUpload(t *testing.T) {
	env := newTestService(t)
	data := randomBytes(5000, 8)
	res, body := env.request(t, "POST", "/v1/uploads/", "alice", bytes.NewReader(data),
		"Tus-Resumable", "1.0.0", "Upload-Length", "5000", "Content-Type", "application/offset+octet-stream")
	if res.StatusCode != http.StatusCreated || res.Header.Get("Upload-Offset") != "5000" {
		t.Fatalf("create with upload: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	env.fileOf(t, loc[len(loc)-fileIDLen:])
}

func TestTusOwnerOnly(t *testing.T) {
	env := newTestService(t)
	loc := env.tusCreate(t, "alice", "a.bin", 1000)
	res, body := env.tusPatch(t, "alice", loc, 0, randomBytes(400, 1))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("patch: %d %s", res.StatusCode, body)
	}
	for _, m := range []string{"HEAD", "PATCH", "DELETE"} {
		res, body := env.request(t, m, loc, "bob", bytes.NewReader(randomBytes(10, 2)),
			"Tus-Resumable", "1.0.0", "Content-Type", "application/offset+octet-stream", "Upload-Offset", "400")
		if res.StatusCode != 404 {
			t.Fatalf("bob's %s: %d %s", m, res.StatusCode, body)
		}
	}
	// Nor through the method override.
	res, _ = env.request(t, "POST", loc, "bob", nil, "Tus-Resumable", "1.0.0", "X-HTTP-Method-Override", "DELETE")
	if res.StatusCode != 404 {
		t.Fatalf("bob's overridden DELETE: %d", res.StatusCode)
	}
	if res, _ := env.request(t, "HEAD", loc, "", nil); res.StatusCode != 401 {
		t.Fatalf("HEAD without a user: %d", res.StatusCode)
	}
	if n, _ := env.tusOffset(t, "alice", loc); n != 400 {
		t.Fatalf("alice's offset %d", n)
	}

	// Termination releases the charge.
	if n := env.usage(t, "alice"); n != 1000 {
		t.Fatalf("usage %d", n)
	}
	res, body = env.request(t, "DELETE", loc, "alice", nil, "Tus-Resumable", "1.0.0")
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", res.StatusCode, body)
	}
	if n := env.usage(t, "alice"); n != 0 {
		t.Fatalf("usage %d after termination", n)
	}
	if _, status := env.tusOffset(t, "alice", loc); status != 404 {
		t.Fatalf("HEAD after DELETE: %d", status)
	}
}

func TestTusNeedsUploadLength(t *testing.T) {
	env := newTestService(t)
	res, body := env.request(t, "POST", "/v1/uploads/", "alice", nil, "Tus-Resumable", "1.0.0", "Upload-Defer-Length", "1")
	expectError(t, res, body, 400, "ERR_BAD_REQUEST")
}
