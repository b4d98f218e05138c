package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"actorim/actors"
)

// TestConfigPrecedence: defaults, then the config file, then ACTORIM_*
// environment variables, then flags, each overriding the one before.
func TestConfigPrecedence(t *testing.T) {
	cfg, _, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DataDir != "./data" || cfg.Actors.DevicePolicy != actors.PolicyMulti ||
		cfg.Gateway.SendRate != 100 || cfg.Gateway.IdleTimeout != time.Minute {
		t.Fatalf("defaults: %+v", cfg)
	}

	file := filepath.Join(t.TempDir(), "imnode.conf")
	conf := "# comment\nlisten 0.0.0.0:9000\ndata /var/lib/actorim\ndevice-policy single\nsend-rate 5\nidle-timeout 30s\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACTORIM_DATA", "/env/data")
	t.Setenv("ACTORIM_DEVICE_POLICY", "per-platform")
	cfg, _, err = parseConfig([]string{"--config", file, "--device-policy", "multi"})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"file sets listen":            cfg.Listen == "0.0.0.0:9000",
		"file sets send-rate":         cfg.Gateway.SendRate == 5,
		"file sets idle-timeout":      cfg.Gateway.IdleTimeout == 30*time.Second,
		"env overrides file (data)":   cfg.DataDir == "/env/data",
		"flag overrides env and file": cfg.Actors.DevicePolicy == actors.PolicyMulti,
	} {
		if !ok {
			t.Errorf("%s: %+v", name, cfg)
		}
	}

	if _, _, err := parseConfig([]string{"--device-policy", "two"}); err == nil {
		t.Error("an unknown device policy was accepted")
	}
	if _, _, err := parseConfig([]string{"--log-format", "xml"}); err == nil {
		t.Error("an unknown log format was accepted")
	}
}

func TestTrustedProxiesFlag(t *testing.T) {
	cfg, _, err := parseConfig([]string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.7,::1"})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(cfg.Gateway.TrustedProxies)
	if got != "[10.0.0.0/8 192.168.1.7/32 ::1/128]" {
		t.Fatalf("trusted proxies %s", got)
	}
	if _, _, err := parseConfig([]string{"--trusted-proxies", "proxy.example"}); err == nil {
		t.Fatal("a host name was accepted as a trusted proxy")
	}
}
