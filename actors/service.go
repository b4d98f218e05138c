// Package actors holds actorim's actors: a user grain per user id (devices,
// multi-device policy, private sends, friends, conversations), a group grain
// per group (members, roles, group sends) and a connection actor per socket
// (login session, ordered push stream with acks and retries, sync and
// history).
//
// Service is the gateway's API to them; the gateway never touches the stores
// itself. A message's path through the package: connection.go takes a
// client frame; send.go (private) or group_send.go (group) checks it and
// appends it durably to every recipient's timeline; deliver.go tells the
// recipients' user grains, which notify their connections; stream.go pushes
// the entries to each device in seq order until acknowledged; sync.go reads
// timelines back. kinds.go builds grains and connections with their
// dependencies (config.go, stores.go); keys.go lists the state records.
package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"actorim/cluster"
	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// Service is the actors of one node as the gateway sees them: connections
// for logged-in sockets, and the calls of the HTTP API. Every call that does
// I/O takes a context.
type Service struct {
	d     *deps
	conns sync.Map // *actor.PID of each connection actor on this node
}

// NewService returns the actors of one node over stores. Give Kinds to the
// cluster member's Config, Bind the member before starting it, and Shutdown
// the Service after the member. metrics and logger may be nil.
func NewService(cfg Config, stores Stores, metrics *Metrics, logger *slog.Logger) *Service {
	return NewServiceApps(cfg, stores, nil, metrics, logger)
}

// NewServiceApps is NewService for a deployment of several applications:
// registry gives each app's settings (nil: the default app only).
func NewServiceApps(cfg Config, stores Stores, registry Apps, metrics *Metrics, logger *slog.Logger) *Service {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Service{d: &deps{
		cfg: cfg, accounts: defaultAccounts{stores.Accounts}, timelines: stores.Timelines, sessions: stores.Sessions,
		records: stores.Records, sets: stores.Sets, media: stores.Media, directory: stores.Directory, eraser: stores.Eraser, archive: stores.Archive, log: logger, metrics: metrics,
		dispatcher: newWorkerDispatcher(512, 300),
		app:        ids.DefaultApp, apps: registry, tenants: &tenants{deps: map[string]*deps{}},
	}}
}

// SetWebhooks makes the actors call the apps' webhooks (before-send, and
// the after-the-fact events' queue). Call it before Bind.
func (s *Service) SetWebhooks(w Webhooks) { s.d.webhooks = w }

// Kinds returns the grain kinds this package implements, for the cluster
// member's Config.
func (s *Service) Kinds() []*pcluster.Kind { return s.d.kinds() }

// Bind attaches the cluster member, before it starts: grains may be
// activated while it joins. In a cluster, every topology change is passed to
// this node's connections, which follow their grain if it moved.
func (s *Service) Bind(m *cluster.Member) {
	s.d.member = &grains{Member: m, app: ids.DefaultApp}
	if !m.Clustered() {
		return
	}
	m.OnTopologyChange(func(owners cluster.Owners) {
		msg := topologyChanged{owners}
		s.conns.Range(func(k, _ any) bool {
			m.System().Root.Send(k.(*actor.PID), msg)
			return true
		})
	})
}

// Config returns the effective configuration, defaults applied.
func (s *Service) Config() Config { return s.d.cfg }

// Shutdown stops the dispatcher's worker goroutines, waiting for those
// running an actor's messages until ctx ends. Call it after the cluster
// member's Shutdown: an actor still running afterwards gets a goroutine of
// its own.
func (s *Service) Shutdown(ctx context.Context) error { return s.d.dispatcher.Shutdown(ctx) }

// Connect starts the connection actor of a logged-in socket (connection.go).
// The actor attaches the device to its user grain, answers the Login, and
// from then on owns every write to out except the gateway's own protocol
// errors.
func (s *Service) Connect(sess Session, out Outbound) Inbound {
	root := s.d.member.System().Root
	return &Conn{pid: root.Spawn(s.d.forApp(sess.App).connProps(&s.conns, sess, out)), root: root}
}

// CreateAccount registers userID with a password hash. With ifMissing, an
// existing account is left as it is and no error is returned.
func (s *Service) CreateAccount(ctx context.Context, userID, passwordHash string, ifMissing bool) *clientpb.Error {
	d, userID := s.d.scope(userID)
	res, err := d.member.Request(ctx, userID, KindUser, &actorpb.CreateAccount{PasswordHash: passwordHash, IfMissing: ifMissing})
	if err != nil {
		return errNoAnswer
	}
	return res.(*actorpb.CreateAccountResult).GetError()
}

// Account returns userID's password hash; found is false when no such user.
// It reads the store and activates no grain: looking up made-up user ids
// (a login flood) must not leave a grain behind for each.
func (s *Service) Account(ctx context.Context, userID string) (found bool, passwordHash string, e *clientpb.Error) {
	d, userID := s.d.scope(userID)
	return d.account(ctx, userID)
}

func (d *deps) account(ctx context.Context, userID string) (found bool, passwordHash string, e *clientpb.Error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	a, err := d.accounts.GetAccount(ctx, userID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, "", nil
	case err != nil:
		d.log.Error("get account", "user", userID, "err", err)
		return false, "", errStoreUnavailable
	}
	return true, a.PasswordHash, nil
}

// History pages one of the user's conversations backwards, newest first
// (sync.go).
func (s *Service) History(ctx context.Context, userID string, req *clientpb.HistoryRequest) (*clientpb.HistoryResult, *clientpb.Error) {
	d, userID := s.d.scope(userID)
	return d.history(ctx, userID, req)
}

// Send sends a message as userID from a server-side device (the HTTP API):
// a private message through the sender's user grain (send.go), a group
// message through the group's grain (group_send.go). Media is resolved
// first, on the caller's goroutine, as for a client's send: the file must
// be userID's (media.go).
func (s *Service) Send(ctx context.Context, userID, deviceID string, m *clientpb.Send) (*clientpb.SendAck, *clientpb.Error) {
	d, userID := s.d.scope(userID)
	m, e := d.resolveMedia(ctx, userID, m)
	if e != nil {
		d.metrics.SendErrors.WithLabelValues(e.GetCode().String()).Inc()
		return nil, e
	}
	var res any
	var err error
	if m.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		if !ids.ValidUser(m.GetTo()) {
			return nil, errToNotGroup
		}
		res, err = d.member.Request(ctx, m.GetTo(), KindGroup, &actorpb.GroupSend{User: userID, DeviceId: deviceID, Send: m})
	} else {
		res, err = d.member.Request(ctx, userID, KindUser, &actorpb.SendRequest{DeviceId: deviceID, Send: m})
	}
	if err != nil {
		return nil, errNoAnswerSend
	}
	sr := res.(*actorpb.SendResult)
	if sr.GetError() != nil {
		return nil, sr.GetError()
	}
	return sr.GetAck(), nil
}

// MediaMessage returns the message with id msgID in user's own timeline, as
// sync shows it: flagged Recalled, without content, once recalled. When the
// timeline holds no such message the error wraps persistence.ErrNotFound;
// any other error is the store's. The media API asks it whether a user may
// fetch a file a message carries. It reads the store (O(log n) point reads
// and the conversation's recall set, bounded by Config.StoreTimeout) and
// activates no grain.
func (s *Service) MediaMessage(ctx context.Context, user string, msgID uint64) (*clientpb.Message, error) {
	d, user := s.d.scope(user)
	return d.mediaMessage(ctx, user, msgID)
}

// TokensRevokedBefore returns the time before which userID's tokens are
// revoked (zero: none are). It reads the store, never activating a grain
// (tokens.go).
func (s *Service) TokensRevokedBefore(ctx context.Context, userID string) (time.Time, *clientpb.Error) {
	d, userID := s.d.scope(userID)
	return d.tokensRevokedBefore(ctx, userID)
}

// RevokeTokens revokes userID's tokens issued before before (rounded up to
// the second, the precision of a token's "iat") and kicks the devices logged
// in with them, with KICK_REASON_REVOKED. A revocation never moves back: an
// earlier time than the one in force changes nothing. An unknown user is
// ERR_NOT_FOUND (and no grain is activated for it). See tokens.go.
func (s *Service) RevokeTokens(ctx context.Context, userID string, before time.Time) (revokedBefore time.Time, kicked int, e *clientpb.Error) {
	d, userID := s.d.scope(userID)
	return d.revokeTokens(ctx, userID, before)
}

// Broadcast appends a server message to the timeline of every user, or
// every online user, and notifies the online devices without activating any
// grain (broadcast.go).
func (s *Service) Broadcast(ctx context.Context, req BroadcastRequest) (BroadcastResult, *clientpb.Error) {
	return s.d.forApp(req.App).broadcast(ctx, req)
}
