package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of every webhook request.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex>", with one v1 per
	// secret the sender signs with (two during a rotation).
	HeaderSignature = "Actorim-Signature"
	// HeaderID is the delivery's stable id: a retry carries the same one,
	// so receivers deduplicate on it.
	HeaderID = "Actorim-Webhook-Id"
	// HeaderEvent is the event's name, as in the payload.
	HeaderEvent = "Actorim-Event"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	// ErrNoSignature: the header is missing or has no t or no v1.
	ErrNoSignature = errors.New("hooks: no signature")
	// ErrStaleSignature: the timestamp is outside the tolerance (a replay,
	// or a clock too far off).
	ErrStaleSignature = errors.New("hooks: signature timestamp outside tolerance")
	// ErrBadSignature: no v1 matches the body with the secret.
	ErrBadSignature = errors.New("hooks: signature mismatch")
)

// signature is HMAC-SHA256(secret, "<unix>.<body>") in hex.
func signature(secret string, unix int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(strconv.AppendInt(nil, unix, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the Actorim-Signature value of body at time at, with one v1
// per secret.
func Sign(body []byte, secrets []string, at time.Time) string {
	unix := at.Unix()
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(unix, 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(signature(s, unix, body))
	}
	return b.String()
}

// SetHeaders sets the content type and the three webhook headers of a
// request carrying body.
func SetHeaders(h http.Header, id, event string, body []byte, secrets []string, at time.Time) {
	h.Set("Content-Type", "application/json")
	h.Set(HeaderSignature, Sign(body, secrets, at))
	h.Set(HeaderID, id)
	h.Set(HeaderEvent, event)
}

// Verify checks a received request: header is its Actorim-Signature, body
// its raw body. It succeeds when one v1 is the body's signature with secret
// and the timestamp is within tolerance of now (zero: DefaultTolerance).
// A receiver with two secrets (during a rotation) calls it with each.
func Verify(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var unix int64 = -1
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ErrNoSignature
			}
			unix = n
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if unix < 0 || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrStaleSignature
	}
	want := []byte(signature(secret, unix, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrBadSignature
}
