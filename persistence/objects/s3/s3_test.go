package s3

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"actorim/internal/s3local"
	"actorim/persistence"
	"actorim/persistence/objects/objtest"
)

// The tests run against one SeaweedFS, started by deploy/local/s3.sh with
// the fixed test credentials, S3 on basePort and S3 over TLS on basePort+10.
var (
	script   = filepath.Join("..", "..", "..", "deploy", "local", "s3.sh")
	basePort int
	tlsDir   string
	server   *s3local.Server
)

const (
	accessKey = s3local.AccessKey
	secretKey = s3local.SecretKey
	bucket    = "objtest"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actorim-s3-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	code := 1
	if err = start(dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start SeaweedFS: %v\n", err)
	} else {
		code = m.Run()
		_ = server.Stop()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// start starts SeaweedFS in dir on free ports, S3 over TLS beside it.
func start(dir string) error {
	tlsDir = filepath.Join(dir, "tls")
	if err := writeServerCert(tlsDir); err != nil {
		return err
	}
	var err error
	if server, err = s3local.Start(script, filepath.Join(dir, "weed"), "S3_TLS_DIR="+tlsDir); err != nil {
		return err
	}
	basePort = server.Port
	return nil
}

// writeServerCert writes a self-signed certificate for 127.0.0.1 to
// dir/server.pem and server.key, and the same certificate as dir/ca.pem
// (it is its own CA), as s3.sh's S3_TLS_DIR wants. (internal/testpki needs
// a testing.TB, which TestMain does not have.)
func writeServerCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "actorim s3 test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "server.pem"), cert, 0o600),
		os.WriteFile(filepath.Join(dir, "ca.pem"), cert, 0o600),
		os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600),
	)
}

func plainConfig() Config {
	return Config{
		Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort)), Bucket: bucket, CreateBucket: true,
		AccessKey: accessKey, SecretKey: secretKey,
	}
}

func tlsConfig() Config {
	c := plainConfig()
	c.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort+10))
	c.UseTLS, c.CAFile = true, filepath.Join(tlsDir, "ca.pem")
	return c
}

var prefixes atomic.Int64

// openStore opens a store with cfg under a prefix no other test uses.
func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	cfg.Prefix = fmt.Sprintf("t%d-%d/", os.Getpid(), prefixes.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	objtest.Run(t, func(t *testing.T) persistence.Objects { return openStore(t, plainConfig()) })
}

// TestConformanceOverTLS runs the suite against SeaweedFS's S3 over TLS,
// trusting its certificate through CAFile, and shows that a client that
// does not trust it, or speaks plain HTTP to the TLS port, is refused.
func TestConformanceOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	untrusted := tlsConfig()
	untrusted.CAFile = ""
	plainToTLS := tlsConfig()
	plainToTLS.UseTLS, plainToTLS.CAFile = false, ""
	for name, cfg := range map[string]Config{"CA not trusted": untrusted, "plain HTTP to the TLS port": plainToTLS} {
		if _, err := Open(ctx, cfg); err == nil {
			t.Errorf("%s: Open succeeded", name)
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}
	objtest.Run(t, func(t *testing.T) persistence.Objects { return openStore(t, tlsConfig()) })
}

func TestOpenConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := plainConfig()
	fromFile.SecretKey, fromFile.SecretKeyFile = "", secretFile
	openStore(t, fromFile)

	noBucket := plainConfig()
	noBucket.Bucket, noBucket.CreateBucket = fmt.Sprintf("missing-%d", os.Getpid()), false
	badSecret := plainConfig()
	badSecret.SecretKey = "wrong"
	both := fromFile
	both.SecretKey = secretKey
	smallParts := plainConfig()
	smallParts.PartSize = 1 << 20
	for name, cfg := range map[string]Config{
		"missing bucket, CreateBucket off": noBucket,
		"wrong secret":                     badSecret,
		"SecretKey and SecretKeyFile":      both,
		"parts below 5 MiB":                smallParts,
		"no endpoint":                      {},
	} {
		if _, err := Open(ctx, cfg); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{Endpoint: "e:1"}.WithDefaults()
	if c.Bucket != "actorim-media" || c.Region != "us-east-1" || c.PartSize != 16<<20 || c.Prefix != "" || c.Endpoint != "e:1" {
		t.Errorf("WithDefaults() = %+v", c)
	}
	set := Config{Bucket: "b", Region: "r", PartSize: 6 << 20}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed set fields: %+v", got)
	}
}
