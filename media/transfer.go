package media

import (
	"io"
	"net/http"
	"time"
)

// transferIdle is how long an upload or download may stall. While bytes
// flow, each read or write pushes the connection's deadline this far: the
// HTTP server's whole-request timeouts (20 s to read, 30 s to write at the
// gateway's defaults) would cut off a large file on a slow link. tusd does
// the same for its requests (its NetworkTimeout, 60 s).
const transferIdle = 60 * time.Second

// idleReader extends the request's read deadline before every read.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func newIdleReader(w http.ResponseWriter, r io.Reader) io.Reader {
	return &idleReader{r: r, rc: http.NewResponseController(w)}
}

func (r *idleReader) Read(p []byte) (int, error) {
	_ = r.rc.SetReadDeadline(time.Now().Add(transferIdle)) // unsupported: the server's timeouts stand
	return r.r.Read(p)
}

// idleWriter extends the response's write deadline before every write.
type idleWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func newIdleWriter(w http.ResponseWriter) *idleWriter {
	return &idleWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
}

func (w *idleWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(transferIdle))
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
