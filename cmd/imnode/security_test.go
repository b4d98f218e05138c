package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSecretFlags: secrets come from files (flag or ACTORIM_*_FILE
// variable) without appearing on the command line; a secret given both
// inline and by file is refused; TLS flags reach the configuration.
func TestSecretFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	redisPW := write("redis.pw", "r-secret\n")
	chPW := write("ch.pw", "c-secret")
	token := write("consul.token", "3f2a-token\r\n")
	t.Setenv("ACTORIM_CONSUL_TOKEN_FILE", token)
	cfg, _, err := parseConfig([]string{
		"--redis-password-file", redisPW, "--clickhouse-password-file", chPW,
		"--redis-tls-ca", "/ca.pem", "--redis-user", "actorim",
		"--consul", "https://consul.internal:8501", "--consul-tls-ca", "/consul-ca.pem",
		"--cluster-tls-cert", "/n.pem", "--cluster-tls-key", "/n.key", "--cluster-tls-ca", "/ca.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"redis password from file":             cfg.Store.Redis.Password == "r-secret",
		"clickhouse password from file":        cfg.Archive.ClickHouse.Password == "c-secret",
		"consul token from the env-named file": cfg.Cluster.Consul.Token == "3f2a-token",
		"redis user and TLS":                   cfg.Store.Redis.Username == "actorim" && cfg.Store.Redis.TLS.CAFile == "/ca.pem",
		"consul TLS":                           cfg.Cluster.Consul.TLS.CAFile == "/consul-ca.pem",
		"cluster TLS":                          cfg.Cluster.TLS.CertFile == "/n.pem" && cfg.Cluster.TLS.KeyFile == "/n.key" && cfg.Cluster.TLS.CAFile == "/ca.pem" && !cfg.Cluster.TLS.Insecure,
	} {
		if !ok {
			t.Errorf("%s: %+v", name, cfg)
		}
	}

	if cfg, _, err := parseConfig([]string{"--cluster-tls=off"}); err != nil || !cfg.Cluster.TLS.Insecure {
		t.Errorf("--cluster-tls=off: %v, insecure %v", err, cfg.Cluster.TLS.Insecure)
	}
	for _, args := range [][]string{
		{"--redis-password", "inline", "--redis-password-file", redisPW},
		{"--consul-token", "inline"}, // and ACTORIM_CONSUL_TOKEN_FILE
		{"--redis-password-file", filepath.Join(dir, "missing")},
		{"--clickhouse-password-file", write("empty", "\n")},
		{"--cluster-tls", "maybe"},
	} {
		if _, _, err := parseConfig(args); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
}
