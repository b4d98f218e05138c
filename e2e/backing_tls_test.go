package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"actorim/internal/nodeproc"
	"actorim/internal/testpki"
)

// TestNodeOverTLSRedis: a node keeps its store in a Redis that listens on
// TLS only and requires a client certificate and a password
// (deploy/local/redis.sh's TLS mode); users register and chat through it.
// The password reaches neither process's command line, and a node that
// dials the same Redis without TLS refuses to start.
func TestNodeOverTLSRedis(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "tls")
	writeServerCerts(t, certs)
	const password = "redis-tls-e2e-password-42"
	pwFile := filepath.Join(dir, "redis.password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePortRun(t, 1))
	redisDir := filepath.Join(dir, "redis")
	script := filepath.Join("..", "deploy", "local", "redis.sh")
	env := append(os.Environ(), "REDIS_TLS_DIR="+certs, "REDIS_PASSWORD_FILE="+pwFile)
	start := exec.Command(script, "start", port, redisDir)
	start.Env = env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("redis.sh start (TLS): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		stop := exec.Command(script, "stop", redisDir)
		stop.Env = env
		_ = stop.Run()
	})

	redisArgs := []string{"--store", "redis", "--redis", "127.0.0.1:" + port, "--redis-password-file", pwFile,
		"--redis-prefix", "tls-e2e:"}
	p := startProcess(t, t.TempDir(), freeAddr(t), append(redisArgs,
		"--redis-tls-ca", filepath.Join(certs, "ca.pem"),
		"--redis-tls-cert", filepath.Join(certs, "client.pem"),
		"--redis-tls-key", filepath.Join(certs, "client.key"))...)
	n := p.node()
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	b := n.connect(t, bob, "b", u64(0))
	a.send(t, bob, "over TLS Redis")
	if got := texts(b.collect(t, 1, 5*time.Second)); got[0] != "over TLS Redis" {
		t.Fatalf("bob got %v", got)
	}

	pidBytes, err := os.ReadFile(filepath.Join(redisDir, "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]string{"imnode": strconv.Itoa(p.Pid()), "redis-server": string(bytes.TrimSpace(pidBytes))} {
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(cmdline, []byte(password)) {
			t.Errorf("the Redis password is on %s's command line", name)
		}
	}

	// Plain TCP to the TLS port: the node must not start.
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := nodeproc.Run(c, nodeproc.Config{Bin: buildImnode(t), DataDir: t.TempDir(), Listen: "127.0.0.1:0", Args: redisArgs})
	if c.Err() != nil {
		t.Fatalf("a node without --redis-tls neither started nor gave up within 20 s:\n%s", out)
	}
	if err == nil {
		t.Fatalf("a node without --redis-tls started against a TLS-only Redis:\n%s", out)
	}
}

// writeServerCerts writes into dir a CA (ca.pem), a server certificate for
// 127.0.0.1 (server.pem, server.key) and a client certificate (client.pem,
// client.key), as deploy/local/redis.sh's and clickhouse.sh's TLS modes expect.
func writeServerCerts(t *testing.T, dir string) {
	t.Helper()
	ca := testpki.New(t, dir, "test CA")
	ca.Issue(t, testpki.Server("server"))
	ca.Issue(t, testpki.Client("client"))
}

// TestNodeArchivesOverTLSClickHouse: a node archives into a ClickHouse
// (Debian's 18.16) whose native protocol is served on TLS only, requires a
// client certificate and a password (deploy/local/clickhouse.sh's TLS mode),
// with the --clickhouse-tls-* and --clickhouse-password-file flags; a
// client without a certificate is refused.
func TestNodeArchivesOverTLSClickHouse(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "tls")
	writeServerCerts(t, certs)
	const password = "clickhouse-tls-e2e-42"
	pwFile := filepath.Join(dir, "ch.password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePortRun(t, 2)
	native, httpPort := strconv.Itoa(ports), strconv.Itoa(ports+1)
	chDir := filepath.Join(dir, "clickhouse")
	env := append(os.Environ(), "CLICKHOUSE_TLS_DIR="+certs, "CLICKHOUSE_PASSWORD_FILE="+pwFile)
	start := exec.Command(chScript, "start", chDir, native, httpPort)
	start.Env = env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh start (TLS): %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = chRun("stop", chDir) })

	db := fmt.Sprintf("e2e_tls_%d", os.Getpid())
	p := startProcess(t, t.TempDir(), freeAddr(t),
		"--clickhouse", "127.0.0.1:"+native, "--clickhouse-database", db, "--clickhouse-migrate",
		"--clickhouse-password-file", pwFile, "--clickhouse-tls-ca", filepath.Join(certs, "ca.pem"),
		"--clickhouse-tls-cert", filepath.Join(certs, "client.pem"), "--clickhouse-tls-key", filepath.Join(certs, "client.key"))
	n := p.node()
	alice, bob := n.newUser(t, "alice"), n.newUser(t, "bob")
	a := n.connect(t, alice, "a", nil)
	for i := range 3 {
		a.send(t, bob, fmt.Sprintf("archived over TLS #%d", i))
	}

	tlsCfg := func(withCert bool) *tls.Config {
		pool := x509.NewCertPool()
		b, _ := os.ReadFile(filepath.Join(certs, "ca.pem"))
		pool.AppendCertsFromPEM(b)
		c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if withCert {
			pair, err := tls.LoadX509KeyPair(filepath.Join(certs, "client.pem"), filepath.Join(certs, "client.key"))
			if err != nil {
				t.Fatal(err)
			}
			c.Certificates = []tls.Certificate{pair}
		}
		return c
	}
	open := func(withCert bool) driver.Conn {
		conn, err := ch.Open(&ch.Options{Addr: []string{"127.0.0.1:" + native}, TLS: tlsCfg(withCert),
			Auth: ch.Auth{Database: db, Username: "default", Password: password}, DialTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	err := open(false).Ping(context.Background())
	if err == nil {
		t.Fatal("ClickHouse answered a client without a certificate")
	}
	t.Logf("without a client certificate: %v", err)
	got := waitArchived(t, open(true), 3, 20*time.Second)
	if len(got) != 3 {
		t.Fatalf("archived %v", got)
	}
}
