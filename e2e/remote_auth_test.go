package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/internal/testpki"
)

// clusterServerName is the DNS name every member certificate carries
// (cluster.TLSServerName, documented in the README). Spelled out here so
// that this test speaks the documented protocol rather than reusing the
// implementation's configuration.
const clusterServerName = "actorim-cluster"

// TestRemoteRefusesUnauthenticated: a node's actor remote (the second TCP
// port of every node; standalone on loopback, so open to every local user)
// serves only peers holding a certificate of the cluster CA. An attacker
// speaking protoactor's remote protocol asks the node to activate a user's
// grain and to hand over the user's account record (its argon2 hash); a raw
// gRPC client calls the remote's ListProcesses, which protoactor answers
// with a panic that gRPC does not recover. Without the cluster certificate
// both fail and the node keeps running; with it (the control) the same
// grain request succeeds, so the refusals are the credentials' doing.
func TestRemoteRefusesUnauthenticated(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		dir := t.TempDir()
		p := startProcess(t, dir, freeAddr(t))
		remoteRefusesUnauthenticated(t, p)
	})
	t.Run("cluster", func(t *testing.T) {
		c := startCluster(t, 2)
		remoteRefusesUnauthenticated(t, c.nodes[1])
	})
}

func remoteRefusesUnauthenticated(t *testing.T, p *process) {
	n := p.node()
	victim := n.newUser(t, "victim") // registered with a password: the grain holds its argon2 hash
	addr := remoteAddress(t, p)
	foreign := foreignCert(t)
	own := nodeCerts(t, p)

	refused := []struct {
		name string
		args []string
	}{
		{"protoactor remote without TLS (its default)", []string{"account", addr, victim}},
		{"protoactor remote with a certificate of another CA", append([]string{"account", addr, victim}, foreign.args()...)},
		{"raw gRPC without TLS", []string{"list", addr}},
		{"raw gRPC with a certificate of another CA", append([]string{"list", addr}, foreign.args()...)},
		{"raw gRPC over TLS without a client certificate", []string{"list-no-cert", addr, own.ca}},
	}
	for _, a := range refused {
		t.Run(a.name, func(t *testing.T) {
			out, answered := attack(t, a.args...)
			if answered {
				t.Fatalf("the remote answered a client without the cluster certificate: %s", out)
			}
			t.Logf("%s", out)
			requireNodeUp(t, p)
		})
	}

	t.Run("control: with the cluster certificate", func(t *testing.T) {
		out, answered := attack(t, append([]string{"account", addr, victim}, own.args()...)...)
		if !answered {
			t.Fatalf("a member certificate could not reach the grain, so the refusals above prove nothing: %s", out)
		}
		// A member's unary call is refused, not answered with a panic.
		if out, answered := attack(t, append([]string{"list", addr}, own.args()...)...); answered {
			t.Fatalf("ListProcesses answered: %s", out)
		}
		requireNodeUp(t, p)
	})
}

var (
	attackerOnce sync.Once
	attackerBin  string
	attackerErr  error
)

// attack runs testdata/attacker (a process of its own: gRPC's process-wide
// logger allows one protoactor remote per process) and reports its output
// and whether the node answered it.
func attack(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	attackerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "attacker-*")
		if err != nil {
			attackerErr = err
			return
		}
		attackerBin = filepath.Join(dir, "attacker")
		if out, err := exec.Command("go", "build", "-o", attackerBin, "./testdata/attacker").CombinedOutput(); err != nil {
			attackerErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if attackerErr != nil {
		t.Fatal(attackerErr)
	}
	out, err := exec.Command(attackerBin, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), true
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return string(out), false
	}
	t.Fatalf("attacker %v: %v\n%s", args, err, out)
	return "", false
}

// requireNodeUp fails unless the node still answers.
func requireNodeUp(t *testing.T, p *process) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // a panic takes the process down in a moment
	resp, err := http.Get("http://" + p.Addr() + "/readyz")
	if err != nil || !p.Alive() {
		t.Fatalf("the node died: %v", err)
	}
	resp.Body.Close()
}

var remoteAddrRE = regexp.MustCompile(`msg="actorim node ready".* cluster=([0-9.]+:[0-9]+)`)

// remoteAddress reads the node's actor remote address from its log.
func remoteAddress(t *testing.T, p *process) string {
	t.Helper()
	b, err := os.ReadFile(p.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	m := remoteAddrRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no remote address in the node's log:\n%s", b)
	}
	return string(m[1])
}

// certFiles are a member certificate, its key and the CA that signed it.
type certFiles struct{ cert, key, ca string }

// nodeCerts returns the certificate files p runs with: those of its
// command line, or those a standalone node generated in its data directory.
func nodeCerts(t *testing.T, p *process) certFiles {
	t.Helper()
	var f certFiles
	var data string
	args := p.Args()
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "--cluster-tls-cert":
			f.cert = args[i+1]
		case "--cluster-tls-key":
			f.key = args[i+1]
		case "--cluster-tls-ca":
			f.ca = args[i+1]
		case "--data":
			data = args[i+1]
		}
	}
	if f.cert == "" {
		d := filepath.Join(data, "cluster-tls")
		f = certFiles{cert: filepath.Join(d, "node.pem"), key: filepath.Join(d, "node.key"), ca: filepath.Join(d, "ca.pem")}
	}
	return f
}

func (f certFiles) args() []string { return []string{f.cert, f.key, f.ca} }

// foreignCert makes a CA of the attacker's own and a certificate it signs
// that looks like a member's in every way but the issuer.
func foreignCert(t *testing.T) certFiles {
	t.Helper()
	ca := testpki.New(t, t.TempDir(), "attacker CA")
	cert, key := ca.Issue(t, testpki.Leaf{Name: "node", DNSNames: []string{clusterServerName}})
	return certFiles{cert: cert, key: key, ca: ca.CertFile()}
}

// TestClusterNodeRefusesInsecureRemote: a clustered node refuses to start
// without certificates for its actor remote, and the opt-out
// (--cluster-tls=off) is refused on a bind or advertise address that is not
// loopback. It refuses before it touches Consul or Redis (none is given).
func TestClusterNodeRefusesInsecureRemote(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no certificates, all interfaces", []string{"--cluster-bind", "0.0.0.0:0"}, "needs mutual TLS"},
		{"no certificates, loopback", []string{"--cluster-bind", "127.0.0.1:0"}, "needs mutual TLS"},
		{"opt-out on all interfaces", []string{"--cluster-bind", "0.0.0.0:0", "--cluster-tls=off"}, "loopback only"},
		{"opt-out advertised off loopback", []string{"--cluster-bind", "127.0.0.1:7000", "--advertise", "10.0.0.5:7000", "--cluster-tls", "off"}, "loopback only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--cluster", "consul", "--store", "redis",
				"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--consul", "127.0.0.1:1", "--redis", "127.0.0.1:1"}, tc.args...)
			c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := runImnode(c, t, args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("imnode %v: %v\n%s", args, err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("imnode exited with %q, want a refusal mentioning %q", out, tc.want)
			}
		})
	}
}

// TestStandaloneGeneratesRemoteCert: a standalone node given no certificate
// generates a CA and a certificate for its remote into <data>/cluster-tls,
// readable by its owner only, and reuses them when it starts again.
func TestStandaloneGeneratesRemoteCert(t *testing.T) {
	data := t.TempDir()
	p := startProcess(t, data, freeAddr(t))
	dir := filepath.Join(data, "cluster-tls")
	modes := map[string]os.FileMode{"": 0o700 | os.ModeDir, "ca.pem": 0o600, "node.pem": 0o600, "node.key": 0o600}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", filepath.Join(dir, name), st.Mode(), want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files in %s, want ca.pem, node.pem and node.key (no CA key)", len(entries), dir)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "node.key"))
	p.terminate(t, 15*time.Second)
	startProcess(t, data, freeAddr(t))
	if again, _ := os.ReadFile(filepath.Join(dir, "node.key")); !bytes.Equal(key, again) {
		t.Fatal("the node generated a new key at its second start")
	}
}
