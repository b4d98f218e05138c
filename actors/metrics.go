package actors

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the actors' Prometheus instruments.
type Metrics struct {
	MessagesSent    prometheus.Counter
	Duplicates      prometheus.Counter
	SendErrors      *prometheus.CounterVec
	EntriesPushed   prometheus.Counter
	EntriesResent   prometheus.Counter
	Connections     prometheus.Gauge
	AppendSeconds   prometheus.Histogram
	GrainsActivated prometheus.Counter
	// LiveGrains counts the grains active on this node, by kind.
	LiveGrains *prometheus.GaugeVec
	// HookEnqueueErrors counts webhook events that could not be queued.
	HookEnqueueErrors prometheus.Counter
}

// NewMetrics creates the instruments and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		MessagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_messages_sent_total", Help: "Messages accepted and durably stored."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_messages_duplicate_total", Help: "Sends answered with the ack of an earlier send (same client_msg_id)."}),
		SendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_send_errors_total", Help: "Sends refused, by error code."}, []string{"code"}),
		EntriesPushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_entries_pushed_total", Help: "Timeline entries pushed to devices (first transmission)."}),
		EntriesResent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_entries_resent_total", Help: "Timeline entries pushed again because no ack came."}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actorim_connections", Help: "Logged-in WebSocket connections on this node."}),
		AppendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "actorim_store_append_seconds", Help: "Latency of durable appends to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		GrainsActivated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_user_grains_activated_total", Help: "User grain activations on this node."}),
		LiveGrains: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "actorim_grains", Help: "Grains active on this node, by kind."}, []string{"kind"}),
		HookEnqueueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_webhook_enqueue_errors_total", Help: "Webhook events the store refused to queue (the message was stored; its event is lost unless the send is retried)."}),
	}
	for _, kind := range []string{KindUser, KindGroup} {
		m.LiveGrains.WithLabelValues(kind) // exported from the start, at 0
	}
	if reg != nil {
		reg.MustRegister(m.MessagesSent, m.Duplicates, m.SendErrors, m.EntriesPushed, m.EntriesResent,
			m.Connections, m.AppendSeconds, m.GrainsActivated, m.LiveGrains, m.HookEnqueueErrors)
	}
	return m
}
