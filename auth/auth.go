// Package auth issues and verifies the signed tokens clients present at login,
// and hashes passwords.
//
// Tokens are JWTs signed with HMAC-SHA256 under a secret shared by every node
// and by the application server, so an app server can mint tokens for its own
// users the way IM SDK integrations do (see the README). A token carries the
// user id in "sub", an expiry in "exp", and "role": "admin" for the admin API.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/golang-jwt/jwt/v5"

	"actorim/ids"
)

// MinSecretLen is the shortest accepted signing secret, in bytes.
const MinSecretLen = 32

// RoleAdmin marks a token that may call the admin API.
const RoleAdmin = "admin"

var (
	// ErrInvalidToken reports a token that is malformed, forged, expired or
	// names no valid user.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrShortSecret reports a signing secret below MinSecretLen bytes.
	ErrShortSecret = errors.New("auth: secret shorter than 32 bytes")
)

// Claims is what a verified token says.
type Claims struct {
	UserID    string
	Admin     bool
	ExpiresAt time.Time
}

type tokenClaims struct {
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies tokens under one secret.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	parser *jwt.Parser
}

// NewTokens returns a Tokens signing with secret; ttl is the lifetime of the
// tokens it issues (0 means 24 hours).
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &Tokens{
		secret: append([]byte(nil), secret...),
		ttl:    ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
	}, nil
}

// Issue returns a token for userID valid for the configured lifetime.
func (t *Tokens) Issue(userID string, admin bool) (string, time.Time, error) {
	return t.IssueFor(userID, admin, t.ttl)
}

// IssueFor returns a token for userID valid for ttl.
func (t *Tokens) IssueFor(userID string, admin bool, ttl time.Duration) (string, time.Time, error) {
	if !ids.ValidUser(userID) {
		return "", time.Time{}, fmt.Errorf("auth: invalid user id %q", userID)
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}}
	if admin {
		c.Role = RoleAdmin
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, algorithm and expiry and returns its claims.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c tokenClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !ids.ValidUser(c.Subject) {
		return Claims{}, fmt.Errorf("%w: bad subject", ErrInvalidToken)
	}
	return Claims{UserID: c.Subject, Admin: c.Role == RoleAdmin, ExpiresAt: c.ExpiresAt.Time}, nil
}

// passwordParams follow OWASP's argon2id recommendation (19 MiB, 2 passes):
// strong, yet cheap enough that a login burst does not exhaust memory.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Password limits in bytes.
const (
	MinPasswordLen = 6
	MaxPasswordLen = 256
)

// ErrBadPassword reports a password outside the length limits.
var ErrBadPassword = errors.New("auth: password must be 6 to 256 bytes")

// HashPassword returns an argon2id hash of password in PHC string format.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return "", ErrBadPassword
	}
	return argon2id.CreateHash(password, passwordParams)
}

// CheckPassword reports whether password matches hash; an empty or malformed
// hash matches nothing.
func CheckPassword(password, hash string) bool {
	if hash == "" || len(password) > MaxPasswordLen {
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}
