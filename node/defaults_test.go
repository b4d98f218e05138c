package node

import (
	"testing"
	"time"

	"actorim/actors"
	"actorim/auth"
	"actorim/gateway"
)

// TestWithDefaults: the zero Config gets the defaults its fields document,
// down through the configurations it holds, and set fields are kept.
func TestWithDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	for name, ok := range map[string]bool{
		"listen":             d.Listen == "127.0.0.1:8080",
		"data":               d.DataDir == "./data",
		"token max lifetime": d.TokenMaxLifetime == auth.DefaultMaxLifetime,
		"store":              d.Store.Backend == StoreEmbedded && d.Store.Redis.Addr == "127.0.0.1:6379" && d.Store.Redis.Prefix == "actorim:",
		"archive":            d.Archive.ClickHouse.Addr == "" && d.Archive.ClickHouse.Database == "actorim" && d.Archive.BatchSize == 20000 && d.Archive.TrimInterval == time.Minute,
		"cluster":            d.Cluster.Provider == "standalone" && d.Cluster.Consul.TTL == time.Second,
		"actors":             d.Actors.DevicePolicy == actors.PolicyMulti && d.Actors.PushWindow == 512,
		"gateway":            d.Gateway.SendRate == 100 && d.Gateway.MaxConnections > 0,
		"hashing":            d.Gateway.Hashing.Queue == 64 && d.Gateway.Hashing.Concurrency >= 2,
	} {
		if !ok {
			t.Errorf("%s: %+v", name, d)
		}
	}
	c := Config{Listen: "0.0.0.0:1", Gateway: gateway.Config{SendRate: 5}, Actors: actors.Config{PushWindow: 7}}.WithDefaults()
	if c.Listen != "0.0.0.0:1" || c.Gateway.SendRate != 5 || c.Actors.PushWindow != 7 || c.Gateway.SendBurst != 200 {
		t.Fatalf("set fields not kept: %+v", c)
	}
}
