package hooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkBeforeSend calls a local receiver that answers after 1 ms, from
// many goroutines at once (-cpu and SetParallelism size them): with pooled
// connections and no shared lock, calls/s grows with the callers instead of
// staying near 1,000 (one call at a time).
func BenchmarkBeforeSend(b *testing.B) {
	for _, par := range []int{1, 16, 64} {
		b.Run(map[int]string{1: "callers=GOMAXPROCS", 16: "callers=16xGOMAXPROCS", 64: "callers=64xGOMAXPROCS"}[par], func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				time.Sleep(time.Millisecond)
				_, _ = w.Write([]byte(`{"action":"allow"}`))
			}))
			defer srv.Close()
			target := Target{URL: srv.URL, Secrets: []string{"s"}, Events: []string{EventBeforeSend}}
			c := NewCaller(StaticTargets{"default": target}, nil, nil, Config{})
			m := textMessage("alice", "bob", "c1", "hello")
			b.ReportAllocs()
			b.SetParallelism(par)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d := c.BeforeSend(context.Background(), "default", m); d.Action != Allow || d.Failed {
						b.Errorf("decision %+v", d)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
