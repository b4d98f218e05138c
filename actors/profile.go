package actors

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/text/cases"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// Profiles: a user's nickname, avatar URL and a JSON object of the app's
// (docs/protocol.md, "Profiles"). The record (profileKey) is written by the
// user's grain only; SetProfile goes through it. The reads (GetProfiles,
// SearchUsers) run on the asking connection's actor, reading records, as
// sync does: they activate no grain, and a slow read holds up only the
// connection that asked.

// Limits of profiles and of the requests that read them.
const (
	maxNicknameRunes   = 64
	maxNicknameBytes   = 256
	maxAvatarURLBytes  = 1024
	maxExtraBytes      = 4 << 10
	maxProfileUsers    = 100
	maxSearchLimit     = 50
	defaultSearchLimit = 20
	maxQueryRunes      = 64
	maxCursorBytes     = 512
	// A user changes their profile at most profileBurst times in a row, then
	// once every profileRefill: each change is pushed to every online friend.
	profileBurst  = 10
	profileRefill = 6 * time.Second
)

// The Directory scope of an app's users is the app's id (deps.app), so
// that a search never crosses applications.

// profileLimit is the user grain's rate of profile changes (in memory: a
// grain that moves starts afresh, which only loosens the bound for a moment).
type profileLimit struct{ lim *rate.Limiter }

func (p *profileLimit) allow() (time.Duration, bool) {
	if p.lim == nil {
		p.lim = rate.NewLimiter(rate.Every(profileRefill), profileBurst)
	}
	r := p.lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, false
	}
	return 0, true
}

// onSetProfile answers a client's SetProfile (UserOp): within the rate of
// changes, then as setProfile.
func (g *userGrain) onSetProfile(ctx actor.Context, m *actorpb.UserOp, sp *clientpb.SetProfile) *actorpb.OpResult {
	if e := validateSetProfile(sp); e != nil {
		return failed(e)
	}
	if wait, ok := g.prof.allow(); !ok {
		e := clientError(clientpb.ErrorCode_ERR_RATE_LIMITED, "set_profile: too many profile changes, retry later")
		e.RetryAfterMs = uint32(wait/time.Millisecond) + 1
		return failed(e)
	}
	return g.setProfile(ctx, sp, m.GetSessionId())
}

// onAdminSetProfile answers the admin API's AdminSetProfile: no rate.
func (g *userGrain) onAdminSetProfile(ctx actor.Context, m *actorpb.AdminSetProfile) *actorpb.OpResult {
	if e := validateSetProfile(m.GetSet()); e != nil {
		return failed(e)
	}
	return g.setProfile(ctx, m.GetSet(), "")
}

// setProfile applies a validated SetProfile: the record first, then the
// directory (rewritten whenever a nickname is given, so a retry repairs an
// index write that failed after the record's), then the push to the user's
// other devices (all but exceptSession) and online friends.
func (g *userGrain) setProfile(ctx actor.Context, sp *clientpb.SetProfile, exceptSession string) *actorpb.OpResult {
	cur, err := g.d.loadProfile(context.Background(), g.id)
	if err != nil {
		g.d.log.Error("load profile", "user", g.id, "err", err)
		return failed(errStoreUnavailable)
	}
	next := proto.Clone(cur).(*clientpb.Profile)
	if sp.Nickname != nil {
		next.Nickname = cleanNickname(sp.GetNickname())
	}
	if sp.AvatarUrl != nil {
		next.AvatarUrl = sp.GetAvatarUrl()
	}
	if sp.Extra != nil {
		next.Extra = compactJSON(sp.GetExtra())
	}
	changed := !proto.Equal(next, cur)
	if changed {
		next.UpdatedAtMs = nowMs()
		if err := g.d.saveState(profileKey(g.id), next); err != nil {
			g.d.log.Error("save profile", "user", g.id, "err", err)
			return failed(errStoreUnavailable)
		}
	}
	if sp.Nickname != nil && g.d.directory != nil {
		sctx, cancel := g.d.storeCtx()
		if next.Nickname == "" {
			err = g.d.directory.RemoveName(sctx, g.d.app, g.id)
		} else {
			err = g.d.directory.IndexName(sctx, g.d.app, g.id, foldName(next.Nickname))
		}
		cancel()
		if err != nil {
			g.d.log.Error("index nickname", "user", g.id, "err", err)
			return failed(errStoreUnavailable)
		}
	}
	if changed {
		g.pushProfile(ctx, next, exceptSession)
	}
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Profile{Profile: next}}}
}

// pushProfile tells the user's devices but exceptSession's, and the online
// devices of friends, that the profile changed. Friends this user blocked
// are not told, nor friends who blocked this user (presenceTo checks).
func (g *userGrain) pushProfile(ctx actor.Context, p *clientpb.Profile, exceptSession string) {
	s := &clientpb.Signal{Kind: &clientpb.Signal_ProfileChanged{ProfileChanged: &clientpb.ProfileChanged{Profile: p}}}
	msg := &actorpb.DeviceSignal{Signal: s}
	for _, d := range g.devices {
		if d.session != exceptSession {
			ctx.Send(d.conn, msg)
		}
	}
	st, e := g.socialState()
	if e != nil {
		return
	}
	for f := range st.GetFriends() {
		if !st.GetBlocked()[f] {
			g.d.presenceTo(ctx, f, g.id, s)
		}
	}
}

// validateSetProfile checks the fields present; nothing is trimmed here.
func validateSetProfile(sp *clientpb.SetProfile) *clientpb.Error {
	bad := func(msg string) *clientpb.Error {
		return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "set_profile: "+msg)
	}
	if sp == nil || sp.Nickname == nil && sp.AvatarUrl == nil && sp.Extra == nil {
		return bad("give nickname, avatar_url or extra")
	}
	if sp.Nickname != nil {
		if msg := nicknameProblem(sp.GetNickname()); msg != "" {
			return bad(msg)
		}
	}
	if sp.AvatarUrl != nil {
		if msg := avatarProblem(sp.GetAvatarUrl()); msg != "" {
			return bad(msg)
		}
	}
	if x := sp.GetExtra(); sp.Extra != nil && x != "" {
		if len(x) > maxExtraBytes {
			return clientError(clientpb.ErrorCode_ERR_PAYLOAD_TOO_LARGE, fmt.Sprintf("set_profile: extra is %d bytes, the limit is %d", len(x), maxExtraBytes))
		}
		if !utf8.ValidString(x) || !json.Valid([]byte(x)) || !strings.HasPrefix(strings.TrimLeft(x, " \t\r\n"), "{") {
			return bad("extra must be a JSON object")
		}
	}
	return nil
}

// nicknameProblem says what is wrong with a nickname, "" when nothing.
func nicknameProblem(s string) string {
	if !utf8.ValidString(s) {
		return "nickname is not valid UTF-8"
	}
	s = cleanNickname(s)
	if len(s) > maxNicknameBytes || utf8.RuneCountInString(s) > maxNicknameRunes {
		return fmt.Sprintf("nickname must be at most %d characters", maxNicknameRunes)
	}
	for _, r := range s {
		if forbiddenInName(r) {
			return fmt.Sprintf("nickname holds a control character (%U)", r)
		}
	}
	return ""
}

// forbiddenInName: control characters, line and paragraph separators, and
// the bidirectional controls that make a name read as another.
func forbiddenInName(r rune) bool {
	switch {
	case unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func cleanNickname(s string) string { return strings.TrimSpace(s) }

// avatarProblem says what is wrong with an avatar URL, "" when nothing: it
// must be empty or an absolute http(s) URL of printable ASCII without
// credentials.
func avatarProblem(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > maxAvatarURLBytes {
		return fmt.Sprintf("avatar_url must be at most %d bytes", maxAvatarURLBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "avatar_url must be printable ASCII without spaces (percent-encode the rest)"
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "avatar_url must be an absolute http:// or https:// URL without credentials"
	}
	return ""
}

// compactJSON returns a valid JSON document without insignificant space.
func compactJSON(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

// foldName is the form names are indexed and searched by: trimmed, case
// folded (Unicode full folding: "Straße" and "STRASSE" are one), cut to the
// Directory's bound on a character boundary.
func foldName(s string) string {
	f := cases.Fold().String(strings.TrimSpace(s))
	for len(f) > persistence.MaxDirectoryBytes {
		_, n := utf8.DecodeLastRuneInString(f)
		f = f[:len(f)-n]
	}
	return f
}

// loadProfile reads user's profile record; a user without one has an empty
// profile.
func (d *deps) loadProfile(ctx context.Context, user string) (*clientpb.Profile, error) {
	p := &clientpb.Profile{}
	if _, err := d.loadRecord(ctx, profileKey(user), p); err != nil {
		return nil, err
	}
	p.UserId = user
	return p, nil
}

// visibleProfile returns user's profile as caller may see it: nil when user
// does not exist or blocked caller (the two look alike). extra is left in.
// An empty caller (the admin API) is blocked by no one.
func (d *deps) visibleProfile(ctx context.Context, caller, user string) (*clientpb.Profile, error) {
	p := &clientpb.Profile{}
	found, err := d.loadRecord(ctx, profileKey(user), p)
	if err != nil {
		return nil, err
	}
	if !found {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		_, err := d.accounts.GetAccount(sctx, user)
		cancel()
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, err
		}
	}
	p.UserId = user
	if user == caller || caller == "" {
		return p, nil
	}
	blocked, err := d.blockedBy(ctx, user, caller)
	if err != nil || blocked {
		return nil, err
	}
	return p, nil
}

// blockedBy reports whether user blocked other (user's policy record).
func (d *deps) blockedBy(ctx context.Context, user, other string) (bool, error) {
	pol := &storepb.SocialState{}
	if _, err := d.loadRecord(ctx, policyKey(user), pol); err != nil {
		return false, err
	}
	return pol.GetBlocked()[other], nil
}

// readTimeout bounds a whole GetProfiles or SearchUsers, whatever its
// number of reads.
const readTimeout = 5 * time.Second

// onProfileRead answers GetProfiles and SearchUsers on the connection.
func (c *connActor) onProfileRead(id uint32, f *clientpb.Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	var res *clientpb.Result
	var e *clientpb.Error
	switch b := f.GetBody().(type) {
	case *clientpb.Frame_GetProfiles:
		res, e = c.d.getProfiles(ctx, c.sess.UserID, b.GetProfiles.GetUsers())
	case *clientpb.Frame_SearchUsers:
		res, e = c.d.searchUsers(ctx, c.sess.UserID, b.SearchUsers)
	}
	c.answer(e, &clientpb.Frame{Id: id, Body: &clientpb.Frame_Result{Result: res}})
}

// getProfiles answers GetProfiles: the profiles of users, in the order
// asked, without those who do not exist or blocked caller; extra only for
// caller and caller's friends.
func (d *deps) getProfiles(ctx context.Context, caller string, users []string) (*clientpb.Result, *clientpb.Error) {
	if len(users) > maxProfileUsers {
		return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, fmt.Sprintf("get_profiles: at most %d users", maxProfileUsers))
	}
	for _, u := range users {
		if !ids.ValidUser(u) {
			return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "get_profiles: bad user id "+u)
		}
	}
	st := &storepb.SocialState{}
	if _, err := d.loadRecord(ctx, socialKey(caller), st); err != nil {
		d.log.Warn("get profiles: social state", "user", caller, "err", err)
		return nil, errStoreUnavailable
	}
	l := &clientpb.ProfileList{}
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		p, err := d.visibleProfile(ctx, caller, u)
		if err != nil {
			d.log.Warn("get profiles", "user", caller, "of", u, "err", err)
			return nil, errStoreUnavailable
		}
		if p == nil {
			continue
		}
		if u != caller && st.GetFriends()[u] == nil {
			p.Extra = ""
		}
		l.Profiles = append(l.Profiles, p)
	}
	return &clientpb.Result{Data: &clientpb.Result_Profiles{Profiles: l}}, nil
}

// searchUsers answers SearchUsers: the user whose id is the query (first
// page only), then users whose folded nickname starts with the folded
// query, in name order, a page at a time; none who blocked caller, and no
// extra.
func (d *deps) searchUsers(ctx context.Context, caller string, r *clientpb.SearchUsers) (*clientpb.Result, *clientpb.Error) {
	limit := int(r.GetLimit())
	switch {
	case limit == 0:
		limit = defaultSearchLimit
	case limit > maxSearchLimit:
		return nil, errSearch(fmt.Sprintf("limit must be at most %d", maxSearchLimit))
	}
	out, e := d.findUsers(ctx, caller, r.GetQuery(), limit, r.GetCursor())
	if e != nil {
		return nil, e
	}
	return &clientpb.Result{Data: &clientpb.Result_Search{Search: out}}, nil
}

func errSearch(msg string) *clientpb.Error {
	return clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "search_users: "+msg)
}

// findUsers is the search of SearchUsers, limit results a page. An empty
// caller (the admin API) sees every user: no block rules apply.
func (d *deps) findUsers(ctx context.Context, caller, query string, limit int, cursor string) (*clientpb.UserSearchResult, *clientpb.Error) {
	q := strings.TrimSpace(query)
	if !utf8.ValidString(q) || q == "" || utf8.RuneCountInString(q) > maxQueryRunes {
		return nil, errSearch(fmt.Sprintf("query must be 1 to %d characters of UTF-8", maxQueryRunes))
	}
	after, ok := decodeCursor(cursor)
	if !ok {
		return nil, errSearch("cursor is not one this server gave")
	}
	out := &clientpb.UserSearchResult{}
	add := func(user string) *clientpb.Error {
		p, err := d.visibleProfile(ctx, caller, user)
		if err != nil {
			d.log.Warn("search users", "user", caller, "of", user, "err", err)
			return errStoreUnavailable
		}
		if p != nil {
			p.Extra = ""
			out.Users = append(out.Users, p)
		}
		return nil
	}
	exact := ""
	if cursor == "" && ids.ValidUser(q) {
		if e := add(q); e != nil {
			return nil, e
		}
		exact = q
	}
	if d.directory != nil {
		names, err := d.directory.SearchNames(ctx, d.app, foldName(q), after, limit)
		if err != nil {
			d.log.Warn("search users", "user", caller, "err", err)
			return nil, errStoreUnavailable
		}
		for _, n := range names {
			if n.User == exact {
				continue
			}
			if e := add(n.User); e != nil {
				return nil, e
			}
		}
		if len(names) == limit {
			out.NextCursor = encodeCursor(names[len(names)-1])
		}
	}
	return out, nil
}

// A cursor is the last Directory entry of a page, as base64url of
// "<user>\x00<name>" (user ids hold no NUL).
func encodeCursor(n persistence.Name) string {
	return base64.RawURLEncoding.EncodeToString([]byte(n.User + "\x00" + n.Name))
}

func decodeCursor(s string) (persistence.Name, bool) {
	if s == "" {
		return persistence.Name{}, true
	}
	if len(s) > maxCursorBytes {
		return persistence.Name{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return persistence.Name{}, false
	}
	user, name, ok := strings.Cut(string(b), "\x00")
	if !ok || !ids.ValidUser(user) || persistence.CheckDirectory(ids.DefaultApp, user, name) != nil {
		return persistence.Name{}, false
	}
	return persistence.Name{User: user, Name: name}, true
}

// Profile returns user's whole profile (extra included) for the admin API;
// ERR_NOT_FOUND when the user does not exist. It reads the store and
// activates no grain.
func (s *Service) Profile(ctx context.Context, user string) (*clientpb.Profile, *clientpb.Error) {
	d, user := s.d.scope(user)
	if e := d.requireAccount(ctx, user); e != nil {
		return nil, e
	}
	p, err := d.loadProfile(ctx, user)
	if err != nil {
		d.log.Error("load profile", "app", d.app, "user", user, "err", err)
		return nil, errStoreUnavailable
	}
	return p, nil
}

// SetProfile changes user's profile for the admin API, as the user's own
// SetProfile would (pushed to their devices and friends) but without its
// rate; ERR_NOT_FOUND when the user does not exist (no grain is activated
// for it).
func (s *Service) SetProfile(ctx context.Context, user string, sp *clientpb.SetProfile) (*clientpb.Profile, *clientpb.Error) {
	if e := validateSetProfile(sp); e != nil {
		return nil, e
	}
	d, user := s.d.scope(user)
	if e := d.requireAccount(ctx, user); e != nil {
		return nil, e
	}
	res, e := d.askOp(ctx, user, KindUser, &actorpb.AdminSetProfile{Set: sp})
	if e != nil {
		return nil, e
	}
	return res.GetProfile(), nil
}

// requireAccount is nil when user has an account, ERR_NOT_FOUND when not.
func (d *deps) requireAccount(ctx context.Context, user string) *clientpb.Error {
	found, _, e := d.account(ctx, user)
	switch {
	case e != nil:
		return e
	case !found:
		return clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such user: "+user)
	}
	return nil
}
