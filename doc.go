// Package actorim is the root of the actorim module: an instant-messaging
// server in Go (README.md). It holds no code, only the tests that check the
// whole tree, such as that every package has a doc comment.
package actorim
