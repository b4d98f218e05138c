package storetest

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// PrivateRequest is a private text message from one user to another, into
// both their timelines: the most common append.
func PrivateRequest(from, to, clientMsgID string) *persistence.AppendRequest {
	a, b := min(from, to), max(from, to)
	return &persistence.AppendRequest{
		Sender:      from,
		ClientMsgID: clientMsgID,
		Message: &clientpb.Message{
			ConversationId:   "p:" + a + ":" + b,
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE,
			From:             from,
			To:               to,
			FromDevice:       "web-1",
			ClientMsgId:      clientMsgID,
			Content:          &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hello there, how are you doing today?"}},
		},
		Timelines: []string{from, to},
	}
}

// BenchmarkAppends appends b.N private messages between random pairs of
// users (who have accounts) from perProc writers per GOMAXPROCS, and reports
// appends/s and cpu-µs/append: client and server share the machine's cores,
// so the CPU of the whole process per append is the figure to compare
// across machines.
func BenchmarkAppends(b *testing.B, s persistence.Timelines, users []string, perProc int) {
	var next atomic.Uint64
	b.SetParallelism(perProc)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(next.Add(1)<<32, 7))
		ctx := context.Background()
		for pb.Next() {
			from := users[rng.IntN(len(users))]
			to := from
			for to == from {
				to = users[rng.IntN(len(users))]
			}
			if _, err := s.Append(ctx, PrivateRequest(from, to, strconv.FormatUint(next.Add(1), 36))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
	b.ReportMetric(float64((processCPU(b)-cpuStart).Microseconds())/float64(b.N), "cpu-µs/append")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
