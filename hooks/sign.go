package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

// macs keeps, per secret, HMAC states ready to use: hmac.New hashes the
// key into its pads on every call, Reset restores them from a saved state.
// Secrets are few (one or two per app), so the map stays small.
var macs sync.Map // secret string → *sync.Pool of hash.Hash

func getMAC(secret string) (hash.Hash, *sync.Pool) {
	p, ok := macs.Load(secret)
	if !ok {
		p, _ = macs.LoadOrStore(secret, &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(secret)) }})
	}
	pool := p.(*sync.Pool)
	return pool.Get().(hash.Hash), pool
}

// appendSignature appends HMAC-SHA256(secret, "<unix>.<body>") in hex.
func appendSignature(dst []byte, secret string, unix int64, body []byte) []byte {
	m, pool := getMAC(secret)
	var scratch [sha256.Size * 2]byte
	m.Write(strconv.AppendInt(scratch[:0], unix, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	sum := m.Sum(scratch[:0])
	m.Reset()
	pool.Put(m)
	return hex.AppendEncode(dst, sum)
}

// signature is HMAC-SHA256(secret, "<unix>.<body>") in hex.
func signature(secret string, unix int64, body []byte) string {
	return string(appendSignature(nil, secret, unix, body))
}

// Sign returns the Actorim-Signature value of body at time at, with one v1
// per secret.
func Sign(body []byte, secrets []string, at time.Time) string {
	unix := at.Unix()
	b := make([]byte, 0, 24+len(secrets)*(4+2*sha256.Size))
	b = append(b, "t="...)
	b = strconv.AppendInt(b, unix, 10)
	for _, s := range secrets {
		b = append(b, ",v1="...)
		b = appendSignature(b, s, unix, body)
	}
	return string(b)
}

// SetHeaders sets the content type and the three webhook headers of a
// request carrying body.
func SetHeaders(h http.Header, id, event string, body []byte, secrets []string, at time.Time) {
	v := []string{"application/json", Sign(body, secrets, at), id, event} // one allocation for the four
	h["Content-Type"] = v[0:1:1]
	h[HeaderSignature] = v[1:2:2]
	h[HeaderID] = v[2:3:3]
	h[HeaderEvent] = v[3:4:4]
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
