package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"actorim/ids"
)

// ErrUnknownApp reports a token or request naming an application the
// deployment does not have; ErrAppDisabled one naming a disabled one.
var (
	ErrUnknownApp  = errors.New("auth: unknown app")
	ErrAppDisabled = errors.New("auth: app disabled")
)

// AppSecrets resolves an application's token secrets: the newest first
// (it signs), and during a rotation the one before it (still verified).
// It returns an error wrapping ErrUnknownApp or ErrAppDisabled when the
// app's tokens must be refused.
type AppSecrets interface {
	AppSecrets(ctx context.Context, app string) ([][]byte, error)
}

// Keyring issues and verifies the user tokens of every application of a
// deployment. The default application's tokens (no "app" claim) are signed
// under the node's auth secret, as before applications existed; every
// other application's carry "app" and are signed under that app's own
// secrets, so that one app's server can mint tokens for its users only.
type Keyring struct {
	def  *Tokens
	apps AppSecrets // nil: the default app only
	opts []Option
	ttl  time.Duration
	peek *jwt.Parser
}

// NewKeyring returns a Keyring over the default app's Tokens; apps (nil:
// none) resolves the others' secrets, and opts (issuer, audience, maximum
// lifetime) apply to their tokens as to the default app's.
func NewKeyring(def *Tokens, apps AppSecrets, opts ...Option) *Keyring {
	return &Keyring{def: def, apps: apps, opts: opts, ttl: def.ttl, peek: jwt.NewParser()}
}

// Default returns the default application's Tokens.
func (k *Keyring) Default() *Tokens { return k.def }

// Verify checks a token as Tokens.Verify does, under the secrets of the
// app it names.
func (k *Keyring) Verify(ctx context.Context, token string) (Claims, error) {
	var c tokenClaims
	if _, _, err := k.peek.ParseUnverified(token, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.App == "" || c.App == ids.DefaultApp {
		if k.apps != nil {
			// The default app may be disabled too (its record says so).
			if _, err := k.apps.AppSecrets(ctx, ids.DefaultApp); err != nil {
				return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
			}
		}
		return k.def.Verify(token)
	}
	if !ids.ValidApp(c.App) || k.apps == nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrUnknownApp)
	}
	secrets, err := k.apps.AppSecrets(ctx, c.App)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	err = ErrUnknownApp
	for _, s := range secrets {
		t, terr := k.tokens(s)
		if terr != nil {
			continue
		}
		var claims Claims
		if claims, err = t.Verify(token); err == nil {
			return claims, nil
		}
	}
	return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
}

// Issue returns a token for userID of app valid for ttl (0: the default
// lifetime), signed under the app's newest secret.
func (k *Keyring) Issue(ctx context.Context, app, userID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = k.ttl
	}
	if app == "" || app == ids.DefaultApp {
		return k.def.IssueApp(ids.DefaultApp, userID, ttl)
	}
	if k.apps == nil {
		return "", time.Time{}, ErrUnknownApp
	}
	secrets, err := k.apps.AppSecrets(ctx, app)
	if err != nil {
		return "", time.Time{}, err
	}
	if len(secrets) == 0 {
		return "", time.Time{}, fmt.Errorf("%w: %s has no secret", ErrUnknownApp, app)
	}
	t, err := k.tokens(secrets[0])
	if err != nil {
		return "", time.Time{}, err
	}
	return t.IssueApp(app, userID, ttl)
}

// tokens returns a Tokens for one app secret. Building one is cheap (no
// key derivation): HMAC keys are used as they are.
func (k *Keyring) tokens(secret []byte) (*Tokens, error) {
	return NewTokens(secret, k.ttl, k.opts...)
}
