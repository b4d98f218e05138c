package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestTokenRoundTrip(t *testing.T) {
	tk, err := NewTokens(secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, exp, err := tk.Issue("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(s)
	if err != nil || c.UserID != "alice" || c.Admin || !c.ExpiresAt.Equal(exp) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	s, _, _ = tk.Issue("ops", true)
	if c, err := tk.Verify(s); err != nil || !c.Admin {
		t.Fatalf("admin Verify = %+v, %v", c, err)
	}
}

func TestTokenRefusals(t *testing.T) {
	tk, _ := NewTokens(secret, time.Hour)
	other, _ := NewTokens([]byte(strings.Repeat("x", 32)), time.Hour)
	forged, _, _ := other.Issue("alice", false)
	expired, _, _ := tk.IssueFor("alice", false, -time.Minute)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	noneStr, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice"}).SignedString(secret)
	badSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "a/b", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(secret)
	for name, tok := range map[string]string{
		"empty": "", "garbage": "not.a.token", "forged": forged, "expired": expired,
		"alg none": noneStr, "no exp": noExp, "bad subject": badSub,
	} {
		if _, err := tk.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify err = %v, want ErrInvalidToken", name, err)
		}
	}
	long, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "alice",
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(DefaultMaxLifetime + time.Hour))}).SignedString(secret)
	if _, err := tk.Verify(long); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token beyond the maximum lifetime: Verify err = %v", err)
	}
	if _, err := NewTokens([]byte("short"), 0); !errors.Is(err, ErrShortSecret) {
		t.Errorf("short secret accepted: %v", err)
	}
}

// TestTokenMaxLifetime: a token valid for longer than the maximum is
// refused, however it was signed, and is not issued either.
func TestTokenMaxLifetime(t *testing.T) {
	tk, err := NewTokens(secret, time.Hour, WithMaxLifetime(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tk.IssueFor("alice", false, 3*time.Hour); !errors.Is(err, ErrLifetime) {
		t.Fatalf("IssueFor beyond the maximum: %v", err)
	}
	ok, _, _ := tk.IssueFor("alice", false, 2*time.Hour)
	if _, err := tk.Verify(ok); err != nil {
		t.Fatalf("token at the maximum refused: %v", err)
	}
	wide, _ := NewTokens(secret, time.Hour, WithMaxLifetime(10*time.Hour))
	long, _, _ := wide.IssueFor("alice", false, 3*time.Hour)
	if _, err := tk.Verify(long); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "maximum lifetime") {
		t.Fatalf("3h token under a 2h maximum: %v", err)
	}
	if _, err := NewTokens(secret, 3*time.Hour, WithMaxLifetime(2*time.Hour)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("ttl above the maximum accepted: %v", err)
	}
}

// TestTokenIssuerAudience: with iss and aud configured, tokens without them
// or with others are refused; issued tokens carry them.
func TestTokenIssuerAudience(t *testing.T) {
	plain, _ := NewTokens(secret, time.Hour)
	strict, _ := NewTokens(secret, time.Hour, WithIssuer("https://app.example"), WithAudience("actorim"))
	otherIss, _ := NewTokens(secret, time.Hour, WithIssuer("https://evil.example"), WithAudience("actorim"))
	otherAud, _ := NewTokens(secret, time.Hour, WithIssuer("https://app.example"), WithAudience("billing"))
	good, _, _ := strict.Issue("alice", false)
	if c, err := strict.Verify(good); err != nil || c.UserID != "alice" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	for name, tk := range map[string]*Tokens{"no iss or aud": plain, "other iss": otherIss, "other aud": otherAud} {
		s, _, _ := tk.Issue("alice", false)
		if _, err := strict.Verify(s); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify err = %v, want ErrInvalidToken", name, err)
		}
	}
	// Unconfigured, iss and aud are not checked.
	if _, err := plain.Verify(good); err != nil {
		t.Errorf("plain Verify of a token with iss and aud: %v", err)
	}
}

// TestTokenAdminSecretApart: an admin claim signed with the app-server
// secret does not verify under the admin secret, and the reverse.
func TestTokenAdminSecretApart(t *testing.T) {
	app, _ := NewTokens(secret, time.Hour)
	admin, _ := NewTokens([]byte(strings.Repeat("a", 32)), time.Hour)
	forged, _, _ := app.Issue("ops", true)
	if _, err := admin.Verify(forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("app-secret admin token verified as admin: %v", err)
	}
	real, _, _ := admin.Issue("ops", true)
	if c, err := admin.Verify(real); err != nil || !c.Admin {
		t.Fatalf("admin Verify = %+v, %v", c, err)
	}
	if _, err := app.Verify(real); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("admin token verified as a user token: %v", err)
	}
}

func TestClaimsRevoked(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		iat, before time.Time
		revoked     bool
	}{
		{at, time.Time{}, false},
		{time.Time{}, time.Time{}, false},
		{at, at, false},
		{at, at.Add(time.Second), true},
		{time.Time{}, at, true}, // no iat: cannot show it is newer
	} {
		if got := (Claims{IssuedAt: c.iat}).Revoked(c.before); got != c.revoked {
			t.Errorf("iat %v, revoked before %v: Revoked = %v", c.iat, c.before, got)
		}
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash %q is not argon2id", h)
	}
	if !CheckPassword("correct horse", h) || CheckPassword("wrong horse", h) || CheckPassword("x", "") {
		t.Fatal("CheckPassword")
	}
	if _, err := HashPassword("123"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("short password: %v", err)
	}
}

// TestDummyHashCostsTheSame: the dummy hash has the real parameters, and an
// unknown user's check takes about as long as a known one's.
func TestDummyHashCostsTheSame(t *testing.T) {
	p, _, _, err := argon2id.DecodeHash(dummyHash)
	if err != nil || *p != *passwordParams {
		t.Fatalf("dummy hash params %+v (%v), want %+v", p, err, passwordParams)
	}
	h, _ := HashPassword("correct horse")
	// Interleaved, the fastest of several: the machine is shared and noisy,
	// and the difference to catch is 100-fold (0.5 ms against 50 ms).
	known, unknown := time.Hour, time.Hour
	for range 6 {
		for i, hash := range []string{h, ""} {
			start := time.Now()
			CheckPassword("wrong horse", hash)
			if d := time.Since(start); i == 0 {
				known = min(known, d)
			} else {
				unknown = min(unknown, d)
			}
		}
	}
	if unknown < known/3 || unknown > known*3 {
		t.Fatalf("check of an unknown user took %v, of a known one %v", unknown, known)
	}
	if CheckPassword("actorim-dummy-password-never-matches", "") {
		t.Fatal("the dummy hash matched")
	}
}

// TestHasherBounds: beyond Concurrency, requests wait at most Wait; beyond
// Queue waiting, they are refused at once.
func TestHasherBounds(t *testing.T) {
	h := NewHasher(HasherConfig{Concurrency: 1, Queue: 1, Wait: 300 * time.Millisecond})
	ctx := context.Background()
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var waited time.Duration
	var waitErr error
	go func() {
		defer wg.Done()
		start := time.Now()
		waitErr = h.acquire(ctx)
		waited = time.Since(start)
	}()
	for h.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := h.acquire(ctx); !errors.Is(err, ErrBusy) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("third request with a full queue: %v after %v, want ErrBusy at once", err, time.Since(start))
	}
	wg.Wait()
	if !errors.Is(waitErr, ErrBusy) || waited < 250*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("waiting request: %v after %v, want ErrBusy after about 300ms", waitErr, waited)
	}
	h.release()
	if ok, err := h.Check(ctx, "whatever-pw", ""); ok || err != nil {
		t.Fatalf("Check with a free slot = %v, %v", ok, err)
	}
	if _, err := h.Hash(ctx, "123"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("short password: %v", err)
	}
}
