package cluster

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRemoteNeedsTLSOffLoopback: a member whose remote others could reach
// refuses to be built without certificates, and the insecure opt-out is
// refused anywhere but loopback. The refusal comes before Consul is asked
// anything (no agent runs here).
func TestRemoteNeedsTLSOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"consul, all interfaces, no certificates", Config{Provider: ProviderConsul, Bind: "0.0.0.0:7000"}, ErrTLSRequired},
		{"consul, loopback, no certificates", Config{Provider: ProviderConsul, Bind: "127.0.0.1:0"}, ErrTLSRequired},
		{"standalone, no certificates", Config{}, ErrTLSRequired},
		{"insecure on all interfaces", Config{Provider: ProviderConsul, Bind: "0.0.0.0:0", TLS: TLSConfig{Insecure: true}}, ErrInsecureNotLoopback},
		{"insecure on a host address", Config{Provider: ProviderConsul, Bind: "10.1.2.3:7000", TLS: TLSConfig{Insecure: true}}, ErrInsecureNotLoopback},
		{"insecure, loopback bind, advertised elsewhere", Config{Provider: ProviderConsul, Bind: "127.0.0.1:7000", Advertise: "10.0.0.5:7000", TLS: TLSConfig{Insecure: true}}, ErrInsecureNotLoopback},
		{"only some files", Config{Provider: ProviderConsul, Bind: "0.0.0.0:0", TLS: TLSConfig{CertFile: "x.pem"}}, ErrTLSRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, nil); !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
	for _, hp := range []string{"127.0.0.1:0", "127.3.4.5:7000", "[::1]:7000", "localhost:7000"} {
		if !loopback(hp) {
			t.Errorf("%s is loopback", hp)
		}
	}
	for _, hp := range []string{":7000", "0.0.0.0:7000", "[::]:7000", "10.0.0.5:7000", "node1.example:7000"} {
		if loopback(hp) {
			t.Errorf("%s is not loopback", hp)
		}
	}
}

// TestLocalTLSFiles: a standalone member's generated CA and certificate are
// private files (0600 in a 0700 directory), load as member credentials, and
// are reused rather than replaced; a partial set is an error, not silently
// regenerated.
func TestLocalTLSFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster-tls")
	cfg, generated, err := LocalTLS(dir)
	if err != nil || !generated {
		t.Fatalf("LocalTLS: %v, generated %v", err, generated)
	}
	requireMode(t, dir, 0o700|os.ModeDir)
	for _, f := range []string{cfg.CertFile, cfg.KeyFile, cfg.CAFile} {
		requireMode(t, f, 0o600)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d files in %s, want node.pem, node.key, ca.pem (the CA key is not kept)", len(entries), dir)
	}
	if _, err := LoadTLS(cfg); err != nil {
		t.Fatalf("LoadTLS of the generated files: %v", err)
	}
	key, _ := os.ReadFile(cfg.KeyFile)
	again, generated, err := LocalTLS(dir)
	if err != nil || generated || again != cfg {
		t.Fatalf("second LocalTLS: %+v, generated %v, %v", again, generated, err)
	}
	if key2, _ := os.ReadFile(cfg.KeyFile); !bytes.Equal(key, key2) {
		t.Fatal("the key was replaced")
	}
	if err := os.Remove(cfg.CAFile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LocalTLS(dir); err == nil {
		t.Fatal("a partial set was accepted")
	}
}

// TestWriteClusterCerts: the certificates of one cluster's CA load as
// member credentials; adding members keeps the CA; a certificate of another
// cluster's CA does not load against this CA.
func TestWriteClusterCerts(t *testing.T) {
	dir := t.TempDir()
	two, err := WriteClusterCerts(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	node1, _ := os.ReadFile(two[0].CertFile)
	three, err := WriteClusterCerts(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	node1b, _ := os.ReadFile(three[0].CertFile)
	if !bytes.Equal(ca, ca2) || !bytes.Equal(node1, node1b) {
		t.Fatal("adding a member replaced the CA or an existing member's certificate")
	}
	for _, f := range []string{CACertFile, CAKeyFile, "node3.pem", "node3.key"} {
		requireMode(t, filepath.Join(dir, f), 0o600)
	}
	for _, c := range three {
		if _, err := LoadTLS(c); err != nil {
			t.Fatalf("LoadTLS(%s): %v", c.CertFile, err)
		}
	}
	other, err := WriteClusterCerts(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	mixed := other[0]
	mixed.CAFile = three[0].CAFile
	if _, err := LoadTLS(mixed); err == nil {
		t.Fatal("a certificate of another CA loaded")
	}
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteClusterCerts(dir, 4); err == nil {
		t.Fatal("a CA without its key was replaced or used")
	}
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
	}
}
