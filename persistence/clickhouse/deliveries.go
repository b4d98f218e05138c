package clickhouse

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery is one device's acknowledgement of one pushed message.
type Delivery struct {
	MsgID     uint64
	UserID    string
	DeviceID  string
	SentAtMs  uint64
	AckedAtMs uint64
}

// Deliveries records push acknowledgements in the deliveries table for
// latency analytics. It is best effort: Record never blocks, rows are
// dropped (and counted) when its buffer is full or ClickHouse fails, and
// rows buffered at a crash are lost.
type Deliveries struct {
	db      *DB
	log     *slog.Logger
	in      chan Delivery
	dropped prometheus.Counter
	flushN  int
	every   time.Duration

	worker
}

// NewDeliveries returns a recorder buffering up to buffer rows (default
// 65536); Start runs it.
func NewDeliveries(db *DB, buffer int, reg prometheus.Registerer, logger *slog.Logger) *Deliveries {
	if buffer <= 0 {
		buffer = 1 << 16
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Deliveries{db: db, log: logger, in: make(chan Delivery, buffer), flushN: 10000, every: time.Second,
		worker: newWorker(),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_archive_deliveries_dropped_total", Help: "Push acknowledgements not recorded (buffer full or ClickHouse failed)."})}
	if reg != nil {
		reg.MustRegister(d.dropped)
	}
	return d
}

// Record queues a delivery without blocking.
func (d *Deliveries) Record(x Delivery) {
	select {
	case d.in <- x:
	default:
		d.dropped.Inc()
	}
}

// Start flushes queued rows every second or every 10,000 rows.
func (d *Deliveries) Start() { d.start(d.run) }

// Shutdown flushes what is queued (bounded by ctx) and stops.
func (d *Deliveries) Shutdown(ctx context.Context) error {
	return d.shutdown(ctx)
}

// run records until ctx ends, then flushes what is queued.
func (d *Deliveries) run(ctx context.Context) {
	var batch []Delivery
	tick := time.NewTicker(d.every)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.insert(ctx, batch); err != nil {
			d.dropped.Add(float64(len(batch)))
			d.log.Warn("archive: deliveries dropped", "rows", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case x := <-d.in:
			batch = append(batch, x)
			if len(batch) >= d.flushN {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case x := <-d.in:
					batch = append(batch, x)
				default:
					flush()
					return
				}
			}
		}
	}
}

func (d *Deliveries) insert(ctx context.Context, batch []Delivery) error {
	n := len(batch)
	ids, sent, acked := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	users, devs := make([]string, n), make([]string, n)
	days := make([]time.Time, n)
	for i, x := range batch {
		ids[i], users[i], devs[i], sent[i], acked[i] = x.MsgID, x.UserID, x.DeviceID, x.SentAtMs, x.AckedAtMs
		days[i] = time.UnixMilli(int64(x.SentAtMs)).UTC().Truncate(24 * time.Hour)
	}
	return d.db.sendColumns(ctx, insertDeliveries, ids, users, devs, sent, acked, days)
}
