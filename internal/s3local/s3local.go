// Package s3local starts, for tests, the S3-compatible server of
// deploy/local/s3.sh (SeaweedFS on loopback) on free ports, and stops it.
// The script needs the server built (`make deps`); Start says so when it is
// not.
package s3local

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The credentials s3.sh gives its server.
const (
	AccessKey = "actorim-test"
	SecretKey = "actorim-test-secret"
)

// ports is how many ports from the base s3.sh uses: S3, the servers behind
// it, and S3 over TLS at base+10.
const ports = 11

// Server is one running SeaweedFS.
type Server struct {
	// Port serves S3 over HTTP on 127.0.0.1; Port+10 over TLS when started
	// with S3_TLS_DIR.
	Port   int
	script string
	dir    string
}

// Endpoint is the host:port of S3 over HTTP.
func (s *Server) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Start runs `script start PORT dir` with env added to the environment (for
// S3_TLS_DIR) on a base port below Linux's ephemeral range with the ports
// after it free, trying again when another process takes one meanwhile. The
// server stops with Stop, or when this process ends (S3_WATCH_PID).
func Start(script, dir string, env ...string) (*Server, error) {
	var err error
	for range 5 {
		base := 20000 + rand.IntN(12000)
		if !portsFree(base, ports) {
			continue
		}
		cmd := exec.Command(script, "start", strconv.Itoa(base), dir)
		cmd.Env = append(append(os.Environ(), env...), "S3_WATCH_PID="+strconv.Itoa(os.Getpid()))
		out, cerr := cmd.CombinedOutput()
		if cerr == nil {
			return &Server{Port: base, script: script, dir: dir}, nil
		}
		err = fmt.Errorf("%s start %d: %v\n%s", script, base, cerr, out)
		if strings.Contains(string(out), "make deps") {
			return nil, err // not built: no retry helps
		}
	}
	if err == nil {
		err = fmt.Errorf("s3local: no run of %d free ports found", ports)
	}
	return nil, err
}

// Stop stops the server.
func (s *Server) Stop() error {
	if out, err := exec.Command(s.script, "stop", s.dir).CombinedOutput(); err != nil {
		return errors.Join(err, errors.New(string(out)))
	}
	return nil
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}
