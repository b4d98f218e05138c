package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"actorim/client"
	"actorim/node"
	"actorim/protos/clientpb"
)

// TestTLSChat: a node with a certificate serves wss:// and https://; clients
// that trust it register, log in and chat; a client that does not is refused.
func TestTLSChat(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, func(c *node.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	wss := strings.Replace(n.ws, "ws://", "wss://", 1)
	https := strings.Replace(n.http, "http://", "https://", 1)
	tlsCfg := &tls.Config{RootCAs: pool}
	h := &client.HTTP{BaseURL: https, Client: &http.Client{Transport: specTransport(&http.Transport{TLSClientConfig: tlsCfg})}}

	var toks []string
	for _, u := range []string{"alice", "bob"} {
		if err := h.Register(ctx(t), u, "password-"+u); err != nil {
			t.Fatal(err)
		}
		tok, err := h.Login(ctx(t), u, "password-"+u)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok.Token)
	}
	dial := func(tok, dev string) *client.Conn {
		c, err := client.Dial(ctx(t), wss, specDial(client.Options{TLS: tlsCfg}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.Login(ctx(t), tok, dev, clientpb.Platform_PLATFORM_WEB, nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(toks[0], "a"), dial(toks[1], "b")
	if _, err := a.SendText(ctx(t), "bob", "tls-1", "over TLS"); err != nil {
		t.Fatal(err)
	}
	bd := &device{Conn: b, user: "bob", id: "b"}
	if got := bd.collect(t, 1, 5*time.Second); texts(got)[0] != "over TLS" {
		t.Fatalf("got %v", got)
	}

	if _, err := client.Dial(ctx(t), wss, client.Options{}); err == nil {
		t.Fatal("a client without the CA connected")
	}
	if _, err := client.Dial(ctx(t), n.ws, client.Options{}); err == nil {
		t.Fatal("plain ws:// was accepted by a TLS node")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "actorim test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
