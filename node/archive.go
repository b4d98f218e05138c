package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"actorim/gateway"
	"actorim/persistence"
	"actorim/persistence/clickhouse"
	"actorim/protos/clientpb"
)

// ArchiveConfig configures the message archive in ClickHouse. With no
// ClickHouse address the node archives nothing and its store records no
// outbox.
type ArchiveConfig struct {
	ClickHouse clickhouse.Config
	// ClickHouseTLS connects to ClickHouse's secure native port over TLS
	// (it sets ClickHouse.TLS). Default: plain TCP.
	ClickHouseTLS ClientTLS
	// BatchSize is how many timeline items one insert carries. Default 20000.
	BatchSize int
	// HotRetention keeps entries in the hot store for this long after they
	// were appended; older ones that ClickHouse holds are deleted from it
	// and read from ClickHouse. Zero keeps everything hot.
	HotRetention time.Duration
	// TrimInterval is the time between trimming passes. Default 1m.
	TrimInterval time.Duration
	// Migrate applies the schema at start.
	Migrate bool
}

// Enabled reports whether a ClickHouse address is configured.
func (c ArchiveConfig) Enabled() bool { return c.ClickHouse.Addr != "" }

// ClickHouseConfig is ClickHouse with its TLS configuration loaded from
// ClickHouseTLS.
func (c ArchiveConfig) ClickHouseConfig() (clickhouse.Config, error) {
	ch := c.ClickHouse
	t, err := c.ClickHouseTLS.config(ch.Addr)
	if err != nil {
		return ch, fmt.Errorf("node: clickhouse: %w", err)
	}
	if t != nil {
		ch.TLS = t
	}
	return ch, nil
}

// archive is a node's running archive: its archiver, trimmer and delivery
// recorder.
type archive struct {
	db         *clickhouse.DB
	archiver   *clickhouse.Archiver
	trimmer    *clickhouse.Trimmer
	deliveries *clickhouse.Deliveries
}

// archivedStore is what the archive consumes of the hot store: the
// archiver drains its outbox, the trimmer sheds what ClickHouse holds, and
// History reads past that trim into ClickHouse.
type archivedStore interface {
	clickhouse.HotStore
	persistence.Outbox
}

// openArchive connects the archive and wraps st so that history reads reach
// past the hot store; nothing runs until start. It returns st unchanged and
// a nil archive when archiving is off.
func openArchive(ctx context.Context, cfg ArchiveConfig, st archivedStore, reg prometheus.Registerer, logger *slog.Logger) (persistence.Store, *archive, error) {
	if !cfg.Enabled() {
		return st, nil, nil
	}
	var err error
	if cfg.ClickHouse, err = cfg.ClickHouseConfig(); err != nil {
		return nil, nil, err
	}
	if cfg.Migrate {
		if err := clickhouse.Migrate(ctx, cfg.ClickHouse, logger); err != nil {
			return nil, nil, fmt.Errorf("node: migrate archive: %w", err)
		}
	}
	db, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return nil, nil, err
	}
	if err := db.Ping(ctx); err != nil {
		// Not fatal: the archiver retries, and the outbox keeps everything.
		logger.Warn("archive: ClickHouse does not answer yet; archiving will retry", "err", err)
	}
	a := &archive{
		db:         db,
		archiver:   clickhouse.NewArchiver(clickhouse.ArchiverConfig{BatchSize: cfg.BatchSize, Owner: ownerName()}, db, st, reg, logger),
		trimmer:    clickhouse.NewTrimmer(clickhouse.TrimmerConfig{Retention: cfg.HotRetention, Interval: cfg.TrimInterval}, db, st, reg, logger),
		deliveries: clickhouse.NewDeliveries(db, 0, reg, logger),
	}
	return clickhouse.NewHistory(st, db, logger), a, nil
}

// ownerName names this process in the archiving lease.
func ownerName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func (a *archive) start() {
	a.archiver.Start()
	a.trimmer.Start()
	a.deliveries.Start()
}

func (a *archive) shutdown(ctx context.Context) error {
	err := errors.Join(a.archiver.Shutdown(ctx), a.trimmer.Shutdown(ctx), a.deliveries.Shutdown(ctx))
	return errors.Join(err, a.db.Close())
}

// Delivered implements actors.DeliveryObserver.
func (a *archive) Delivered(userID, deviceID string, msgs []*clientpb.Message, ackedAtMs uint64) {
	for _, m := range msgs {
		a.deliveries.Record(clickhouse.Delivery{MsgID: m.GetId(), UserID: userID, DeviceID: deviceID,
			SentAtMs: m.GetSentAtMs(), AckedAtMs: ackedAtMs})
	}
}

// Analyze implements gateway.Analytics.
func (a *archive) Analyze(ctx context.Context, q gateway.AnalyticsQuery) (any, error) {
	res, err := a.db.Query(ctx, q.Name, clickhouse.Range{From: q.From, To: q.To}, q.Bucket, q.Limit)
	switch {
	case errors.Is(err, clickhouse.ErrUnknownQuery):
		return nil, fmt.Errorf("%w: %w", gateway.ErrUnknownAnalytics, err)
	case errors.Is(err, clickhouse.ErrBadQuery):
		return nil, fmt.Errorf("%w: %w", gateway.ErrBadAnalytics, err)
	}
	return res, err
}

// Archiver returns the node's archiver, nil when archiving is off.
func (n *Node) Archiver() *clickhouse.Archiver {
	if n.archive == nil {
		return nil
	}
	return n.archive.archiver
}
