package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"actorim/cluster"
)

// ClientTLS configures TLS from the node to a server it depends on (Redis,
// ClickHouse). The zero value is plain TCP.
type ClientTLS struct {
	// Enabled connects over TLS. Setting any file below enables it too.
	Enabled bool
	// CAFile verifies the server's certificate (PEM). Default: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate (PEM), for a server
	// that requires one. Default none.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry.
	// Default: the host of the server's address.
	ServerName string
}

func (c ClientTLS) enabled() bool {
	return c.Enabled || c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""
}

// config returns the TLS configuration for a server at addr, nil when TLS is
// off. The server's certificate is always verified.
func (c ClientTLS) config(addr string) (*tls.Config, error) {
	if !c.enabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("node: tls: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("node: tls: no PEM certificate in %s", c.CAFile)
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("node: tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// clusterTLSDir is where a standalone node keeps the certificates it
// generated for its actor remote.
const clusterTLSDir = "cluster-tls"

// prepareClusterTLS completes the actor remote's TLS configuration: a
// standalone node without certificate files uses the ones it generated in
// DataDir/cluster-tls (generating them on first start); a clustered node
// must be given them.
func prepareClusterTLS(cfg *Config, logger *slog.Logger) error {
	t := &cfg.Cluster.TLS
	if t.Enabled() || t.Insecure {
		if err := cluster.CheckTLS(cfg.Cluster); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		return nil
	}
	if cfg.clustered() {
		return fmt.Errorf("node: %w: give --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca "+
			"(`imnode cluster-certs DIR N` makes them); --cluster-tls=off is accepted on loopback only", cluster.ErrTLSRequired)
	}
	dir := filepath.Join(cfg.DataDir, clusterTLSDir)
	local, generated, err := cluster.LocalTLS(dir)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if generated {
		logger.Info("generated the actor remote's TLS certificate; the remote accepts no one else", "dir", dir)
	}
	*t = local
	return nil
}
