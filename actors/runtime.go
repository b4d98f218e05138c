// Package actors holds actorim's actors: a user grain per user id (devices,
// multi-device policy, sending) and a connection actor per socket (login
// session, ordered push stream with acks and retries, sync and history).
//
// Runtime wires them to the store and the cluster and is the entry point the
// gateway uses; the gateway never touches the store itself.
package actors

import (
	"context"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/cluster"
	"actorim/persistence"
)

// Runtime owns the actors' dependencies.
type Runtime struct {
	cfg        Config
	store      persistence.Store
	log        *slog.Logger
	member     *cluster.Member
	metrics    *Metrics
	dispatcher actor.Dispatcher
	conns      sync.Map // *actor.PID of each connection actor on this node
}

// NewRuntime returns a Runtime. Pass Kinds to cluster.Start, then Bind the
// started member before serving.
func NewRuntime(cfg Config, store persistence.Store, metrics *Metrics, logger *slog.Logger) *Runtime {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Runtime{cfg: cfg, store: store, log: logger, metrics: metrics,
		dispatcher: newWorkerDispatcher(512, 300)}
}

// Bind attaches the started cluster member. In a cluster, every topology
// change is passed to this node's connections, which follow their grain if
// it moved.
func (r *Runtime) Bind(m *cluster.Member) {
	r.member = m
	if !m.Clustered() {
		return
	}
	m.OnTopologyChange(func(owners cluster.Owners) {
		msg := topologyChanged{owners}
		r.conns.Range(func(k, _ any) bool {
			m.System().Root.Send(k.(*actor.PID), msg)
			return true
		})
	})
}

// Config returns the effective configuration.
func (r *Runtime) Config() Config { return r.cfg }

func (r *Runtime) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
}
