package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"actorim/cluster"
	"actorim/node"
)

// securityFlags are the flags of TLS and credentials for the actor remote,
// Consul, Redis and ClickHouse. A secret can be given inline (flag or
// ACTORIM_ variable) or, kept out of process lists and environments, as a
// file (the *-file flags).
type securityFlags struct {
	clusterTLS                                                 string
	redisPasswordFile, clickhousePasswordFile, consulTokenFile string
}

func bindSecurityFlags(fs *flag.FlagSet, c *node.Config) *securityFlags {
	s := &securityFlags{}
	t := &c.Cluster.TLS
	fs.StringVar(&t.CertFile, "cluster-tls-cert", "", "actor remote: this node's certificate (PEM), signed by the cluster CA for the name "+cluster.TLSServerName+" (default standalone: generated into <data>/cluster-tls)")
	fs.StringVar(&t.KeyFile, "cluster-tls-key", "", "actor remote: this node's private key (PEM)")
	fs.StringVar(&t.CAFile, "cluster-tls-ca", "", "actor remote: the cluster CA certificate (PEM); only its certificates are accepted from peers")
	fs.StringVar(&s.clusterTLS, "cluster-tls", "on", "actor remote mutual TLS: on, or off (refused unless --cluster-bind and --advertise are loopback; for benchmarks)")

	con := &c.Cluster.Consul
	fs.StringVar(&con.Token, "consul-token", "", "Consul ACL token (prefer --consul-token-file)")
	fs.StringVar(&s.consulTokenFile, "consul-token-file", "", "file holding the Consul ACL token")
	fs.StringVar(&con.TLS.CAFile, "consul-tls-ca", "", "CA certificate (PEM) verifying the Consul agent; switches to https")
	fs.StringVar(&con.TLS.CertFile, "consul-tls-cert", "", "client certificate (PEM) for a Consul agent that verifies incoming HTTPS")
	fs.StringVar(&con.TLS.KeyFile, "consul-tls-key", "", "client certificate's private key (PEM)")
	fs.StringVar(&con.TLS.ServerName, "consul-tls-server-name", "", "name the Consul agent's certificate carries (default: the host of --consul)")

	r := &c.Store.Redis
	fs.StringVar(&r.Username, "redis-user", "", "Redis ACL user (default: the default user)")
	fs.StringVar(&s.redisPasswordFile, "redis-password-file", "", "file holding the Redis password")
	bindClientTLS(fs, "redis", "Redis", &r.TLS)

	ch := &c.Archive
	fs.StringVar(&s.clickhousePasswordFile, "clickhouse-password-file", "", "file holding the ClickHouse password")
	bindClientTLS(fs, "clickhouse", "ClickHouse (its tcp_port_secure)", &ch.ClickHouseTLS)
	return s
}

func bindClientTLS(fs *flag.FlagSet, prefix, server string, t *node.ClientTLS) {
	fs.BoolVar(&t.Enabled, prefix+"-tls", false, "connect to "+server+" over TLS (any --"+prefix+"-tls-* file implies it)")
	fs.StringVar(&t.CAFile, prefix+"-tls-ca", "", "CA certificate (PEM) verifying "+server+" (default: the system's roots)")
	fs.StringVar(&t.CertFile, prefix+"-tls-cert", "", "client certificate (PEM) for "+server)
	fs.StringVar(&t.KeyFile, prefix+"-tls-key", "", "client certificate's private key (PEM)")
	fs.StringVar(&t.ServerName, prefix+"-tls-server-name", "", "name "+server+"'s certificate carries (default: the host of its address)")
}

// apply completes c from what needs more than a flag: --cluster-tls and the
// secret files.
func (s *securityFlags) apply(c *node.Config) error {
	switch s.clusterTLS {
	case "on":
	case "off":
		c.Cluster.TLS.Insecure = true
	default:
		return fmt.Errorf("--cluster-tls must be on or off, not %q", s.clusterTLS)
	}
	for _, f := range []struct {
		name, file string
		dst        *string
	}{
		{"redis-password", s.redisPasswordFile, &c.Store.Redis.Password},
		{"clickhouse-password", s.clickhousePasswordFile, &c.Archive.ClickHouse.Password},
		{"consul-token", s.consulTokenFile, &c.Cluster.Consul.Token},
	} {
		if f.file == "" {
			continue
		}
		if *f.dst != "" {
			return fmt.Errorf("--%s and --%s-file are both set: give one", f.name, f.name)
		}
		v, err := readSecret(f.file)
		if err != nil {
			return fmt.Errorf("--%s-file: %w", f.name, err)
		}
		*f.dst = v
	}
	return nil
}

// readSecret reads a secret file: its content without the final line break.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// runClusterCerts is `imnode cluster-certs DIR N`: it writes a cluster CA
// and N member certificates into DIR, or adds the missing ones.
func runClusterCerts(args []string) error {
	const usage = "usage: imnode cluster-certs DIR N\n" +
		"  writes DIR/ca.pem and DIR/ca.key (a new cluster CA, unless DIR has one) and\n" +
		"  DIR/nodeI.pem, DIR/nodeI.key for I = 1..N (those missing), all mode 0600.\n" +
		"  Node I runs with --cluster-tls-ca DIR/ca.pem --cluster-tls-cert DIR/nodeI.pem\n" +
		"  --cluster-tls-key DIR/nodeI.key; keep ca.key off the nodes."
	if len(args) != 2 {
		return errors.New(usage)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return fmt.Errorf("cluster-certs: N must be a positive number, not %q\n%s", args[1], usage)
	}
	certs, err := cluster.WriteClusterCerts(args[0], n)
	if err != nil {
		return err
	}
	for i, c := range certs {
		fmt.Printf("node%d  --cluster-tls-ca %s --cluster-tls-cert %s --cluster-tls-key %s\n", i+1, c.CAFile, c.CertFile, c.KeyFile)
	}
	return nil
}
