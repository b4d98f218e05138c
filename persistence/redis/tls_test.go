package redisstore

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"actorim/internal/testpki"
	"actorim/persistence"
	"actorim/persistence/storetest"
)

// TestConformanceOverTLS runs the store's conformance suite against Debian's
// redis-server listening on TLS only, requiring client certificates
// (tls-auth-clients yes) and an ACL user with a password, the default user
// disabled. It also shows that plain TCP, a client without a certificate
// and a wrong password are refused.
func TestConformanceOverTLS(t *testing.T) {
	dir := t.TempDir()
	certs := writeTestCerts(t, dir)
	const user, password = "actorim", "tls-test-password-0123"
	// The password sits in a 0600 config file, not on redis-server's
	// command line.
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(conf, []byte("user default off\nuser "+user+" on >"+password+" ~* &* +@all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf,
		"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certs.serverCert, "--tls-key-file", certs.serverKey,
		"--tls-ca-cert-file", certs.ca.CertFile(), "--tls-auth-clients", "yes",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	good := certs.clientTLS(t, true)
	opts := Options{Username: user, Password: password, TLSConfig: good}
	waitTLSRedis(t, addr, opts, filepath.Join(dir, "redis.log"))

	refused := map[string]Options{
		"plain TCP":                  {Username: user, Password: password},
		"TLS without a certificate":  {Username: user, Password: password, TLSConfig: certs.clientTLS(t, false)},
		"wrong password":             {Username: user, Password: "wrong", TLSConfig: good},
		"the default user, disabled": {TLSConfig: good},
	}
	for name, o := range refused {
		o.Addr = addr
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := Open(ctx, o)
		cancel()
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		t.Logf("%s: refused: %v", name, err)
	}

	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openStore(t, addr, opts)
	})
}

// waitTLSRedis waits until the TLS server answers PING.
func waitTLSRedis(t *testing.T, addr string, o Options, logPath string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("redis-server over TLS on %s does not answer: %v\n%s", addr, err, lastLines(string(log), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testCerts struct {
	ca                                           *testpki.CA
	serverCert, serverKey, clientCert, clientKey string
}

// clientTLS trusts the test CA; withCert adds the client certificate.
func (c testCerts) clientTLS(t *testing.T, withCert bool) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: c.ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		pair, err := tls.LoadX509KeyPair(c.clientCert, c.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// writeTestCerts writes a CA, a server certificate for 127.0.0.1 and a
// client certificate into dir.
func writeTestCerts(t *testing.T, dir string) testCerts {
	t.Helper()
	c := testCerts{ca: testpki.New(t, dir, "redis test CA")}
	c.serverCert, c.serverKey = c.ca.Issue(t, testpki.Server("server"))
	c.clientCert, c.clientKey = c.ca.Issue(t, testpki.Client("client"))
	return c
}
