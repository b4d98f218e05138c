package e2e

import (
	"reflect"
	"testing"

	"actorim/apps"
	"actorim/client"
	"actorim/protos/clientpb"
)

// TestAdminGroups: the app server creates a group for a user, then manages
// it with the owner's authority (invite, set a role, kick, dissolve) and
// reads its info and members; another app's group of the same id is out of
// reach; refusals without the admin credential.
func TestAdminGroups(t *testing.T) {
	n := startNode(t, nil)
	app := newAppID("grp")
	n.createApp(t, app, apps.Settings{})
	for _, u := range []string{"owner", "bob", "carol"} {
		n.appUser(t, app, u)
	}
	bob := n.connectToken(t, n.appToken(t, app, "bob"), "bob", "web")
	adm := n.adminHTTP(t, app)
	gid := newGroupID("ag")
	op := func(as string, req *clientpb.GroupRequest) (*clientpb.Result, error) {
		return adm.GroupOp(ctx(t), gid, as, req)
	}
	res, err := op("owner", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Name: "support", Members: []string{"bob"}}}})
	if err != nil || res.GetGroup().GetOwner() != "owner" || res.GetGroup().GetMemberCount() != 2 {
		t.Fatalf("create as owner: %v %v", res, err)
	}
	bob.until(t, waitPush, "added", func(e *clientpb.Entry) bool { return e.GetMessage().GetConversationId() == "g:"+gid })
	if _, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Name: "x"}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
		t.Fatalf("create without as: %v", err)
	}
	// With the owner's authority.
	if _, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: []string{"carol"}}}}); err != nil {
		t.Fatalf("invite: %v", err)
	}
	if _, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_SetRole_{SetRole: &clientpb.GroupRequest_SetRole{User: "carol", Role: clientpb.GroupRole_GROUP_ROLE_ADMIN}}}); err != nil {
		t.Fatalf("set role: %v", err)
	}
	if _, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{"bob"}}}}); err != nil {
		t.Fatalf("kick: %v", err)
	}
	mem, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]clientpb.GroupRole{}
	for _, m := range mem.GetMembers().GetMembers() {
		roles[m.GetUser()] = m.GetRole()
	}
	if len(roles) != 2 || roles["owner"] != clientpb.GroupRole_GROUP_ROLE_OWNER || roles["carol"] != clientpb.GroupRole_GROUP_ROLE_ADMIN {
		t.Fatalf("members %v", roles)
	}
	// A user without the rank is refused as that user.
	if _, err := op("bob", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}); client.CodeOf(err) == clientpb.ErrorCode_ERR_UNSPECIFIED {
		t.Fatal("bob, no longer a member, dissolved the group")
	}
	// The same group id in the default app is another (non-existent) group.
	if _, err := n.adminHTTP(t, "").GroupOp(ctx(t), gid, "", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("the group in the default app: %v, want ERR_NOT_FOUND", err)
	}
	if _, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}); err != nil {
		t.Fatalf("dissolve: %v", err)
	}
	info, err := op("", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}})
	if err != nil || !info.GetGroup().GetDissolved() {
		t.Fatalf("info after dissolve: %v %v", info, err)
	}
	if _, err := op("ghost", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("as an unknown user: %v", err)
	}
	user := &client.HTTP{BaseURL: n.http, Token: n.appToken(t, app, "bob"), App: app}
	if _, err := user.GroupOp(ctx(t), gid, "", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_FORBIDDEN {
		t.Fatalf("with a user token: %v", err)
	}
	if _, err := (&client.HTTP{BaseURL: n.http}).GroupOp(ctx(t), gid, "", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}); client.CodeOf(err) != clientpb.ErrorCode_ERR_UNAUTHENTICATED {
		t.Fatalf("without a token: %v", err)
	}
}

// TestAdminGroupsList: GET /v1/admin/groups lists an app's groups by id, a
// page at a time, with name, owner, member count and the dissolved flag;
// a default-app group of the same id is not the app's but the default
// app's; imctl groups list prints them; a bad limit or after is 400, no
// admin credential 401.
func TestAdminGroupsList(t *testing.T) {
	n := shared // imctl talks to the shared node
	app := newAppID("gl")
	n.createApp(t, app, apps.Settings{})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	n.appUser(t, app, "bob")
	p := newGroupID("gl")
	g1, g2, g3 := p+"a", p+"b", p+"c"
	alice.createGroup(t, g1, clientpb.JoinPolicy_JOIN_POLICY_OPEN, "bob")
	alice.createGroup(t, g2, clientpb.JoinPolicy_JOIN_POLICY_OPEN)
	alice.group(t, g2, dissolveReq)
	alice.createGroup(t, g3, clientpb.JoinPolicy_JOIN_POLICY_OPEN)
	// The default app's group of the same id as g1 is someone else's.
	dave := n.newUser(t, "gld")
	n.connect(t, dave, "web", nil).createGroup(t, g1, clientpb.JoinPolicy_JOIN_POLICY_OPEN)

	adm := n.adminHTTP(t, app)
	// Other tests' groups of the app cannot exist: the app is new.
	page, err := adm.Groups(ctx(t), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.Group{
		{GroupID: g1, Name: "team " + g1, Owner: "alice", Members: 2},
		{GroupID: g2, Name: "team " + g2, Owner: "alice", Members: 0, Dissolved: true},
		{GroupID: g3, Name: "team " + g3, Owner: "alice", Members: 1},
	}
	if !reflect.DeepEqual(page.Groups, want) || page.Next != "" {
		t.Fatalf("groups %+v next %q, want %+v", page.Groups, page.Next, want)
	}
	first, err := adm.Groups(ctx(t), "", 2)
	if err != nil || len(first.Groups) != 2 || first.Next != g2 {
		t.Fatalf("first page of 2: %+v %v", first, err)
	}
	rest, err := adm.Groups(ctx(t), first.Next, 2)
	if err != nil || len(rest.Groups) != 1 || rest.Groups[0].GroupID != g3 || rest.Next != "" {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	def, err := n.adminHTTP(t, "").Groups(ctx(t), p, 1)
	if err != nil || len(def.Groups) != 1 || def.Groups[0].GroupID != g1 || def.Groups[0].Owner != dave {
		t.Fatalf("the default app's groups after %s: %+v %v, want its own %s of %s", p, def, err, g1, dave)
	}

	bin := buildImctl(t)
	cli := newImctl(t, bin)
	cli.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	if out := cli.ok("--app", app, "groups", "list", "--limit", "1"); out != g1+"\tteam "+g1+"\t2 members\talice\nnext: --after "+g1+"\n" {
		t.Fatalf("imctl groups list printed %q", out)
	}

	for _, c := range []struct {
		name  string
		h     *client.HTTP
		after string
		limit int
		code  clientpb.ErrorCode
	}{
		{"no admin credential", &client.HTTP{BaseURL: n.http, App: app}, "", 0, clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{"limit too high", adm, "", 1001, clientpb.ErrorCode_ERR_BAD_REQUEST},
		{"bad after", adm, "b a d", 0, clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		if _, err := c.h.Groups(ctx(t), c.after, c.limit); client.CodeOf(err) != c.code {
			t.Fatalf("%s: %v, want %v", c.name, err, c.code)
		}
	}
}
