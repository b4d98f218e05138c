// Package auth issues and verifies the signed tokens clients present at login,
// and hashes passwords with bounded concurrency.
//
// Tokens are JWTs signed with HMAC-SHA256. User tokens are signed under the
// auth secret shared by every node and by the application server, so an app
// server can mint tokens for its own users the way IM SDK integrations do
// (see the README). Admin tokens are signed under a separate admin secret and
// carry "role": "admin"; a node verifies them with a Tokens of their own, so
// holding the app-server secret grants no admin access. A token carries the
// user id in "sub", an expiry in "exp", its issue time in "iat" (needed for
// revocation), and optionally "iss" and "aud".
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"actorim/ids"
)

// MinSecretLen is the shortest accepted signing secret, in bytes.
const MinSecretLen = 32

// RoleAdmin marks a token that may call the admin API.
const RoleAdmin = "admin"

// Defaults of Tokens.
const (
	// DefaultTTL is the lifetime of issued tokens when none is given.
	DefaultTTL = 24 * time.Hour
	// DefaultMaxLifetime is the longest a token may still be valid for when
	// it is presented: a token whose expiry is further away is refused.
	DefaultMaxLifetime = 30 * 24 * time.Hour
)

// leeway is the clock skew tolerated on exp, iat and nbf.
const leeway = 5 * time.Second

var (
	// ErrInvalidToken reports a token that is malformed, forged, expired,
	// valid for longer than the maximum lifetime, for another issuer or
	// audience, or names no valid user.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrShortSecret reports a signing secret below MinSecretLen bytes.
	ErrShortSecret = errors.New("auth: secret shorter than 32 bytes")
	// ErrLifetime reports a token lifetime beyond the maximum.
	ErrLifetime = errors.New("auth: token lifetime beyond the maximum")
)

// Claims is what a verified token says.
type Claims struct {
	// App is the application the token is for (its "app" claim;
	// ids.DefaultApp when it has none). UserID is the user's id within it.
	App       string
	UserID    string
	Admin     bool
	ExpiresAt time.Time
	// IssuedAt is the token's "iat", zero when it has none (such a token
	// is refused once its user's tokens have been revoked).
	IssuedAt time.Time
}

type tokenClaims struct {
	Role string `json:"role,omitempty"`
	App  string `json:"app,omitempty"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies tokens under one secret.
type Tokens struct {
	secret      []byte
	ttl         time.Duration
	maxLifetime time.Duration
	issuer      string
	audience    string
	parser      *jwt.Parser
}

// Option tunes a Tokens.
type Option func(*Tokens)

// WithMaxLifetime refuses tokens whose expiry is further than d away when
// they are verified, and the issuing of such tokens. Default
// DefaultMaxLifetime.
func WithMaxLifetime(d time.Duration) Option {
	return func(t *Tokens) {
		if d > 0 {
			t.maxLifetime = d
		}
	}
}

// WithIssuer sets "iss" in issued tokens and requires it in verified ones.
func WithIssuer(iss string) Option { return func(t *Tokens) { t.issuer = iss } }

// WithAudience sets "aud" in issued tokens and requires it among a verified
// token's audiences.
func WithAudience(aud string) Option { return func(t *Tokens) { t.audience = aud } }

// NewTokens returns a Tokens signing with secret; ttl is the lifetime of the
// tokens it issues (0 means DefaultTTL).
func NewTokens(secret []byte, ttl time.Duration, opts ...Option) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	t := &Tokens{secret: append([]byte(nil), secret...), ttl: ttl, maxLifetime: DefaultMaxLifetime}
	for _, o := range opts {
		o(t)
	}
	if t.ttl > t.maxLifetime {
		return nil, fmt.Errorf("%w: %v > %v", ErrLifetime, t.ttl, t.maxLifetime)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	}
	if t.issuer != "" {
		popts = append(popts, jwt.WithIssuer(t.issuer))
	}
	if t.audience != "" {
		popts = append(popts, jwt.WithAudience(t.audience))
	}
	t.parser = jwt.NewParser(popts...)
	return t, nil
}

// MaxLifetime is the longest lifetime a token may have left.
func (t *Tokens) MaxLifetime() time.Duration { return t.maxLifetime }

// Issue returns a token for userID valid for the configured lifetime.
func (t *Tokens) Issue(userID string, admin bool) (string, time.Time, error) {
	return t.IssueFor(userID, admin, t.ttl)
}

// IssueFor returns a token for userID valid for ttl (at most the maximum
// lifetime).
func (t *Tokens) IssueFor(userID string, admin bool, ttl time.Duration) (string, time.Time, error) {
	return t.issue(ids.DefaultApp, userID, admin, ttl)
}

// IssueApp returns a token for userID of app (its "app" claim; none for
// the default app) valid for ttl.
func (t *Tokens) IssueApp(app, userID string, ttl time.Duration) (string, time.Time, error) {
	return t.issue(app, userID, false, ttl)
}

func (t *Tokens) issue(app, userID string, admin bool, ttl time.Duration) (string, time.Time, error) {
	if !ids.ValidApp(app) {
		return "", time.Time{}, fmt.Errorf("auth: invalid app id %q", app)
	}
	if !ids.ValidUser(userID) {
		return "", time.Time{}, fmt.Errorf("auth: invalid user id %q", userID)
	}
	if ttl > t.maxLifetime {
		return "", time.Time{}, fmt.Errorf("%w: %v > %v", ErrLifetime, ttl, t.maxLifetime)
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    t.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}}
	if t.audience != "" {
		c.Audience = jwt.ClaimStrings{t.audience}
	}
	if admin {
		c.Role = RoleAdmin
	}
	if app != ids.DefaultApp {
		c.App = app
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, algorithm, expiry, lifetime, issuer
// and audience (when configured) and returns its claims.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c tokenClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !ids.ValidUser(c.Subject) {
		return Claims{}, fmt.Errorf("%w: bad subject", ErrInvalidToken)
	}
	if left := time.Until(c.ExpiresAt.Time); left > t.maxLifetime+leeway {
		return Claims{}, fmt.Errorf("%w: expires in %v, beyond the maximum lifetime of %v", ErrInvalidToken, left.Round(time.Second), t.maxLifetime)
	}
	app := c.App
	if app == "" {
		app = ids.DefaultApp
	}
	if !ids.ValidApp(app) {
		return Claims{}, fmt.Errorf("%w: bad app", ErrInvalidToken)
	}
	out := Claims{App: app, UserID: c.Subject, Admin: c.Role == RoleAdmin, ExpiresAt: c.ExpiresAt.Time}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time
	}
	return out, nil
}

// Qualified is the user's id inside the server (ids.Qualify): the app's
// users are apart from every other app's.
func (c Claims) Qualified() string { return ids.Qualify(c.App, c.UserID) }

// Revoked reports whether a token with these claims was issued before
// revokedBefore (zero: nothing is revoked). A token without "iat" cannot
// show it is newer, so it counts as revoked.
func (c Claims) Revoked(revokedBefore time.Time) bool {
	if revokedBefore.IsZero() {
		return false
	}
	return c.IssuedAt.IsZero() || c.IssuedAt.Before(revokedBefore)
}
