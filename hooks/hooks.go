// Package hooks calls applications' webhooks: the synchronous before-send
// call (Caller), which may allow, refuse or rewrite a message, and the
// at-least-once delivery of after-the-fact events (Deliverer) from a durable
// queue in the store (persistence.HookQueue). Every request is signed (see
// Sign and Verify) and carries its id and event name in headers; events.go
// builds the payloads and docs/webhooks.md describes them for receivers.
//
// The package knows no actor and no gateway: the node builds a Caller and a
// Deliverer over a store and a Targets (the apps' webhook settings) and
// hands them to whoever sends messages and records events.
package hooks
