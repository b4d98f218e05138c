package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

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
	if _, err := NewTokens([]byte("short"), 0); !errors.Is(err, ErrShortSecret) {
		t.Errorf("short secret accepted: %v", err)
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
