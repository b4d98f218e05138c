package actors

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs the parallel tests all at once unless -parallel says
// otherwise: those that start a member spend their seconds in protoactor's
// sleeps (1 s at start, 2 s at shutdown), not on the CPU, so the default of
// GOMAXPROCS at a time would only queue them.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "16")
	}
	os.Exit(m.Run())
}
