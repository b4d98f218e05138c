package cluster

import (
	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
)

// Owners answers which member owns a grain in one topology: the member's
// address, computed with the same rendezvous hash as the identity lookup,
// without asking anyone.
type Owners func(identity, kind string) string

// OnTopologyChange calls fn with the owners of every new topology (a member
// joined, left or died). It runs on the actor system's event stream: fn must
// not block.
//
// Grains whose owner changed are stopped by the old owner, and local
// watchers learn it; but a watcher on another node may not, when the old
// owner is shutting down or dead, so connections check their grain's owner
// on every change themselves.
func (m *Member) OnTopologyChange(fn func(Owners)) {
	m.system.EventStream.Subscribe(func(evt any) {
		t, ok := evt.(*pcluster.ClusterTopology)
		if !ok {
			return
		}
		fn(ownersOf(t))
	})
}

func ownersOf(t *pcluster.ClusterTopology) Owners {
	rdv := pcluster.NewRendezvous()
	rdv.UpdateMembers(t.Members)
	return func(identity, kind string) string {
		return rdv.GetByClusterIdentity(pcluster.NewClusterIdentity(identity, kind))
	}
}

// trackOwners keeps m.owners at the latest topology, logging each change.
func (m *Member) trackOwners() {
	m.system.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*pcluster.ClusterTopology); ok {
			m.log.Info("cluster topology changed", "members", len(t.Members), "joined", len(t.Joined), "left", len(t.Left))
			o := ownersOf(t)
			m.owners.Store(&o)
		}
	})
}

// current reports whether pid lives where the latest topology places
// (identity, kind); true when no topology is known yet (standalone).
func (m *Member) current(pid *actor.PID, identity, kind string) bool {
	o := m.owners.Load()
	return o == nil || (*o)(identity, kind) == pid.GetAddress()
}

// Owns reports whether pid lives on the member owners says owns (identity, kind).
func Owns(owners Owners, pid *actor.PID, identity, kind string) bool {
	return pid != nil && owners(identity, kind) == pid.GetAddress()
}
