// Package clientpb is the actorim client protocol, version 1: the Go code
// generated from client.proto (the shapes of every frame) and the WebSocket
// close codes. docs/protocol.md is the reference for the semantics;
// `make proto` regenerates the *.pb.go files.
package clientpb
