// Package testpki makes throwaway certificate authorities and certificates
// for tests of TLS against real servers (Redis, ClickHouse, Consul, the
// actor remote). Keys are ECDSA P-256; files are PEM, mode 0600; everything
// is valid for a day.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority whose files live in Dir.
type CA struct {
	// Dir holds ca.pem and the certificates Issue writes.
	Dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

// New makes a CA named cn and writes its certificate to dir/ca.pem.
func New(t testing.TB, dir, cn string) *CA {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Dir: dir, cert: cert, key: key, n: 1}
	writePEM(t, ca.CertFile(), "CERTIFICATE", der)
	return ca
}

// CertFile is the CA certificate's file.
func (ca *CA) CertFile() string { return filepath.Join(ca.Dir, "ca.pem") }

// Pool is a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Leaf describes a certificate to issue.
type Leaf struct {
	// Name is the common name and the files' base name (Name.pem, Name.key).
	Name     string
	DNSNames []string
	IPs      []net.IP
	// Usages default to server and client authentication.
	Usages []x509.ExtKeyUsage
}

// Server is a server certificate for 127.0.0.1.
func Server(name string) Leaf {
	return Leaf{Name: name, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

// Client is a client certificate.
func Client(name string) Leaf {
	return Leaf{Name: name, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// Issue signs l and writes Dir/l.Name.pem and Dir/l.Name.key.
func (ca *CA) Issue(t testing.TB, l Leaf) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usages := l.Usages
	if usages == nil {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	ca.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: l.Name},
		DNSNames: l.DNSNames, IPAddresses: l.IPs,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.Dir, l.Name+".pem"), filepath.Join(ca.Dir, l.Name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
