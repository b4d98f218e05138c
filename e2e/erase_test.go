package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"actorim/apps"
	"actorim/client"
	"actorim/node"
	"actorim/persistence/embedded"
	"actorim/protos/clientpb"
)

// The right to erasure (issue 14): DELETE /v1/admin/users/{user}?app=
// erases an app's user with friends, groups (one owned, one owned alone,
// one of another's), messages, a profile and two sessions; afterwards no
// key of the hot store names the user, the friends and groups go on
// without them, and the id is free.

// TestUserDeletion runs it on a node over the embedded store, whose
// directory is searched key by key (and value by value) once the node has
// stopped.
func TestUserDeletion(t *testing.T) {
	n := startStoredNode(t, nil)
	app, user := userDeletion(t, n.testNode, nil)
	st := n.stopAndOpen(t)
	keys := 0
	err := st.ForEachKey(context.Background(), func(k, v []byte) bool {
		keys++
		if namesErased(string(k), app, user) {
			t.Errorf("key %q names the erased %s:%s", k, app, user)
		}
		if strings.Contains(string(v), app+":"+user) {
			t.Errorf("the value of key %q names the erased %s:%s", k, app, user)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal("the store holds no key at all")
	}
}

// TestUserDeletionRedis runs it on a node over Redis, whose keyspace (the
// node's prefix) is SCANned afterwards.
func TestUserDeletionRedis(t *testing.T) {
	c := startCluster(t, 1)
	rdb := redis.NewClient(&redis.Options{Addr: c.infra.redis})
	defer rdb.Close()
	// named returns the keys under the node's prefix that name the user,
	// and how many keys there are.
	named := func(app, user string) (names []string, keys int) {
		t.Helper()
		it := rdb.Scan(context.Background(), 0, c.prefix+"*", 1000).Iterator()
		for it.Next(context.Background()) {
			keys++
			if k := it.Val(); namesErased(strings.TrimPrefix(k, c.prefix), app, user) {
				names = append(names, k)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		return names, keys
	}
	app, user := userDeletion(t, c.nodes[0].node(), func(app, user string) {
		if names, _ := named(app, user); len(names) < 5 {
			t.Fatalf("before the deletion only %v name %s:%s: the search would miss what it looks for", names, app, user)
		}
	})
	names, keys := named(app, user)
	for _, k := range names {
		t.Errorf("key %q names the erased %s:%s", k, app, user)
	}
	if keys == 0 {
		t.Fatalf("no key under %q: wrong prefix?", c.prefix)
	}
}

// storedNode is a node private to the test whose embedded store the test
// reads once the node has stopped (stopAndOpen).
type storedNode struct {
	*testNode
	stopped bool
}

func startStoredNode(t *testing.T, mutate func(*node.Config)) *storedNode {
	t.Helper()
	n, err := newNode(mutate)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	s := &storedNode{testNode: n}
	t.Cleanup(func() {
		if !s.stopped {
			n.stop()
		}
		_ = os.RemoveAll(n.dir)
	})
	return s
}

// stopAndOpen shuts the node down and opens its store, closed when the
// test ends.
func (s *storedNode) stopAndOpen(t *testing.T) *embedded.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	s.stopped = true
	st, err := embedded.Open(filepath.Join(s.dir, "store"), embedded.Options{})
	if err != nil {
		t.Fatalf("open the node's store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// namesErased reports whether a store key names user of app: its
// qualified id as a whole segment, or the user's id as a segment of a key
// of the app (a record "<app>:us/<user>", a directory entry of scope app).
// Segments are separated by '/' and NUL, as in both backends' layouts.
func namesErased(key, app, user string) bool {
	segs := strings.FieldsFunc(key, func(r rune) bool { return r == '/' || r == 0 })
	return slices.Contains(segs, app+":"+user) || (strings.Contains(key, app) && slices.Contains(segs, user))
}

// userDeletion builds the user's world on n, erases the user, checks what
// the others see, registers the id again and erases that fresh user too;
// it returns the app and the user id for the caller's search of the store.
// before, when not nil, runs just before the first deletion.
func userDeletion(t *testing.T, n *testNode, before func(app, user string)) (app, erasee string) {
	app = newAppID("er")
	n.createApp(t, app, apps.Settings{})
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	erasee, bob, carol := "erasee-"+suffix, "bob-"+suffix, "carol-"+suffix
	nick := "Erasee" + suffix
	// The same id in the default app is another user, who stays.
	defaultTok := n.appUser(t, "", erasee)

	te := n.appUser(t, app, erasee)
	tb, tc := n.appUser(t, app, bob), n.appUser(t, app, carol)
	e1 := n.connectToken(t, te, erasee, "web")
	e1.registerPush(t, "fcm", "tok-"+erasee) // a record pt/<user> to erase
	b, c := n.connectToken(t, tb, bob, "web"), n.connectToken(t, tc, carol, "web")
	befriend(t, e1, b)
	befriend(t, e1, c)
	e1.send(t, bob, "hi bob")
	b.until(t, waitPush, "hi bob", isText("hi bob"))
	b.send(t, erasee, "hi erasee")
	e1.until(t, waitPush, "hi erasee", isText("hi erasee"))
	e1.mustSoc(t, setProfile(sp(nick), sp("https://example.com/a.png"), nil))

	own, alone, bobs := newGroupID("own"), newGroupID("alone"), newGroupID("bobs")
	e1.createGroup(t, own, clientpb.JoinPolicy_JOIN_POLICY_OPEN, bob, carol)
	e1.group(t, own, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: carol, Role: clientpb.GroupRole_GROUP_ROLE_ADMIN}}})
	e1.createGroup(t, alone, clientpb.JoinPolicy_JOIN_POLICY_OPEN)
	b.createGroup(t, bobs, clientpb.JoinPolicy_JOIN_POLICY_OPEN, erasee)
	e1.sendGroup(t, own, "to own")
	b.until(t, waitPush, "to own", isText("to own"))
	e2 := n.connectToken(t, te, erasee, "web2")

	// Refusals.
	anon := &client.HTTP{BaseURL: n.http, App: app}
	if err := anon.DeleteUser(ctx(t), erasee); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("delete without a token: %v, want ERR_UNAUTHENTICATED", err)
	}
	asUser := &client.HTTP{BaseURL: n.http, App: app, Token: tb}
	if err := asUser.DeleteUser(ctx(t), erasee); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("delete with a user token: %v, want ERR_FORBIDDEN", err)
	}
	admin := n.adminHTTP(t, app)
	if err := admin.DeleteUser(ctx(t), "nobody-"+suffix); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("delete an unknown user: %v, want ERR_NOT_FOUND", err)
	}

	if before != nil {
		before(app, erasee)
	}
	if err := admin.DeleteUser(ctx(t), erasee); err != nil {
		t.Fatalf("delete %s: %v", erasee, err)
	}

	// Both devices are kicked.
	for _, d := range []*device{e1, e2} {
		select {
		case <-d.Done():
		case <-time.After(waitPush):
			t.Fatalf("%s/%s still connected after the deletion", d.user, d.id)
		}
		if _, _, kick := d.CloseStatus(); kick.GetReason() != clientpb.KickReason_KICK_REASON_REVOKED {
			t.Errorf("%s/%s closed with kick %v, want KICK_REASON_REVOKED", d.user, d.id, kick)
		}
	}
	// The friends are told, and their lists no longer hold the user.
	for _, f := range []*device{b, c} {
		f.until(t, waitPush, "friend deleted", isEvent(clientpb.EventType_EVENT_FRIEND_DELETED))
		if ids := friendIDs(f.friendList(t)); slices.Contains(ids, erasee) {
			t.Errorf("%s's friends after the deletion: %v", f.user, ids)
		}
	}
	// The owned group passed to carol, its admin; the lone one is
	// dissolved; bob's goes on without the user.
	info := func(gid string) *clientpb.GroupInfo {
		return b.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup()
	}
	if g := info(own); g.GetOwner() != carol || g.GetMemberCount() != 2 {
		t.Errorf("group %s after the deletion: owner %s, %d members; want carol's, 2", own, g.GetOwner(), g.GetMemberCount())
	}
	if g := info(alone); !g.GetDissolved() || g.GetMemberCount() != 0 {
		t.Errorf("lone group %s after the deletion: dissolved %v, %d members", alone, g.GetDissolved(), g.GetMemberCount())
	}
	for _, gid := range []string{own, bobs} {
		ms := b.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
		for _, m := range ms.GetMembers() {
			if m.GetUser() == erasee {
				t.Errorf("group %s still lists %s", gid, erasee)
			}
		}
	}
	// Messages the user sent stay with their recipients.
	h, err := b.History(ctx(t), "p:"+min(bob, erasee)+":"+max(bob, erasee), 0, 50)
	if err != nil || !slices.Contains(texts(h.GetEntries()), "hi bob") {
		t.Errorf("bob's history with the erased user: %v, %v; want it to keep \"hi bob\"", texts(h.GetEntries()), err)
	}
	// Nobody finds the user any more.
	if r := b.mustSoc(t, searchUsers(nick, 0, "")).GetSearch(); len(r.GetUsers()) != 0 {
		t.Errorf("search %q after the deletion: %v", nick, profileIDs(r.GetUsers()))
	}
	if _, err := anon.Login(ctx(t), erasee, "password-"+erasee); err == nil {
		t.Error("the erased user's password still logs in")
	}
	if err := admin.DeleteUser(ctx(t), erasee); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Errorf("a second deletion: %v, want ERR_NOT_FOUND", err)
	}
	// The default app's user of the same id is untouched.
	n.connectToken(t, defaultTok, erasee, "web")

	// The id is free: registered again, it is a fresh user.
	fresh := n.connectToken(t, n.appUser(t, app, erasee), erasee, "web")
	if seq := fresh.login.GetLatestSeq(); seq != 0 {
		t.Errorf("the new %s starts at seq %d, want an empty timeline", erasee, seq)
	}
	if ids := friendIDs(fresh.friendList(t)); len(ids) != 0 {
		t.Errorf("the new %s has friends %v", erasee, ids)
	}
	if err := admin.DeleteUser(ctx(t), erasee); err != nil {
		t.Fatalf("delete the new %s: %v", erasee, err)
	}
	return app, erasee
}

// TestUserDeletionArchive: the archive's rows of an erased user follow the
// app's policy, archive_on_user_delete: an app that says "delete" loses the
// user's timeline rows, the default ("keep") keeps them; the messages the
// user sent stay in both.
func TestUserDeletionArchive(t *testing.T) {
	n, conn := archiveNode(t, nil)
	keep, del := newAppID("keep"), newAppID("del")
	n.createApp(t, keep, apps.Settings{})
	n.createApp(t, del, apps.Settings{ArchiveOnUserDelete: "delete"})
	rows := func(app, user string) uint64 {
		t.Helper()
		var c uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM timeline WHERE user_id = ?", app+":"+user).Scan(&c); err != nil {
			t.Fatalf("query archive: %v", err)
		}
		return c
	}
	waitRows := func(app, user string, want uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for rows(app, user) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s:%s has %d archived timeline rows, want %d", app, user, rows(app, user), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	u, v := "u-"+suffix, "v-"+suffix
	for _, app := range []string{keep, del} {
		du := n.connectToken(t, n.appUser(t, app, u), u, "web")
		dv := n.connectToken(t, n.appUser(t, app, v), v, "web")
		du.send(t, v, "from u in "+app)
		dv.send(t, u, "from v in "+app)
		waitRows(app, u, 2)
		waitRows(app, v, 2)
	}
	for _, app := range []string{keep, del} {
		if err := n.adminHTTP(t, app).DeleteUser(ctx(t), u); err != nil {
			t.Fatalf("delete %s in %s: %v", u, app, err)
		}
	}
	waitRows(del, u, 0)
	for _, c := range []struct {
		app, user string
		want      uint64
	}{{keep, u, 2}, {keep, v, 2}, {del, v, 2}} {
		if got := rows(c.app, c.user); got != c.want {
			t.Errorf("%s:%s has %d archived timeline rows after the deletion, want %d", c.app, c.user, got, c.want)
		}
	}
	if got := sentBy(t, conn, u); got != 2 {
		t.Errorf("%d archived messages from %s, want both apps' to stay", got, u)
	}
}

// sentBy counts the archived messages from user.
func sentBy(t *testing.T, conn driver.Conn, user string) uint64 {
	t.Helper()
	var c uint64
	if err := conn.QueryRow(context.Background(), "SELECT uniqExact(msg_id) FROM messages WHERE from_user = ?", user).Scan(&c); err != nil {
		t.Fatalf("query archive: %v", err)
	}
	return c
}
