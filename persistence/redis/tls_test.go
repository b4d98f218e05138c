package redisstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
		"--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "yes",
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

type testCerts struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// clientTLS trusts the test CA; withCert adds the client certificate.
func (c testCerts) clientTLS(t *testing.T, withCert bool) *tls.Config {
	t.Helper()
	pemCA, err := os.ReadFile(c.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
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
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	c := testCerts{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, c.ca, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, IPAddresses: ips,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writePEM(t, certPath, "CERTIFICATE", der)
		writePEM(t, keyPath, "EC PRIVATE KEY", kder)
		return certPath, keyPath
	}
	c.serverCert, c.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	c.clientCert, c.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return c
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}
