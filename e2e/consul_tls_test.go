package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestClusterOverConsulTLSAndACL: nodes reach a Consul agent that serves
// its API on HTTPS only, requires client certificates, and enforces ACLs
// (default deny). With the CA, a client certificate and a token of the
// documented policy (from a file) two nodes form a cluster and chat across
// it; a node without a token, or with a token of no permissions, refuses to
// start instead of running outside the membership.
func TestClusterOverConsulTLSAndACL(t *testing.T) {
	inf := clusterInfra(t) // for its Redis
	dir := t.TempDir()
	certs := filepath.Join(dir, "tls")
	writeServerCerts(t, certs)
	base := freePortRun(t, 4)
	const root = "8b0d9c3e-0f4c-4a63-9e1a-6b3f9d2c7e11"
	cfg := fmt.Sprintf(`
ports { http = -1, https = %d, server = %d, serf_lan = %d, serf_wan = %d, dns = -1, grpc = -1, grpc_tls = -1 }
tls {
  defaults { ca_file = %q, cert_file = %q, key_file = %q }
  https { verify_incoming = true }
}
acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = %q, agent = %q }
}
`, base, base+1, base+2, base+3, filepath.Join(certs, "ca.pem"), filepath.Join(certs, "server.pem"), filepath.Join(certs, "server.key"), root, root)
	cfgFile := filepath.Join(dir, "consul.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.Command(filepath.Join("..", "deploy", "local", "consul.sh"), "path").Output()
	if err != nil {
		t.Fatalf("consul.sh path: %v", err)
	}
	logf, err := os.Create(filepath.Join(dir, "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(strings.TrimSpace(string(bin)), "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", "actorim-tls-"+strconv.Itoa(base), "-data-dir", filepath.Join(dir, "data"), "-config-file", cfgFile, "-log-level", "warn")
	agent.Stdout, agent.Stderr = logf, logf
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("consul log:\n%s", b)
		}
	})
	addr := "https://127.0.0.1:" + strconv.Itoa(base)
	apiCfg := func(token string) *api.Config {
		return &api.Config{Address: addr, Token: token, TLSConfig: api.TLSConfig{
			CAFile: filepath.Join(certs, "ca.pem"), CertFile: filepath.Join(certs, "client.pem"), KeyFile: filepath.Join(certs, "client.key")}}
	}
	admin, err := api.NewClient(apiCfg(root))
	if err != nil {
		t.Fatal(err)
	}
	waitConsulLeader(t, admin)

	// Without a client certificate the HTTPS API refuses the connection.
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(certs, "ca.pem"))
	pool.AppendCertsFromPEM(caPEM)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 3 * time.Second}
	if resp, err := noCert.Get(addr + "/v1/status/leader"); err == nil {
		resp.Body.Close()
		t.Fatal("the agent answered a client without a certificate")
	}

	// The documented policy of a node token.
	policy, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "actorim-node", Rules: consulNodePolicy}, nil)
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	useless, _, err := admin.ACL().TokenCreate(&api.ACLToken{Description: "no policy"}, nil)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	tokFile := filepath.Join(dir, "consul.token")
	if err := os.WriteFile(tokFile, []byte(tok.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uselessFile := filepath.Join(dir, "useless.token")
	if err := os.WriteFile(uselessFile, []byte(useless.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	certDir := t.TempDir()
	if out, err := runImnode(context.Background(), t, "cluster-certs", certDir, "3"); err != nil {
		t.Fatalf("imnode cluster-certs: %v\n%s", err, out)
	}
	name := fmt.Sprintf("actorim-consul-tls-%d", time.Now().UnixNano()%1e9)
	args := func(i int, token ...string) []string {
		n := strconv.Itoa(i)
		a := []string{"--cluster", "consul", "--cluster-name", name, "--consul", addr,
			"--consul-tls-ca", filepath.Join(certs, "ca.pem"),
			"--consul-tls-cert", filepath.Join(certs, "client.pem"), "--consul-tls-key", filepath.Join(certs, "client.key"),
			"--cluster-tls-ca", filepath.Join(certDir, "ca.pem"),
			"--cluster-tls-cert", filepath.Join(certDir, "node"+n+".pem"), "--cluster-tls-key", filepath.Join(certDir, "node"+n+".key"),
			"--store", "redis", "--redis", inf.redis, "--redis-prefix", name + ":"}
		return append(a, token...)
	}
	n1 := startProcess(t, t.TempDir(), freeAddr(t), args(1, "--consul-token-file", tokFile)...)
	n2 := startProcess(t, t.TempDir(), freeAddr(t), args(2, "--consul-token-file", tokFile)...)
	a, b := n1.node(), n2.node()
	alice, bob := a.newUser(t, "alice"), a.newUser(t, "bob")
	da := a.connect(t, alice, "a", nil)
	db := b.connect(t, bob, "b", u64(0))
	for i := range 5 {
		da.send(t, bob, fmt.Sprintf("across #%d", i))
	}
	if got := db.collect(t, 5, 10*time.Second); len(got) != 5 {
		t.Fatalf("bob got %d messages", len(got))
	}
	services, _, err := admin.Health().Service(name, "", true, nil)
	if err != nil || len(services) != 2 {
		t.Fatalf("Consul lists %d healthy members (%v), want 2", len(services), err)
	}

	for label, token := range map[string][]string{"no token": nil, "a token without permissions": {"--consul-token-file", uselessFile}} {
		t.Run("refused: "+label, func(t *testing.T) {
			c, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			out, err := runImnode(c, t, append(args(3, token...), "--data", t.TempDir(), "--listen", freeAddr(t))...)
			if c.Err() != nil {
				t.Fatalf("the node kept running outside the membership:\n%s", lastLines(string(out), 10))
			}
			if err == nil {
				t.Fatalf("the node exited cleanly:\n%s", out)
			}
			t.Logf("refused: %s", lastLines(string(out), 1))
		})
	}
}

// consulNodePolicy is the ACL policy a node's token needs (README): register
// and refresh its own service, named after the cluster, and read the
// members' health.
const consulNodePolicy = `
service_prefix "actorim" { policy = "write" }
node_prefix "" { policy = "read" }
`

func waitConsulLeader(t *testing.T, c *api.Client) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		leader, err := c.Status().Leader()
		if err == nil && leader != "" {
			// ACL bootstrap of the initial management token follows the leader.
			if _, _, err := c.ACL().TokenReadSelf(nil); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consul agent not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
