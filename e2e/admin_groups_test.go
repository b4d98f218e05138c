package e2e

import (
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
