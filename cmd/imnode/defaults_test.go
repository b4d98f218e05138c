package main

import (
	"flag"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"actorim/node"
)

// notConfigFields are the flags bound to no field of node.Config, with the
// reason; their defaults are checked below where a Config default exists.
var notConfigFields = map[string]string{
	"config":                   "names the config file",
	"log-level":                "the logger is built in main",
	"log-format":               "the logger is built in main",
	"device-policy":            "parsed into Actors.DevicePolicy",
	"trusted-proxies":          "parsed into Gateway.TrustedProxies",
	"cluster-tls":              "on/off, sets Cluster.TLS.Insecure",
	"redis-password-file":      "read into Store.Redis.Password",
	"clickhouse-password-file": "read into Archive.ClickHouse.Password",
	"consul-token-file":        "read into Cluster.Consul.Token",
	"media-types":              "a list, parsed into Media.Service.AllowedTypes (default: nil, every type)",
	"media-denied-types":       "a list, parsed into Media.Service.DeniedTypes (its default is in the usage, checked below)",
	"cors-origins":             "a list, parsed into Gateway.CORSOrigins (default: nil, none)",
}

// TestFlagDefaultsAreConfigDefaults: the default of every flag bound to a
// field of node.Config is that field's default in
// node.Config{}.WithDefaults(), so -h shows what a node runs with and a
// default changed in its Config changes the flag with it. A flag is matched
// to its field by address (a flag.Value of the standard kinds points at the
// variable it sets).
func TestFlagDefaultsAreConfigDefaults(t *testing.T) {
	f := newFlags()
	want := reflect.ValueOf(node.Config{}.WithDefaults())
	paths := map[uintptr][]int{} // address of a field of f.cfg: its index path
	var walk func(v reflect.Value, path []int)
	walk = func(v reflect.Value, path []int) {
		if v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				walk(v.Field(i), append(append([]int(nil), path...), i))
			}
			return
		}
		paths[v.Addr().Pointer()] = path
	}
	walk(reflect.ValueOf(&f.cfg).Elem(), nil)

	bound := 0
	f.fs.VisitAll(func(fl *flag.Flag) {
		path, ok := paths[reflect.ValueOf(fl.Value).Pointer()]
		if !ok {
			if notConfigFields[fl.Name] == "" {
				t.Errorf("--%s is bound to no field of node.Config and not listed in notConfigFields", fl.Name)
			}
			return
		}
		bound++
		field := reflect.TypeOf(node.Config{}).FieldByIndex(path)
		if got, w := fl.DefValue, format(t, want.FieldByIndex(path)); got != w {
			t.Errorf("--%s defaults to %q, its Config field %s to %q", fl.Name, got, field.Name, w)
		}
	})
	if bound < 60 {
		t.Errorf("only %d flags matched a Config field", bound)
	}
	d := node.Config{}.WithDefaults()
	if got := f.fs.Lookup("device-policy").DefValue; got != string(d.Actors.DevicePolicy) {
		t.Errorf("--device-policy defaults to %q, Actors.DevicePolicy to %q", got, d.Actors.DevicePolicy)
	}
	if u := f.fs.Lookup("media-denied-types").Usage; !strings.Contains(u, strings.Join(d.Media.Service.DeniedTypes, ",")) {
		t.Errorf("--media-denied-types usage %q does not name the default %v", u, d.Media.Service.DeniedTypes)
	}
	if got := f.fs.Lookup("cluster-tls").DefValue; got != "on" || d.Cluster.TLS.Insecure {
		t.Errorf("--cluster-tls defaults to %q, Cluster.TLS.Insecure to %v", got, d.Cluster.TLS.Insecure)
	}
}

// format renders v as the flag package renders a default.
func format(t *testing.T, v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	t.Fatalf("a flag is bound to a field of type %s", v.Type())
	return ""
}

// TestFlagDefaultFollowsConfig: a flag's default is read from the Config
// default, not written beside it.
func TestFlagDefaultFollowsConfig(t *testing.T) {
	cfg, _, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := node.Config{}.WithDefaults()
	if cfg.Gateway.SendRate != d.Gateway.SendRate || cfg.Actors.PushWindow != d.Actors.PushWindow ||
		cfg.Archive.BatchSize != d.Archive.BatchSize || cfg.Store.Redis.Prefix != d.Store.Redis.Prefix ||
		cfg.Gateway.Hashing.Queue != d.Gateway.Hashing.Queue || cfg.Cluster.Consul.TTL != d.Cluster.Consul.TTL {
		t.Fatalf("parsed defaults differ from node.Config{}.WithDefaults(): %+v", cfg)
	}
}
