package actors

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"actorim/cluster"
	"actorim/persistence"
	"actorim/persistence/embedded"
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

// crashingEraser erases through the store, then fails while fail is set:
// as if the node died between the store's erasure and the marker's.
type crashingEraser struct {
	persistence.Eraser
	fail atomic.Bool
}

func (c *crashingEraser) EraseUser(ctx context.Context, userID string) error {
	if err := c.Eraser.EraseUser(ctx, userID); err != nil {
		return err
	}
	if c.fail.Load() {
		return errors.New("crashed")
	}
	return nil
}

// TestDeleteUserRestarts: an erasure cut short after the store erased the
// account is finished by the next call (the marker keeps the user known),
// and a call after that is ERR_NOT_FOUND.
func TestDeleteUserRestarts(t *testing.T) {
	dir := t.TempDir()
	st, err := embedded.Open(dir+"/store", embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eraser := &crashingEraser{Eraser: st}
	eraser.fail.Store(true)
	stores := storesOf(st)
	stores.Eraser = eraser
	svc := NewService(Config{}, stores, nil, nil)
	tls, _, err := cluster.LocalTLS(dir + "/tls")
	if err != nil {
		t.Fatal(err)
	}
	m, err := cluster.New(cluster.Config{Kinds: svc.Kinds(), TLS: tls}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.Bind(m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
		_ = svc.Shutdown(ctx)
	})
	ctx := context.Background()
	if err := st.CreateAccount(ctx, persistence.Account{UserID: "dora"}); err != nil {
		t.Fatal(err)
	}
	if _, e := svc.SetProfile(ctx, "dora", &clientpb.SetProfile{Nickname: proto.String("Dora")}); e != nil {
		t.Fatalf("SetProfile: %v", e)
	}

	if e := svc.DeleteUser(ctx, "dora"); e.GetCode() != clientpb.ErrorCode_ERR_UNAVAILABLE {
		t.Fatalf("the crashing erasure answered %v, want ERR_UNAVAILABLE", e)
	}
	if _, err := st.GetAccount(ctx, "dora"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("account after the store's erasure: %v", err)
	}
	if _, err := st.GetState(ctx, eraseKey("dora")); err != nil {
		t.Fatalf("the marker after the crash: %v", err)
	}
	eraser.fail.Store(false)
	if e := svc.DeleteUser(ctx, "dora"); e != nil {
		t.Fatalf("the repeated erasure: %v", e)
	}
	for _, key := range []string{eraseKey("dora"), profileKey("dora"), socialKey("dora"), convKey("dora")} {
		if _, err := st.GetState(ctx, key); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("record %s after the erasure: %v", key, err)
		}
	}
	if e := svc.DeleteUser(ctx, "dora"); e.GetCode() != clientpb.ErrorCode_ERR_NOT_FOUND {
		t.Fatalf("a third call answered %v, want ERR_NOT_FOUND", e)
	}
}
