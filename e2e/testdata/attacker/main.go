// Command attacker is what TestRemoteRefusesUnauthenticated runs as a
// separate process (gRPC's process-wide logger, which every protoactor
// remote sets when it starts, allows one remote per process): it talks to a
// node's actor remote as an outsider could.
//
//	attacker account ADDR USER [CERT KEY CA]   activate USER's grain and read its account record
//	attacker list ADDR [CERT KEY CA]           call the remote's unary ListProcesses over raw gRPC
//	attacker list-no-cert ADDR CA              the same over TLS, trusting CA, without a client certificate
//
// Without CERT, KEY and CA it speaks plain gRPC (protoactor's default). It
// prints what it got and exits 0 when the node answered, 1 when it refused.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"actorim/actors"
	"actorim/protos/actorpb"
)

// serverName is the DNS name member certificates carry (README, cluster
// section).
const serverName = "actorim-cluster"

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: attacker account ADDR USER [CERT KEY CA] | list ADDR [CERT KEY CA] | list-no-cert ADDR CA")
		os.Exit(2)
	}
	var out string
	var err error
	switch mode, addr := os.Args[1], os.Args[2]; mode {
	case "account":
		out, err = account(addr, os.Args[3], os.Args[4:])
	case "list":
		out, err = list(addr, dialCreds(os.Args[3:]))
	case "list-no-cert":
		pool := caPool(os.Args[3])
		out, err = list(addr, grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12})))
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(1)
	}
	fmt.Println("answered:", out)
}

// account asks the node at addr, as a cluster peer would, to activate
// user's grain and return its account record.
func account(addr, user string, certs []string) (string, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	var opts []remote.ConfigOption
	if len(certs) == 3 {
		cert, pool := pair(certs)
		server := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		opts = append(opts, remote.WithServerOptions(grpc.Creds(credentials.NewTLS(server))), dialOption(certs))
	}
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0, opts...))
	r.Start()

	activator := actor.NewPID(addr, "partition-activator")
	res, err := system.Root.RequestFuture(activator, &pcluster.ActivationRequest{
		ClusterIdentity: &pcluster.ClusterIdentity{Identity: user, Kind: actors.KindUser},
	}, 3*time.Second).Result()
	if err != nil {
		return "", fmt.Errorf("activation: %w", err)
	}
	act, ok := res.(*pcluster.ActivationResponse)
	if !ok || act.GetPid() == nil {
		return "", fmt.Errorf("activation answered %T %v", res, res)
	}
	res, err = system.Root.RequestFuture(act.GetPid(), &actorpb.GetAccount{}, 3*time.Second).Result()
	if err != nil {
		return "", fmt.Errorf("GetAccount: %w", err)
	}
	acc, ok := res.(*actorpb.GetAccountResult)
	if !ok || !acc.GetFound() {
		return "", fmt.Errorf("GetAccount answered %T %v", res, res)
	}
	return fmt.Sprintf("account of %s: found, password hash %s", user, acc.GetPasswordHash()), nil
}

// list calls the remote's unary ListProcesses over a raw gRPC connection.
func list(addr string, creds grpc.DialOption) (string, error) {
	conn, err := grpc.Dial(addr, creds)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := remote.NewRemotingClient(conn).ListProcesses(ctx, &remote.ListProcessesRequest{})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("processes %v", res.GetPids()), nil
}

func dialCreds(certs []string) grpc.DialOption {
	if len(certs) != 3 {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	cert, pool := pair(certs)
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}))
}

func dialOption(certs []string) remote.ConfigOption {
	return remote.WithDialOptions(dialCreds(certs))
}

func pair(certs []string) (tls.Certificate, *x509.CertPool) {
	cert, err := tls.LoadX509KeyPair(certs[0], certs[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return cert, caPool(certs[2])
}

func caPool(path string) *x509.CertPool {
	b, err := os.ReadFile(path)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(b) {
		fmt.Fprintln(os.Stderr, "no CA certificate in", path, err)
		os.Exit(2)
	}
	return pool
}
