package actors

import (
	"testing"

	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

func TestGroupHeir(t *testing.T) {
	admin, member := clientpb.GroupRole_GROUP_ROLE_ADMIN, clientpb.GroupRole_GROUP_ROLE_MEMBER
	owner := clientpb.GroupRole_GROUP_ROLE_OWNER
	rec := func(role clientpb.GroupRole, joined uint64) *storepb.MemberRecord {
		return &storepb.MemberRecord{Role: role, JoinedAtMs: joined}
	}
	for _, tc := range []struct {
		name    string
		members map[string]*storepb.MemberRecord
		want    string
	}{
		{"alone", map[string]*storepb.MemberRecord{"o": rec(owner, 1)}, ""},
		{"an admin before older members", map[string]*storepb.MemberRecord{
			"o": rec(owner, 1), "m": rec(member, 2), "a": rec(admin, 5), "b": rec(admin, 3)}, "b"},
		{"the longest-standing member", map[string]*storepb.MemberRecord{
			"o": rec(owner, 1), "m": rec(member, 4), "n": rec(member, 2)}, "n"},
		{"the earlier id on a tie", map[string]*storepb.MemberRecord{
			"o": rec(owner, 1), "y": rec(member, 2), "x": rec(member, 2)}, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &groupGrain{st: &storepb.GroupState{Members: tc.members}}
			if got := g.heir("o"); got != tc.want {
				t.Fatalf("heir = %q, want %q", got, tc.want)
			}
		})
	}
}
