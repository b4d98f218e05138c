package actors

import (
	"context"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// The admin API's calls about an app's users: listing and search, disable
// and enable, kick; and the listing of its groups. A disabled user's flag lives in the access record
// "ut/<user>" beside the token revocation (tokens.go): the user grain
// refuses their logins at Attach, the gateway their password logins and
// HTTP calls (Service.LoginAllowed, which reads the store and activates no
// grain). Disabling and kicking go through the user's grain, which knows
// the devices on every node.

// UserInfo is a user as the admin API lists them.
type UserInfo struct {
	UserID   string
	Nickname string
	Disabled bool
}

// UserPage is a page of users; Next, when not empty, asks for the next one.
type UserPage struct {
	Users []UserInfo
	Next  string
}

// Users lists app's users with ids after after, in byte order, at most
// limit of them. It reads the store and activates no grain.
func (s *Service) Users(ctx context.Context, app, after string, limit int) (UserPage, *clientpb.Error) {
	d := s.d.forApp(app)
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	list, err := d.accounts.Users(sctx, after, limit+1)
	cancel()
	if err != nil {
		d.log.Error("list users", "app", d.app, "err", err)
		return UserPage{}, errStoreUnavailable
	}
	var page UserPage
	if len(list) > limit {
		list = list[:limit]
		page.Next = list[limit-1]
	}
	for _, u := range list {
		p, err := d.loadProfile(ctx, u)
		if err != nil {
			d.log.Error("list users: profile", "app", d.app, "user", u, "err", err)
			return UserPage{}, errStoreUnavailable
		}
		info, e := d.userInfo(ctx, p)
		if e != nil {
			return UserPage{}, e
		}
		page.Users = append(page.Users, info)
	}
	return page, nil
}

// SearchUsers finds app's users as the SearchUsers frame does (the user of
// that id, then nickname prefixes), without any caller's block rules; the
// page's Next is the cursor of the next page. It activates no grain.
func (s *Service) SearchUsers(ctx context.Context, app, query string, limit int, cursor string) (UserPage, *clientpb.Error) {
	d := s.d.forApp(app)
	res, e := d.findUsers(ctx, "", query, limit, cursor)
	if e != nil {
		return UserPage{}, e
	}
	page := UserPage{Next: res.GetNextCursor()}
	for _, p := range res.GetUsers() {
		info, e := d.userInfo(ctx, p)
		if e != nil {
			return UserPage{}, e
		}
		page.Users = append(page.Users, info)
	}
	return page, nil
}

func (d *deps) userInfo(ctx context.Context, p *clientpb.Profile) (UserInfo, *clientpb.Error) {
	disabled, e := d.disabled(ctx, p.GetUserId())
	return UserInfo{UserID: p.GetUserId(), Nickname: p.GetNickname(), Disabled: disabled}, e
}

// disabled reads user's flag from the store, never activating a grain.
func (d *deps) disabled(ctx context.Context, user string) (bool, *clientpb.Error) {
	st := &storepb.TokenState{}
	if _, err := d.loadRecord(ctx, tokenKey(user), st); err != nil {
		d.log.Error("read access record", "app", d.app, "user", user, "err", err)
		return false, errStoreUnavailable
	}
	return st.GetDisabled(), nil
}

// LoginAllowed is nil unless user (qualified) is disabled: ERR_FORBIDDEN
// "user disabled". It reads the store and activates no grain.
func (s *Service) LoginAllowed(ctx context.Context, user string) *clientpb.Error {
	d, user := s.d.scope(user)
	disabled, e := d.disabled(ctx, user)
	if e == nil && disabled {
		return errUserDisabled
	}
	return e
}

// SetUserDisabled disables user (qualified), kicking every device of theirs
// with KICK_REASON_DISABLED, or enables them again; it returns the devices
// kicked. An unknown user is ERR_NOT_FOUND (and no grain is activated).
func (s *Service) SetUserDisabled(ctx context.Context, user string, disabled bool) (kicked int, e *clientpb.Error) {
	d, user := s.d.scope(user)
	return d.kickRequest(ctx, user, &actorpb.SetDisabled{Disabled: disabled})
}

// KickUser closes the connection of user's (qualified) device deviceID, or
// of all their devices when deviceID is empty, each after a Kick with
// KICK_REASON_ADMIN; it returns how many. The devices may log in again. An
// unknown user is ERR_NOT_FOUND (and no grain is activated).
func (s *Service) KickUser(ctx context.Context, user, deviceID string) (kicked int, e *clientpb.Error) {
	d, user := s.d.scope(user)
	return d.kickRequest(ctx, user, &actorpb.KickUser{DeviceId: deviceID})
}

// kickRequest asks an existing user's grain for msg, answered by a
// KickResult.
func (d *deps) kickRequest(ctx context.Context, user string, msg any) (int, *clientpb.Error) {
	if e := d.requireAccount(ctx, user); e != nil {
		return 0, e
	}
	res, err := d.member.Request(ctx, user, KindUser, msg)
	if err != nil {
		return 0, errNoAnswer
	}
	r, ok := res.(*actorpb.KickResult)
	if !ok {
		return 0, errUnexpectedAnswer
	}
	return int(r.GetKicked()), r.GetError()
}

func (g *userGrain) onSetDisabled(ctx actor.Context, m *actorpb.SetDisabled) *actorpb.KickResult {
	cur, err := g.access()
	if err != nil {
		g.d.log.Error("read access record", "user", g.id, "err", err)
		return &actorpb.KickResult{Error: errStoreUnavailable}
	}
	if cur.GetDisabled() != m.GetDisabled() {
		next := &storepb.TokenState{RevokedBeforeMs: cur.GetRevokedBeforeMs(), Disabled: m.GetDisabled()}
		if err := g.d.saveState(tokenKey(g.id), next); err != nil {
			g.d.log.Error("write access record", "user", g.id, "err", err)
			return &actorpb.KickResult{Error: errStoreUnavailable}
		}
		g.tokens = next
	}
	if !m.GetDisabled() {
		return &actorpb.KickResult{}
	}
	kicked := g.kick(ctx, func(string, *device) bool { return true },
		clientpb.KickReason_KICK_REASON_DISABLED, "this user was disabled by an administrator")
	return &actorpb.KickResult{Kicked: uint32(kicked)}
}

func (g *userGrain) onKickUser(ctx actor.Context, m *actorpb.KickUser) *actorpb.KickResult {
	kicked := g.kick(ctx, func(id string, _ *device) bool { return m.GetDeviceId() == "" || id == m.GetDeviceId() },
		clientpb.KickReason_KICK_REASON_ADMIN, "an administrator closed this connection")
	return &actorpb.KickResult{Kicked: uint32(kicked)}
}

// internalAccounts lists a store's internal accounts
// (persistence.Accounts.InternalAccounts), the default app's groups among
// them.
type internalAccounts interface {
	InternalAccounts(ctx context.Context, after string, limit int) ([]string, error)
}

// GroupSummary is a group as the admin API lists them.
type GroupSummary struct {
	GroupID   string
	Name      string
	Owner     string
	Members   int
	Dissolved bool
}

// GroupPage is a page of groups; Next, when not empty, asks for the next
// one.
type GroupPage struct {
	Groups []GroupSummary
	Next   string
}

// Groups lists app's groups with ids after after, in byte order, at most
// limit of them, from their existence records (the accounts of the groups'
// own timelines) and group records. It activates no grain. The default
// app's existence records are internal accounts ("#g:<group>"), listed by
// the store's InternalAccounts; another app's are qualified ("acme:#g:...")
// and listed with its users.
func (s *Service) Groups(ctx context.Context, app, after string, limit int) (GroupPage, *clientpb.Error) {
	d := s.d.forApp(app)
	raw := s.d.accounts // the node's: the apps' views leave the groups out
	if def, ok := raw.(defaultAccounts); ok {
		raw = def.Accounts
	}
	list := raw.Users
	if d.app == ids.DefaultApp {
		in, ok := raw.(internalAccounts)
		if !ok {
			return GroupPage{}, errDefaultGroups
		}
		list = in.InternalAccounts
	}
	prefix := ids.Qualify(d.app, groupTimeline(""))
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	found, err := list(sctx, prefix+after, limit+1)
	cancel()
	if err != nil {
		d.log.Error("list groups", "app", d.app, "err", err)
		return GroupPage{}, errStoreUnavailable
	}
	var page GroupPage
	var groups []string
	for _, id := range found {
		g, ok := strings.CutPrefix(id, prefix)
		if !ok {
			break // past the app's groups
		}
		groups = append(groups, g)
	}
	if len(groups) > limit {
		groups = groups[:limit]
		page.Next = groups[limit-1]
	}
	for _, g := range groups {
		st := &storepb.GroupState{}
		if _, err := d.loadRecord(ctx, groupKey(g), st); err != nil {
			d.log.Error("list groups: record", "app", d.app, "group", g, "err", err)
			return GroupPage{}, errStoreUnavailable
		}
		sum := GroupSummary{GroupID: g, Name: st.GetInfo().GetName(), Owner: st.GetInfo().GetOwner(),
			Members: len(st.GetMembers()), Dissolved: st.GetInfo().GetDissolved()}
		if sum.Dissolved {
			sum.Members = 0 // its record keeps who was in it last
		}
		page.Groups = append(page.Groups, sum)
	}
	return page, nil
}
