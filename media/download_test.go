package media

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRangeAndConditionalRequests(t *testing.T) {
	env := newTestService(t)
	data := randomBytes(10_000, 2)
	f := env.upload(t, "alice", "a.bin", data)
	path := "/v1/media/" + f.FileID

	res, body := env.request(t, "GET", path, "alice", nil, "Range", "bytes=1000-1999")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1000:2000]) {
		t.Fatalf("range: %d, %d bytes", res.StatusCode, len(body))
	}
	if cr := res.Header.Get("Content-Range"); cr != "bytes 1000-1999/10000" {
		t.Fatalf("Content-Range %q", cr)
	}
	res, body = env.request(t, "GET", path, "alice", nil, "Range", "bytes=9000-")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[9000:]) {
		t.Fatalf("open range: %d, %d bytes", res.StatusCode, len(body))
	}

	etag := `"` + f.SHA256 + `"`
	res, body = env.request(t, "GET", path, "alice", nil, "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match: %d, %d bytes", res.StatusCode, len(body))
	}
	res, body = env.request(t, "GET", path, "alice", nil, "If-None-Match", `"other"`)
	if res.StatusCode != 200 || len(body) != len(data) {
		t.Fatalf("If-None-Match of another tag: %d", res.StatusCode)
	}
	// If-Range with a stale tag: the whole file, not the range.
	res, body = env.request(t, "GET", path, "alice", nil, "Range", "bytes=0-9", "If-Range", `"stale"`)
	if res.StatusCode != 200 || len(body) != len(data) {
		t.Fatalf("If-Range stale: %d, %d bytes", res.StatusCode, len(body))
	}
	res, body = env.request(t, "GET", path, "alice", nil, "Range", "bytes=0-9", "If-Range", etag)
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:10]) {
		t.Fatalf("If-Range current: %d, %d bytes", res.StatusCode, len(body))
	}
}

func TestWhoMayDownload(t *testing.T) {
	env := newTestService(t)
	data := randomBytes(1000, 3)
	f := env.upload(t, "alice", "a.bin", data)
	other := env.upload(t, "alice", "b.bin", randomBytes(1000, 4))
	env.msgs.add("bob", 7, f.FileID)       // bob received f in message 7
	env.msgs.add("bob", 8, other.FileID)   // and the other file in 8
	env.msgs.add("carol", 9, f.FileID)     // carol in 9, later recalled
	env.msgs.add("alice", 7, other.FileID) // alice's own message 7 is not bob's
	env.msgs.recall("carol", 9)
	path := "/v1/media/" + f.FileID

	for _, tc := range []struct {
		name, user, query string
		status            int
		code              string
	}{
		{"owner", "alice", "", 200, ""},
		{"owner naming any message", "alice", "?msg=12345", 200, ""},
		{"no message named", "bob", "", 403, "ERR_FORBIDDEN"},
		{"message not in the timeline", "bob", "?msg=9", 403, "ERR_FORBIDDEN"},
		{"message of another file", "bob", "?msg=8", 403, "ERR_FORBIDDEN"},
		{"recalled message", "carol", "?msg=9", 403, "ERR_FORBIDDEN"},
		{"valid message", "bob", "?msg=7", 200, ""},
		{"bad message id", "bob", "?msg=x", 400, "ERR_BAD_REQUEST"},
		{"no token", "", "?msg=7", 401, "ERR_UNAUTHENTICATED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{path, path + "/info"} {
				res, body := env.request(t, "GET", p+tc.query, tc.user, nil)
				if tc.status != 200 {
					expectError(t, res, body, tc.status, tc.code)
					continue
				}
				if res.StatusCode != 200 {
					t.Fatalf("%s: %d %s", p, res.StatusCode, body)
				}
			}
		})
	}
	res, body := env.request(t, "GET", path+"?msg=7", "bob", nil)
	if !bytes.Equal(body, data) {
		t.Fatalf("bob got %d bytes", len(body))
	}
	res, body = env.request(t, "GET", path+"/info?msg=7", "bob", nil)
	var info fileJSON
	if json.Unmarshal(body, &info) != nil || info.QuotaLimit != 0 || info.QuotaUsed != 0 || info.SHA256 != f.SHA256 {
		t.Fatalf("bob's info %s: the quota is the owner's only", body)
	}
	res, body = env.request(t, "GET", "/v1/media/"+strings.Repeat("a", 26), "alice", nil)
	expectError(t, res, body, 404, "ERR_NOT_FOUND")
	res, body = env.request(t, "GET", "/v1/media/nope", "alice", nil)
	expectError(t, res, body, 404, "ERR_NOT_FOUND")
	_ = res
}

// link asks for a signed link to id as user, naming msg (0: none).
func (e *testEnv) link(t *testing.T, user, id string, msg uint64) linkResponse {
	t.Helper()
	var body *bytes.Reader
	var hdr []string
	if msg != 0 {
		body = bytes.NewReader([]byte(`{"msg": "` + strconv.FormatUint(msg, 10) + `"}`))
		hdr = []string{"Content-Type", "application/json"}
	} else {
		body = bytes.NewReader(nil)
	}
	res, data := e.request(t, "POST", "/v1/media/"+id+"/links", user, body, hdr...)
	if res.StatusCode != 200 {
		t.Fatalf("links: %d %s", res.StatusCode, data)
	}
	var l linkResponse
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSignedLinks(t *testing.T) {
	env := newTestService(t)
	img := jpegBytes(t, 640, 480)
	f := env.upload(t, "alice", "cat.jpg", img)
	env.msgs.add("bob", 7, f.FileID)

	own := env.link(t, "alice", f.FileID, 0)
	res, body := env.request(t, "GET", own.URL, "", nil)
	if res.StatusCode != 200 || !bytes.Equal(body, img) {
		t.Fatalf("owner's link: %d", res.StatusCode)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "private, max-age=600" {
		t.Fatalf("Cache-Control %q", cc)
	}
	if own.ThumbURL == "" || own.ExpiresAtMs != env.clock.Now().Add(10*time.Minute).Unix()*1000 {
		t.Fatalf("link %+v", own)
	}
	if res, _ := env.request(t, "GET", own.ThumbURL, "", nil); res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("thumb link: %d", res.StatusCode)
	}

	// Bob may not make a link without naming his message.
	res, body = env.request(t, "POST", "/v1/media/"+f.FileID+"/links", "bob", nil)
	expectError(t, res, body, 403, "ERR_FORBIDDEN")
	res, body = env.request(t, "POST", "/v1/media/"+f.FileID+"/links", "bob", strings.NewReader(`{"msg": 7}`), "Content-Type", "text/plain")
	expectError(t, res, body, 415, "ERR_BAD_REQUEST")
	bobs := env.link(t, "bob", f.FileID, 7)
	if res, _ := env.request(t, "GET", bobs.URL, "", nil); res.StatusCode != 200 {
		t.Fatalf("bob's link: %d", res.StatusCode)
	}

	u, _ := url.Parse(bobs.URL)
	tamper := func(k, v string) string {
		q := u.Query()
		q.Set(k, v)
		return u.Path + "?" + q.Encode()
	}
	sig := u.Query().Get("sig")
	flipped := "A" + sig[1:]
	if sig[0] == 'A' {
		flipped = "B" + sig[1:]
	}
	for name, link := range map[string]string{
		"signature":  tamper("sig", flipped),
		"user":       tamper("u", "carol"),
		"message":    tamper("msg", "8"),
		"expiry":     tamper("exp", strconv.FormatInt(env.clock.Now().Add(time.Hour).Unix(), 10)),
		"file":       strings.Replace(bobs.URL, f.FileID, strings.Repeat("b", 26), 1),
		"no user":    tamper("u", ""),
		"bad base64": tamper("sig", "!!!"),
	} {
		t.Run("tampered "+name, func(t *testing.T) {
			res, body := env.request(t, "GET", link, "", nil)
			expectError(t, res, body, 403, "ERR_FORBIDDEN")
		})
	}

	// The rule is checked at every fetch: a recall takes effect at once.
	env.msgs.recall("bob", 7)
	res, body = env.request(t, "GET", bobs.URL, "", nil)
	expectError(t, res, body, 403, "ERR_FORBIDDEN")

	env.clock.advance(10*time.Minute + time.Second)
	res, body = env.request(t, "GET", own.URL, "", nil)
	expectError(t, res, body, 403, "ERR_FORBIDDEN")
	if !strings.Contains(string(body), "expired") {
		t.Fatalf("expired link: %s", body)
	}
}

func TestDeriveLinkSecret(t *testing.T) {
	derive := func(s string) []byte {
		k, err := DeriveLinkSecret([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := derive("auth secret one"), derive("auth secret two")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, derive("auth secret one")) {
		t.Fatalf("derived %x and %x", a, b)
	}
	if bytes.Contains(a, []byte("auth secret one")) {
		t.Fatal("the auth secret shows in the link secret")
	}
}
