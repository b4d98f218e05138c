package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"actorim/internal/s3local"
)

// infra is the Consul agent and Redis server the cluster tests share. Each
// test gets its own cluster name (so members of different tests never join
// each other) and its own Redis key prefix.
type infra struct {
	consul string // host:port of the agent's HTTP API
	redis  string // host:port
	dir    string
}

var (
	infraOnce   sync.Once
	sharedInfra *infra
	infraErr    error
	infraStop   []func()

	s3Once sync.Once
	s3     *s3Infra
	s3Err  error
)

// s3Infra is the S3-compatible server (SeaweedFS) the media tests of a
// cluster share; each cluster keeps its objects under a prefix of its own.
type s3Infra struct {
	endpoint   string // host:port
	accessKey  string
	secretFile string // holds the secret key, mode 0600
}

// sharedS3 starts SeaweedFS once per test run through deploy/local/s3.sh.
// A missing binary fails the test: `make deps` builds it.
func sharedS3(t *testing.T) *s3Infra {
	t.Helper()
	s3Once.Do(func() {
		dir, err := os.MkdirTemp("", "actorim-s3-*")
		if err != nil {
			s3Err = err
			return
		}
		infraStop = append(infraStop, func() { _ = os.RemoveAll(dir) })
		secret := filepath.Join(dir, "s3-secret")
		if s3Err = os.WriteFile(secret, []byte(s3local.SecretKey+"\n"), 0o600); s3Err != nil {
			return
		}
		srv, err := s3local.Start(filepath.Join("..", "deploy", "local", "s3.sh"), filepath.Join(dir, "weed"))
		if err != nil {
			s3Err = err
			return
		}
		infraStop = append(infraStop, func() { _ = srv.Stop() })
		s3 = &s3Infra{endpoint: srv.Endpoint(), accessKey: s3local.AccessKey, secretFile: secret}
	})
	if s3Err != nil {
		t.Fatalf("S3 server: %v", s3Err)
	}
	return s3
}

// mediaFlags are the flags of a cluster node storing media in s3 under
// prefix, in a bucket every test shares.
func (s *s3Infra) mediaFlags(prefix string) []string {
	return []string{"--media-store", "s3", "--s3-endpoint", s.endpoint, "--s3-bucket", "e2e-media", "--s3-create-bucket",
		"--s3-access-key", s.accessKey, "--s3-secret-key-file", s.secretFile, "--s3-prefix", prefix}
}

// stopInfra stops what clusterInfra started; TestMain calls it.
func stopInfra() {
	for i := len(infraStop) - 1; i >= 0; i-- {
		infraStop[i]()
	}
}

// clusterInfra starts Consul and Redis once per test run through the same
// scripts `make cluster` uses. Missing binaries fail the test: the scripts
// install them (`make test` runs their install step first).
func clusterInfra(t *testing.T) *infra {
	t.Helper()
	infraOnce.Do(func() {
		dir, err := os.MkdirTemp("", "actorim-infra-*")
		if err != nil {
			infraErr = err
			return
		}
		infraStop = append(infraStop, func() { _ = os.RemoveAll(dir) })
		scripts := filepath.Join("..", "deploy", "local")
		consulPort, redisPort := freePortRun(t, 4), freePortRun(t, 1)
		run := func(args ...string) error {
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %v\n%s", args, err, out)
			}
			return nil
		}
		consulDir, redisDir := filepath.Join(dir, "consul"), filepath.Join(dir, "redis")
		if infraErr = run(filepath.Join(scripts, "consul.sh"), "start", strconv.Itoa(consulPort), consulDir); infraErr != nil {
			return
		}
		infraStop = append(infraStop, func() { _ = run(filepath.Join(scripts, "consul.sh"), "stop", consulDir) })
		if infraErr = run(filepath.Join(scripts, "redis.sh"), "start", strconv.Itoa(redisPort), redisDir); infraErr != nil {
			return
		}
		infraStop = append(infraStop, func() { _ = run(filepath.Join(scripts, "redis.sh"), "stop", redisDir) })
		sharedInfra = &infra{consul: "127.0.0.1:" + strconv.Itoa(consulPort), redis: "127.0.0.1:" + strconv.Itoa(redisPort), dir: dir}
	})
	if infraErr != nil {
		t.Fatalf("cluster infrastructure: %v", infraErr)
	}
	return sharedInfra
}

// freePortRun returns a port p such that p..p+n-1 were free a moment ago.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if base+n > 65000 {
			continue
		}
		ok := true
		for i := 1; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

var clusterSeq atomic.Int64

// testCluster is a set of imnode processes forming one cluster. Its nodes
// speak mutual TLS on their actor remotes, with certificates made by
// `imnode cluster-certs` as an operator would.
type testCluster struct {
	t      *testing.T
	infra  *infra
	name   string
	prefix string
	certs  string // directory of the cluster's CA and node certificates
	nodes  []*process
	extra  []string // more flags for every node
}

// startCluster starts n nodes in a cluster of their own, each with the
// extra flags given.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	inf := clusterInfra(t)
	id := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, clusterSeq.Add(1))
	c := &testCluster{t: t, infra: inf, name: "actorim-" + id, prefix: "actorim:" + id + ":", certs: t.TempDir(), extra: extra}
	for i := 0; i < n; i++ {
		c.addNode()
	}
	return c
}

// addNode starts one more node of the cluster, with a certificate of the
// cluster's CA.
func (c *testCluster) addNode() *process {
	c.t.Helper()
	i := strconv.Itoa(len(c.nodes) + 1)
	if out, err := runImnode(context.Background(), c.t, "cluster-certs", c.certs, i); err != nil {
		c.t.Fatalf("imnode cluster-certs: %v\n%s", err, out)
	}
	args := []string{
		"--cluster-tls-ca", filepath.Join(c.certs, "ca.pem"),
		"--cluster-tls-cert", filepath.Join(c.certs, "node"+i+".pem"),
		"--cluster-tls-key", filepath.Join(c.certs, "node"+i+".key"),
		"--cluster", "consul", "--consul", c.infra.consul, "--cluster-name", c.name,
		"--store", "redis", "--redis", c.infra.redis, "--redis-prefix", c.prefix,
		"--send-rate", "10000", "--send-burst", "10000"}
	p := startProcess(c.t, c.t.TempDir(), freeAddr(c.t), append(args, c.extra...)...)
	c.nodes = append(c.nodes, p)
	return p
}

// targets returns the WebSocket URLs of the nodes still alive.
func (c *testCluster) targets() []string {
	var out []string
	for _, p := range c.nodes {
		if p.Alive() {
			out = append(out, "ws://"+p.Addr()+"/ws")
		}
	}
	return out
}
