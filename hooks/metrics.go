package hooks

import "github.com/prometheus/client_golang/prometheus"

// deliverMetrics are the Deliverer's instruments.
type deliverMetrics struct {
	delivered, failed, dead *prometheus.CounterVec
	seconds                 prometheus.Histogram
	queue                   *prometheus.GaugeVec
}

func newDeliverMetrics(reg prometheus.Registerer) *deliverMetrics {
	labels := []string{"app", "event"}
	m := &deliverMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_webhook_delivered_total", Help: "Webhook deliveries answered with a 2xx, by app and event."}, labels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_webhook_failed_total", Help: "Webhook delivery attempts that failed and were scheduled again, by app and event."}, labels),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_webhook_dead_lettered_total", Help: "Webhook deliveries given up after their last attempt, by app and event."}, labels),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "actorim_webhook_delivery_seconds", Help: "Latency of webhook delivery requests.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "actorim_webhook_queue_items", Help: "Items in the store's webhook queue: queued (waiting or in flight), due, dead (dead-letter list)."},
			[]string{"state"}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.failed, m.dead, m.seconds, m.queue)
	}
	return m
}

// callerMetrics are the Caller's instruments.
type callerMetrics struct {
	decisions *prometheus.CounterVec
	seconds   prometheus.Histogram
}

func newCallerMetrics(reg prometheus.Registerer) *callerMetrics {
	m := &callerMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_webhook_before_send_total",
			Help: "Before-send calls by app and decision (allow, refuse, replace) and whether the call failed."},
			[]string{"app", "action", "failed"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "actorim_webhook_before_send_seconds", Help: "Latency of before-send calls.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.seconds)
	}
	return m
}
