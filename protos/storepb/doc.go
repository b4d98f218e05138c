// Package storepb holds the records the embedded store writes, generated
// from store.proto; their encoding is internal to actorim. `make proto`
// regenerates the *.pb.go files.
package storepb
