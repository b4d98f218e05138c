package media

// Signed links: a URL that downloads a file without a token, for a player or
// an <img> that cannot send one. It names the user it was made for, the
// message that grants access and its expiry, under an HMAC-SHA256 with the
// cluster's link secret; the access rule is checked again on every fetch.

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"actorim/protos/clientpb"
)

// DeriveLinkSecret derives Config.LinkSecret from the auth secret (HKDF
// with SHA-256), so that every node of a cluster, which shares the auth
// secret, signs and checks links alike, and a link's signature reveals
// nothing about the auth secret.
func DeriveLinkSecret(authSecret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, authSecret, nil, "actorim media link secret v1", 32)
}

// maxLinkBody bounds the body of POST /v1/media/{id}/links.
const maxLinkBody = 1 << 10

type linkRequest struct {
	// Msg is the message that grants access; a number or, as the
	// protocol's JSON writes 64-bit ids, a string.
	Msg json.RawMessage `json:"msg,omitempty"`
}

type linkResponse struct {
	URL         string `json:"url"`
	ThumbURL    string `json:"thumb_url,omitempty"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

// handleLinks is POST /v1/media/{id}/links: it checks the caller may read
// the file now and answers signed URLs of the file and its thumbnail.
func (s *Service) handleLinks(w http.ResponseWriter, r *http.Request) {
	user, ok := UserFrom(r.Context())
	if !ok {
		writeError(w, errNoUser)
		return
	}
	req := requester{user: user}
	if r.ContentLength != 0 {
		var ok bool
		if req.msg, ok = readLinkRequest(w, r); !ok {
			return
		}
	}
	id := r.PathValue("id")
	f, ok := s.readable(w, r, id, req)
	if !ok {
		return
	}
	exp := s.cfg.Now().Add(s.cfg.LinkTTL).Unix()
	query := "?msg=" + strconv.FormatUint(req.msg, 10) + "&u=" + url.QueryEscape(user) +
		"&exp=" + strconv.FormatInt(exp, 10) + "&sig=" + s.sign(id, user, req.msg, exp)
	res := linkResponse{URL: "/v1/media/" + id + query, ExpiresAtMs: exp * 1000}
	if f.ThumbBlob != "" {
		res.ThumbURL = "/v1/media/" + id + "/thumb" + query
	}
	writeJSON(w, http.StatusOK, res)
}

// readLinkRequest reads {"msg": <id>}; it answers the request itself when
// it cannot. As every JSON endpoint of the gateway, it takes
// application/json only.
func readLinkRequest(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeErrorStatus(w, http.StatusUnsupportedMediaType, errContentType)
		return 0, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLinkBody))
	if err != nil {
		writeError(w, errBadLinkBody)
		return 0, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return 0, true
	}
	var lr linkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lr); err != nil {
		writeError(w, errBadLinkBody)
		return 0, false
	}
	if len(lr.Msg) == 0 || string(lr.Msg) == "null" {
		return 0, true
	}
	raw := string(bytes.Trim(lr.Msg, `"`))
	msg, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(w, errBadLinkBody)
		return 0, false
	}
	return msg, true
}

// sign is the signature of a link: HMAC-SHA256 over "id|user|msg|exp"
// (user ids never hold '|'), base64url without padding.
func (s *Service) sign(id, user string, msg uint64, exp int64) string {
	m := hmac.New(sha256.New, s.cfg.LinkSecret)
	m.Write([]byte(id + "|" + user + "|" + strconv.FormatUint(msg, 10) + "|" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyLink checks the signature (in constant time) and expiry of a
// signed query for file id and returns who it was made for.
func (s *Service) verifyLink(id string, q url.Values) (requester, *clientpb.Error) {
	user := q.Get("u")
	msg, err1 := strconv.ParseUint(q.Get("msg"), 10, 64)
	exp, err2 := strconv.ParseInt(q.Get("exp"), 10, 64)
	sig, err3 := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if user == "" || err1 != nil || err2 != nil || err3 != nil {
		return requester{}, errLinkBad
	}
	want, _ := base64.RawURLEncoding.DecodeString(s.sign(id, user, msg, exp))
	if !hmac.Equal(sig, want) {
		return requester{}, errLinkBad
	}
	if s.cfg.Now().Unix() >= exp {
		return requester{}, errLinkExpired
	}
	return requester{user: user, msg: msg, signed: true, exp: exp}, nil
}
