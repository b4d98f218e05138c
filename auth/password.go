package auth

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/alexedwards/argon2id"
)

// passwordParams follow OWASP's argon2id recommendation (19 MiB, 2 passes).
// Each hash holds 19 MiB while it runs, which is why Hasher bounds how many
// run at once.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash has passwordParams and matches no password anyone types: a login
// of an unknown user (or of one without a password) is checked against it,
// so that it costs what a known user's login costs and its timing does not
// tell who exists.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$9t4DyZM88juWtfeOFQIoKQ$IRs2PCJCTSuWGFwwZXbBBkaQ35S9X0XMdj/QHkojUdw"

// Password limits in bytes.
const (
	MinPasswordLen = 6
	MaxPasswordLen = 256
)

var (
	// ErrBadPassword reports a password outside the length limits.
	ErrBadPassword = errors.New("auth: password must be 6 to 256 bytes")
	// ErrBusy reports that no hashing slot came free in time: the caller
	// should answer "try again later".
	ErrBusy = errors.New("auth: password hashing busy")
)

// ValidPassword reports whether password is within the length limits.
func ValidPassword(password string) bool {
	return len(password) >= MinPasswordLen && len(password) <= MaxPasswordLen
}

// HashPassword returns an argon2id hash of password in PHC string format.
// It does not wait for a Hasher slot; servers hash through a Hasher.
func HashPassword(password string) (string, error) {
	if !ValidPassword(password) {
		return "", ErrBadPassword
	}
	return argon2id.CreateHash(password, passwordParams)
}

// CheckPassword reports whether password matches hash. An empty hash (an
// unknown user, or one who logs in with minted tokens only) is checked
// against a dummy hash of the same cost and matches nothing; so does a
// malformed one.
func CheckPassword(password, hash string) bool {
	if len(password) > MaxPasswordLen {
		return false
	}
	known := hash != ""
	if !known {
		hash = dummyHash
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return known && err == nil && ok
}

// HasherConfig bounds password hashing. Zero values are the defaults.
type HasherConfig struct {
	// Concurrency is how many hashes may run at once (each holds 19 MiB).
	// Default GOMAXPROCS, at least 2 and at most 16: argon2id is CPU-bound,
	// so more at once only adds memory.
	Concurrency int
	// Queue is how many requests may wait for a slot; beyond it they are
	// refused at once with ErrBusy. Default 64.
	Queue int
	// Wait is the longest a request waits for a slot before ErrBusy.
	// Default 2s.
	Wait time.Duration
}

func (c *HasherConfig) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = min(max(runtime.GOMAXPROCS(0), 2), 16)
	}
	if c.Queue <= 0 {
		c.Queue = 64
	}
	if c.Wait <= 0 {
		c.Wait = 2 * time.Second
	}
}

// Hasher hashes and checks passwords with bounded concurrency, so that a
// burst of logins costs queueing and refusals, not memory.
type Hasher struct {
	cfg     HasherConfig
	slots   chan struct{}
	waiting atomic.Int64
}

// NewHasher returns a Hasher.
func NewHasher(cfg HasherConfig) *Hasher {
	cfg.setDefaults()
	return &Hasher{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency)}
}

// Config returns the effective configuration.
func (h *Hasher) Config() HasherConfig { return h.cfg }

// acquire takes a slot, waiting at most cfg.Wait (and never once the queue
// is full).
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > int64(h.cfg.Queue) {
		h.waiting.Add(-1)
		return ErrBusy
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.cfg.Wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ErrBusy
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash hashes password (ErrBadPassword outside the length limits, ErrBusy
// when no slot came free in time).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if !ValidPassword(password) {
		return "", ErrBadPassword
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(password)
}

// Check reports whether password matches hash, as CheckPassword does (an
// empty hash costs the same as a real one); ErrBusy when no slot came free.
func (h *Hasher) Check(ctx context.Context, password, hash string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	return CheckPassword(password, hash), nil
}
