// Package actorpb holds the messages exchanged between actors (connection
// actors and grains), generated from actor.proto and social.proto. They
// cross nodes through protoactor's remote, so every one is a protobuf
// message. `make proto` regenerates the *.pb.go files.
package actorpb
