package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// certValidity is the lifetime of generated certificates. Long, because an
// expired certificate stops the cluster: rotate by generating new ones
// (WriteClusterCerts keeps the CA) and restarting members one by one.
const certValidity = 10 * 365 * 24 * time.Hour

// File names written by WriteClusterCerts and LocalTLS.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca.key"
)

// WriteClusterCerts makes dir hold a cluster CA (ca.pem, ca.key) and member
// certificates node1.pem/node1.key ... nodeN: it creates the CA when dir has
// none and then each member certificate that is missing, so it also adds
// members to an existing cluster. Every file is mode 0600, dir 0700. It
// returns the TLS configuration of each member.
//
// ca.key signs new members: keep it off the nodes. Each node needs ca.pem
// and its own nodeI.pem and nodeI.key.
func WriteClusterCerts(dir string, n int) ([]TLSConfig, error) {
	if n < 1 {
		return nil, fmt.Errorf("cluster: certs: need at least one member, not %d", n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	caCertPath, caKeyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	var ca *certAuthority
	var err error
	if !exists(caCertPath) && !exists(caKeyPath) {
		if ca, err = newCA("actorim cluster CA"); err == nil {
			err = writeFiles(file{caKeyPath, ca.keyPEM}, file{caCertPath, ca.certPEM})
		}
	} else {
		ca, err = loadCA(caCertPath, caKeyPath)
	}
	if err != nil {
		return nil, err
	}
	out := make([]TLSConfig, n)
	for i := range n {
		name := "node" + strconv.Itoa(i+1)
		c := TLSConfig{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key"), CAFile: caCertPath}
		out[i] = c
		if exists(c.CertFile) && exists(c.KeyFile) {
			continue
		}
		certPEM, keyPEM, err := ca.issue("actorim " + name)
		if err != nil {
			return nil, err
		}
		if err := writeFiles(file{c.KeyFile, keyPEM}, file{c.CertFile, certPEM}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LocalTLS makes dir hold the certificates of a standalone member: a CA of
// its own (ca.pem), which signs one member certificate (node.pem, node.key)
// and is then thrown away, so nothing else can ever join. Files written
// earlier are reused. Every file is mode 0600, dir 0700. generated reports
// whether this call created them.
func LocalTLS(dir string) (cfg TLSConfig, generated bool, err error) {
	cfg = TLSConfig{CertFile: filepath.Join(dir, "node.pem"), KeyFile: filepath.Join(dir, "node.key"), CAFile: filepath.Join(dir, CACertFile)}
	have := 0
	for _, p := range []string{cfg.CertFile, cfg.KeyFile, cfg.CAFile} {
		if exists(p) {
			have++
		}
	}
	switch have {
	case 3:
		return cfg, false, nil
	case 0:
	default:
		return cfg, false, fmt.Errorf("cluster: %s holds only some of node.pem, node.key and ca.pem: remove it to generate new ones", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cfg, false, fmt.Errorf("cluster: certs: %w", err)
	}
	ca, err := newCA("actorim standalone CA")
	if err != nil {
		return cfg, false, err
	}
	certPEM, keyPEM, err := ca.issue("actorim standalone node")
	if err != nil {
		return cfg, false, err
	}
	// The CA certificate last: its presence marks a complete set.
	if err := writeFiles(file{cfg.KeyFile, keyPEM}, file{cfg.CertFile, certPEM}, file{cfg.CAFile, ca.certPEM}); err != nil {
		return cfg, false, err
	}
	return cfg, true, nil
}

type certAuthority struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM []byte
}

func newCA(cn string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM: keyPEM}, nil
}

func loadCA(certPath, keyPath string) (*certAuthority, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %s exists without its key: %w", certPath, err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("cluster: certs: %s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %s: %w", certPath, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("cluster: certs: %s does not belong to %s", keyPath, certPath)
	}
	return &certAuthority{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// issue signs a member certificate: TLSServerName as its DNS name, good
// for server and client authentication.
func (ca *certAuthority) issue(cn string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: certs: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{TLSServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: certs: %w", err)
	}
	keyPEM, err = keyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func keyToPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cluster: certs: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

type file struct {
	path string
	data []byte
}

// writeFiles writes files in order, each with mode 0600 through a temporary
// file and a rename, so that a crash never leaves half a key behind.
func writeFiles(files ...file) error {
	for _, f := range files {
		path, data := f.path, f.data
		tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
		if err != nil {
			return fmt.Errorf("cluster: certs: %w", err)
		}
		// CreateTemp already uses 0600; Chmod states it whatever the umask.
		err = tmp.Chmod(0o600)
		if err == nil {
			_, err = tmp.Write(data)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("cluster: certs: write %s: %w", path, err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
