package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// TLSServerName is the DNS name every member certificate carries. Members
// dial each other by IP address, so no certificate names a member's address:
// a peer is accepted when its certificate chains to the cluster CA and names
// TLSServerName, in both directions.
const TLSServerName = "actorim-cluster"

// Errors of the actor remote's TLS configuration.
var (
	// ErrTLSRequired reports a member configured without certificates whose
	// remote would be reachable from other hosts, or without any explicit
	// choice: the remote runs grain code for whoever connects.
	ErrTLSRequired = errors.New("cluster: the actor remote needs mutual TLS")
	// ErrInsecureNotLoopback reports TLSConfig.Insecure on a bind or
	// advertise address that is not loopback.
	ErrInsecureNotLoopback = errors.New("cluster: an insecure actor remote is allowed on loopback only")
)

// TLSConfig secures the actor remote with mutual TLS: the remote's server
// accepts only clients presenting a certificate of the cluster CA, and a
// member dialing another verifies the server against the same CA. Without
// it anybody reaching the remote port can call any grain.
//
// Certificates of a cluster come from `imnode cluster-certs` (WriteClusterCerts);
// a standalone node generates its own (LocalTLS).
type TLSConfig struct {
	// CertFile and KeyFile are this member's certificate and private key
	// (PEM). The certificate must chain to CAFile, name TLSServerName as a
	// DNS name, and allow both server and client authentication: it is
	// presented in both directions.
	CertFile, KeyFile string
	// CAFile holds the cluster CA's certificate(s) (PEM): the only issuer
	// whose certificates this member accepts from peers. Use a CA of its own
	// for the cluster: every certificate it signs for TLSServerName is a
	// member.
	CAFile string
	// Insecure runs the remote without TLS. It is refused unless Bind and
	// Advertise are loopback addresses; it exists to measure what TLS
	// costs. Even on loopback every local user can then call grains.
	Insecure bool
}

// Enabled reports whether certificate files are configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// TLS holds the loaded credentials of a member: the server and client
// configurations of its remote.
type TLS struct {
	server, client *tls.Config
	leaf           *x509.Certificate
}

// LoadTLS reads and checks the files of t: the key matches the certificate,
// the certificate chains to the CA and names TLSServerName. Checking here
// turns a wrong file into a clear error at start rather than failed
// handshakes later.
func LoadTLS(t TLSConfig) (*TLS, error) {
	if t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" {
		return nil, fmt.Errorf("%w: give the certificate, its key and the cluster CA (all three)", ErrTLSRequired)
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: tls: %w", err)
	}
	caPEM, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster: tls: no PEM certificate in %s", t.CAFile)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cluster: tls: %s: %w", t.CertFile, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		DNSName: TLSServerName, Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("cluster: tls: %s is not a member certificate of the CA in %s (for %q, server and client auth): %w",
			t.CertFile, t.CAFile, TLSServerName, err)
	}
	// The chain was checked against the CA; the name is checked here because
	// a CA may sign other names too.
	verifyName := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("cluster: peer presented no certificate")
		}
		return cs.PeerCertificates[0].VerifyHostname(TLSServerName)
	}
	return &TLS{
		leaf: leaf,
		server: &tls.Config{
			MinVersion:       tls.VersionTLS13,
			Certificates:     []tls.Certificate{cert},
			ClientAuth:       tls.RequireAndVerifyClientCert,
			ClientCAs:        pool,
			VerifyConnection: verifyName,
		},
		client: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   TLSServerName,
		},
	}, nil
}

// NotAfter is when the member's certificate expires.
func (t *TLS) NotAfter() time.Time { return t.leaf.NotAfter }

// RemoteOptions are the protoactor remote options that replace its insecure
// gRPC defaults with t's mutual TLS. The server also refuses the remote's
// unary calls: protoactor never makes them and answers them with a panic
// that gRPC does not recover (it would kill the process).
func (t *TLS) RemoteOptions() []remote.ConfigOption {
	return []remote.ConfigOption{
		remote.WithServerOptions(grpc.Creds(credentials.NewTLS(t.server)), grpc.UnaryInterceptor(refuseUnary)),
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(t.client))),
	}
}

// refuseUnary answers protoactor's unimplemented ListProcesses and
// GetProcessDiagnostics instead of letting them panic.
func refuseUnary(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
	return nil, status.Error(codes.Unimplemented, "not served")
}

// insecureRemoteOptions keeps the refusal of unary calls on a remote
// without TLS; the dial options stay protoactor's insecure default.
func insecureRemoteOptions() []remote.ConfigOption {
	return []remote.ConfigOption{remote.WithServerOptions(grpc.UnaryInterceptor(refuseUnary))}
}

// CheckTLS reports whether New would accept cfg's remote security (its
// certificate files, or the insecure opt-out on loopback), so that a
// caller can refuse a configuration before it opens anything else.
func CheckTLS(cfg Config) error {
	cfg.setDefaults()
	_, _, err := remoteSecurity(cfg)
	return err
}

// remoteSecurity decides how cfg's remote is secured: its options, or an
// error when cfg asks for something unsafe.
func remoteSecurity(cfg Config) ([]remote.ConfigOption, *TLS, error) {
	if cfg.TLS.Insecure {
		if cfg.TLS.Enabled() {
			return nil, nil, errors.New("cluster: insecure remote and TLS certificate files both configured")
		}
		for _, a := range []string{cfg.Bind, cfg.Advertise} {
			if a != "" && !loopback(a) {
				return nil, nil, fmt.Errorf("%w: %s", ErrInsecureNotLoopback, a)
			}
		}
		return insecureRemoteOptions(), nil, nil
	}
	t, err := LoadTLS(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	return t.RemoteOptions(), t, nil
}

// loopback reports whether host:port names a loopback address. An empty host
// means every interface.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
