package hooks

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"v":1,"event":"message.stored"}`)
	at := time.Unix(1_800_000_000, 0)
	rotated := Sign(body, []string{"new", "old"}, at)
	if !strings.HasPrefix(rotated, "t=1800000000,v1=") || strings.Count(rotated, "v1=") != 2 {
		t.Fatalf("header %q", rotated)
	}
	tests := []struct {
		name   string
		header string
		body   []byte
		secret string
		now    time.Time
		want   error
	}{
		{"newest secret", rotated, body, "new", at, nil},
		{"previous secret during a rotation", rotated, body, "old", at, nil},
		{"within tolerance", rotated, body, "new", at.Add(4 * time.Minute), nil},
		{"clock behind within tolerance", rotated, body, "new", at.Add(-4 * time.Minute), nil},
		{"replayed later", rotated, body, "new", at.Add(6 * time.Minute), ErrStaleSignature},
		{"from the future", rotated, body, "new", at.Add(-6 * time.Minute), ErrStaleSignature},
		{"wrong secret", rotated, body, "other", at, ErrBadSignature},
		{"tampered body", rotated, []byte(`{"v":1,"event":"message.stored "}`), "new", at, ErrBadSignature},
		{"timestamp changed", strings.Replace(rotated, "t=1800000000", "t=1800000001", 1), body, "new", at, ErrBadSignature},
		{"no header", "", body, "new", at, ErrNoSignature},
		{"no v1", "t=1800000000", body, "new", at, ErrNoSignature},
		{"bad t", "t=x,v1=00", body, "new", at, ErrNoSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.header, tc.body, tc.secret, 0, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	body := []byte(`{}`)
	SetHeaders(h, "msg-default-42", EventMessageStored, body, []string{"s"}, time.Now())
	if h.Get(HeaderID) != "msg-default-42" || h.Get(HeaderEvent) != EventMessageStored || h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h)
	}
	if err := Verify(h.Get(HeaderSignature), body, "s", time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSign(b *testing.B) {
	body := BeforeSendPayload("default", "bs-default-alice-c1", 1800000000000, textMessage("alice", "bob", "c1", "hello, this is a message of a usual length"))
	secrets := []string{"a-webhook-secret-of-32-bytes-or-more"}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = Sign(body, secrets, at)
	}
}
