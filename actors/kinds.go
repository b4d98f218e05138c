package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
)

// KindUser is the cluster kind of user grains.
const KindUser = "user"

// KindGroup is the cluster kind of group grains.
const KindGroup = "group"

// Kinds returns the grain kinds this package implements.
func (r *Runtime) Kinds() []*pcluster.Kind {
	return []*pcluster.Kind{
		pcluster.NewKind(KindUser, actor.PropsFromProducer(func() actor.Actor { return newUserGrain(r) },
			actor.WithDispatcher(r.dispatcher))),
		pcluster.NewKind(KindGroup, actor.PropsFromProducer(func() actor.Actor { return newGroupGrain(r) },
			actor.WithDispatcher(r.dispatcher))),
	}
}

func pidOf(p *actor.PID) *pbPID { return &pbPID{Address: p.GetAddress(), Id: p.GetId()} }

func fromPB(p *pbPID) *actor.PID {
	if p == nil {
		return nil
	}
	return actor.NewPID(p.GetAddress(), p.GetId())
}
