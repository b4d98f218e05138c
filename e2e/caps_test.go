package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"actorim/client"
	"actorim/ids"
	"actorim/node"
	"actorim/protos/clientpb"
)

// Tests of the bounds on what one request, or one account, costs others.

// grains reads the node's gauge of live grains of kind from /metrics; -1
// when the node does not export it.
func grains(t *testing.T, n *testNode, kind string) float64 {
	t.Helper()
	resp, err := http.Get(n.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := `actorim_grains{kind="` + kind + `"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", sc.Text(), err)
			}
			return f
		}
	}
	return -1
}

// settleGrains waits until the gauge of kind is at most want.
func settleGrains(t *testing.T, n *testNode, kind string, want float64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := grains(t, n, kind)
		if got >= 0 && got <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v live %s grains, want at most %v", got, kind, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNoGrainForUnknownGroup: requests naming groups (and, through the
// admin API, senders) that do not exist are answered, also in bursts for one
// id, and leave no grain behind; a group created under an id just asked
// about works as usual.
func TestNoGrainForUnknownGroup(t *testing.T) {
	n := startNode(t, nil)
	user := n.newUser(t, "user")
	d := n.connect(t, user, "d", nil)
	d.send(t, user, "note to self")
	if grains(t, n, "group") < 0 {
		t.Fatal("the node exports no actorim_grains gauge")
	}
	baseGroups, baseUsers := grains(t, n, "group"), grains(t, n, "user")

	const ids_ = 300
	for i := range ids_ {
		gid := fmt.Sprintf("nope-%d-%d", time.Now().UnixNano(), i)
		var err error
		switch i % 4 {
		case 0:
			_, err = d.Group(ctx(t), gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}})
		case 1:
			_, err = d.Send(ctx(t), groupSend(gid, "anyone?"))
		case 2:
			_, err = d.History(ctx(t), ids.Group(gid), 0, 0)
		case 3:
			_, err = d.Group(ctx(t), gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Readers{Readers: &clientpb.GroupRequest_MsgID{MsgId: 1}}})
		}
		if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("request %d for an unknown group: %v", i, err)
		}
	}
	// A burst of requests for one unknown id is answered whole, however
	// the grain's stop falls among them.
	for round := range 5 {
		gid := fmt.Sprintf("burst-%d-%d", time.Now().UnixNano(), round)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				_, err := d.Group(ctx(t), gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
				t.Fatalf("burst %d: %v", round, err)
			}
		}
		time.Sleep(150 * time.Millisecond) // let the grain stop, then ask again
	}
	settleGrains(t, n, "group", baseGroups)

	for i := range 30 {
		status, code, _ := sendAs(t, n, fmt.Sprintf("ghost-%d-%d", time.Now().UnixNano(), i),
			&clientpb.Send{ClientMsgId: cmid(), To: user, Content: client.Text("boo")})
		if status != http.StatusNotFound || code != clientpb.ErrorCode_ERR_NOT_FOUND {
			t.Fatalf("send-as an unknown user: %d %v", status, code)
		}
	}
	settleGrains(t, n, "user", baseUsers)

	// Creation right after a refused request for the same id.
	gid := newGroupID("late")
	if code := d.groupErr(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}); code != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("info before creation: %v", code)
	}
	d.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN)
	d.sendGroup(t, gid, "here")
	if g := grains(t, n, "group"); g != baseGroups+1 {
		t.Fatalf("%v live group grains after a creation, want %v", g, baseGroups+1)
	}
}

// TestGroupRequestCaps: a group request names at most MaxUsersPerRequest
// users (ERR_LIMIT_EXCEEDED), refused before any per-user work, so a create
// naming 12,000 users costs nothing; only existing users are banned, and the
// ban list is bounded (ERR_LIMIT_EXCEEDED).
func TestGroupRequestCaps(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.Actors.MaxUsersPerRequest, c.Actors.MaxGroupBans = 3, 2
		c.Gateway.MaxFrameBytes = 1 << 20
	})
	owner := n.newUser(t, "owner")
	u := []string{n.newUser(t, "u"), n.newUser(t, "u"), n.newUser(t, "u"), n.newUser(t, "u")}
	o := n.connect(t, owner, "o", nil)
	limit := clientpb.ErrorCode_ERR_LIMIT_EXCEEDED

	huge := make([]string, 12_000)
	for i := range huge {
		huge[i] = fmt.Sprintf("x%05d", i)
	}
	start := time.Now()
	if code := o.groupErr(t, newGroupID("huge"), createReq(huge...)); code != limit {
		t.Fatalf("create naming 12,000 users: %v", code)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("the refusal of 12,000 users took %v", took)
	}
	gid := newGroupID("caps")
	if code := o.groupErr(t, gid, createReq(u...)); code != limit {
		t.Fatalf("create naming 4 of 3: %v", code)
	}
	o.group(t, gid, createReq(u[0], u[0], u[1])) // repeats count, and are dropped
	if info := o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}).GetGroup(); info.GetMemberCount() != 3 {
		t.Fatalf("members %v", info)
	}
	users := func(us ...string) *clientpb.GroupRequest_Users { return &clientpb.GroupRequest_Users{Users: us} }
	for name, req := range map[string]*clientpb.GroupRequest{
		"invite": {Op: &clientpb.GroupRequest_Invite{Invite: users(u...)}},
		"kick":   {Op: &clientpb.GroupRequest_Kick{Kick: users(u...)}},
		"ban":    {Op: &clientpb.GroupRequest_Ban{Ban: &clientpb.GroupRequest_BanUsers{Users: u, Banned: true}}},
	} {
		if code := o.groupErr(t, gid, req); code != limit {
			t.Fatalf("%s naming 4 of 3: %v", name, code)
		}
	}
	ban := func(on bool, us ...string) *clientpb.GroupRequest {
		return &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Ban{Ban: &clientpb.GroupRequest_BanUsers{Users: us, Banned: on}}}
	}
	if code := o.groupErr(t, gid, ban(true, "nobody-"+owner)); code != clientpb.ErrorCode_ERR_UNKNOWN_RECIPIENT {
		t.Fatalf("ban of a user who does not exist: %v", code)
	}
	o.group(t, gid, ban(true, u[2], u[3]))
	if code := o.groupErr(t, gid, ban(true, u[1])); code != limit {
		t.Fatalf("a third ban on a list of 2: %v", code)
	}
	o.group(t, gid, ban(false, u[2]))
	o.group(t, gid, ban(true, u[1]))
	ms := o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
	if len(ms.GetBanned()) != 2 || len(ms.GetMembers()) != 2 {
		t.Fatalf("members and bans %v", ms)
	}
}

// TestFriendRequestCaps: a user holds at most MaxPendingFriendRequests
// requests waiting for them, and has at most as many waiting for others
// (ERR_LIMIT_EXCEEDED); a rejected requester may ask the same user again
// only after the cool-down (ERR_RATE_LIMITED with retry_after_ms).
func TestFriendRequestCaps(t *testing.T) {
	const cool = time.Second
	n := startNode(t, func(c *node.Config) {
		c.Actors.MaxPendingFriendRequests, c.Actors.FriendRequestCooldown = 2, cool
	})
	victim := n.newUser(t, "victim")
	v := n.connect(t, victim, "v", nil)
	var asks []*device
	for range 3 {
		u := n.newUser(t, "asker")
		asks = append(asks, n.connect(t, u, "d", nil))
	}
	asks[0].mustSoc(t, friendRequest(victim, ""))
	asks[1].mustSoc(t, friendRequest(victim, ""))
	asks[2].refusedSoc(t, friendRequest(victim, ""), clientpb.ErrorCode_ERR_LIMIT_EXCEEDED)
	if l := v.friendList(t); len(l.GetIncoming()) != 2 {
		t.Fatalf("incoming %v", l.GetIncoming())
	}

	v.mustSoc(t, friendRespond(asks[0].user, false))
	_, err := asks[0].socOp(t, friendRequest(victim, "please"))
	var e *client.Error
	if !errors.As(err, &e) || e.Code != clientpb.ErrorCode_ERR_RATE_LIMITED || e.RetryAfter <= 0 || e.RetryAfter > cool {
		t.Fatalf("a request right after the rejection: %v", err)
	}
	time.Sleep(e.RetryAfter + 50*time.Millisecond)
	asks[0].mustSoc(t, friendRequest(victim, "please"))

	// The sending side is bounded too.
	r := asks[2]
	others := []string{n.newUser(t, "o"), n.newUser(t, "o"), n.newUser(t, "o")}
	r.mustSoc(t, friendRequest(others[0], ""))
	r.mustSoc(t, friendRequest(others[1], ""))
	r.refusedSoc(t, friendRequest(others[2], ""), clientpb.ErrorCode_ERR_LIMIT_EXCEEDED)
	r.mustSoc(t, friendRequest(others[1], "")) // a retry of a pending one is fine
}

// TestJoinRequestOnceWhilePending: a join request is an event in every
// manager's timeline; asking again while it is pending stores nothing more.
func TestJoinRequestOnceWhilePending(t *testing.T) {
	n := shared
	owner, asker := n.newUser(t, "owner"), n.newUser(t, "asker")
	o := n.connect(t, owner, "o", nil)
	a := n.connect(t, asker, "a", nil)
	gid := newGroupID("approve")
	o.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_APPROVAL)
	o.until(t, waitPush, "GROUP_CREATED", isEvent(clientpb.EventType_EVENT_GROUP_CREATED))
	join := &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Join{Join: &clientpb.GroupRequest_JoinRequest{Note: "me"}}}
	for range 10 {
		a.group(t, gid, join)
	}
	o.until(t, waitPush, "JOIN_REQUESTED", isEvent(clientpb.EventType_EVENT_JOIN_REQUESTED))
	o.quiet(t, 300*time.Millisecond)
	ms := o.group(t, gid, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}).GetMembers()
	if len(ms.GetRequests()) != 1 || ms.GetRequests()[0].GetUser() != asker {
		t.Fatalf("requests %v", ms.GetRequests())
	}
}
