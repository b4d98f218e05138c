package media

import (
	"github.com/prometheus/client_golang/prometheus"

	"actorim/protos/clientpb"
)

// metrics are the service's Prometheus instruments.
type metrics struct {
	// uploads counts finished upload requests by result: stored, refused
	// (type, size, pixels, quota, a bad request) or failed (a store or disk).
	uploads *prometheus.CounterVec
	// received counts upload bytes written to this node's disk.
	received prometheus.Counter
	// decoded counts images decoded for a thumbnail.
	decoded prometheus.Counter
	// collected counts what the collector removed: unsent files, abandoned
	// uploads.
	collected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_media_uploads_total", Help: "Finished uploads by result (stored, refused, failed)."}, []string{"result"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_media_received_bytes_total", Help: "Upload bytes written to this node's disk."}),
		decoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actorim_media_images_decoded_total", Help: "Images decoded for a thumbnail."}),
		collected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actorim_media_collected_total", Help: "Unsent files and abandoned uploads removed by the collector."}, []string{"what"}),
	}
	for _, r := range []string{"stored", "refused", "failed"} {
		m.uploads.WithLabelValues(r)
	}
	for _, w := range []string{"file", "upload"} {
		m.collected.WithLabelValues(w)
	}
	if reg != nil {
		reg.MustRegister(m.uploads, m.received, m.decoded, m.collected)
	}
	return m
}

// result counts one finished upload, refused or failed with e if not nil.
func (m *metrics) result(e *clientpb.Error) {
	switch {
	case e == nil:
		m.uploads.WithLabelValues("stored").Inc()
	case transient(e):
		m.uploads.WithLabelValues("failed").Inc()
	default:
		m.uploads.WithLabelValues("refused").Inc()
	}
}
