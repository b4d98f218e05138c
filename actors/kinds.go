package actors

import (
	"context"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"golang.org/x/time/rate"

	"actorim/apps"
)

// KindUser is the cluster kind of user grains.
const KindUser = "user"

// KindGroup is the cluster kind of group grains.
const KindGroup = "group"

// deps are what the grains and connection actors of one Service are built
// with, handed to each through its kind's factory (no package globals).
type deps struct {
	cfg       Config
	accounts  Accounts
	timelines Timelines
	sessions  Sessions
	records   Records
	sets      Sets
	media     MediaFiles // nil: media disabled
	directory Directory  // nil: no search by nickname
	eraser    Eraser     // nil: users cannot be erased
	archive   Eraser     // nil: no archive to erase users from
	// member is set by Service.Bind, before the member starts (and so
	// before any grain or connection exists).
	member *grains
	apps   Apps // nil: the default app only
	// app is the application these deps serve (tenant.go); base is the
	// node's deps they derive from (nil on the node's own), tenants the
	// node's cache of every app's.
	app          string
	appUpdatedMs uint64
	settings     apps.Settings // the app's
	webhooks     Webhooks      // nil: none
	base         *deps
	tenants      *tenants
	log          *slog.Logger
	metrics      *Metrics
	dispatcher   *workerDispatcher
}

// kinds declares the grain kinds, each built by a factory over d.
func (d *deps) kinds() []*pcluster.Kind {
	return []*pcluster.Kind{
		pcluster.NewKind(KindUser, actor.PropsFromProducer(func() actor.Actor { return newUserGrain(d) },
			actor.WithDispatcher(d.dispatcher))),
		pcluster.NewKind(KindGroup, actor.PropsFromProducer(func() actor.Actor { return newGroupGrain(d) },
			actor.WithDispatcher(d.dispatcher))),
	}
}

// connProps builds the connection actor of one socket (connection.go). conns
// is the node's registry of connection actors, told of topology changes.
func (d *deps) connProps(conns *sync.Map, s Session, out Outbound) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &connActor{d: d, conns: conns, sess: s, out: out,
			budget: rate.NewLimiter(rate.Limit(d.cfg.WriteBudget), d.cfg.WriteBurst)}
	}, actor.WithDispatcher(d.dispatcher))
}

// storeCtx bounds one store call of a grain or connection actor.
func (d *deps) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.cfg.StoreTimeout)
}

func pidOf(p *actor.PID) *pbPID { return &pbPID{Address: p.GetAddress(), Id: p.GetId()} }

func fromPB(p *pbPID) *actor.PID {
	if p == nil {
		return nil
	}
	return actor.NewPID(p.GetAddress(), p.GetId())
}
