package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// selfUsage returns this process's CPU time (user+system) and resident set
// size, read from /proc.
func selfUsage() (cpu time.Duration, rss int64) { return procUsage("self") }

// procUsage returns the CPU time and RSS of process pid ("self" for this one).
func procUsage(pid string) (cpu time.Duration, rss int64) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0
	}
	// Fields after the command name, which is parenthesised and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, pages * int64(os.Getpagesize())
}
