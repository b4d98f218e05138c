package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/persistence"
	"actorim/persistence/clickhouse"
	"actorim/persistence/embedded"
	"actorim/protos/clientpb"
)

// archiveCommands are the workloads of the ClickHouse archive:
//
//	imbench archive-gen --clickhouse 127.0.0.1:19410 --messages 10000000   synthetic archive data
//	imbench archive-query --clickhouse 127.0.0.1:19410                    time every analytics query
//	imbench archive-replay --clickhouse 127.0.0.1:19410 --messages 1000000 archiver throughput on a backlog
func archiveCommands(stdout, stderr io.Writer) []*ffcli.Command {
	flags := func(name string) (*flag.FlagSet, *clickhouse.Config) {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		cfg := &clickhouse.Config{}
		fs.StringVar(&cfg.Addr, "clickhouse", "127.0.0.1:19000", "ClickHouse native host:port")
		fs.StringVar(&cfg.Database, "database", "actorim_bench", "database (migrated first)")
		return fs, cfg
	}
	open := func(ctx context.Context, cfg *clickhouse.Config) (*clickhouse.DB, error) {
		if err := clickhouse.Migrate(ctx, *cfg, nil); err != nil {
			return nil, err
		}
		return clickhouse.Open(*cfg)
	}

	genFS, genCfg := flags("archive-gen")
	g := clickhouse.GenerateConfig{End: time.Now().UTC().Truncate(24 * time.Hour)}
	genFS.IntVar(&g.Messages, "messages", 10_000_000, "messages to generate")
	genFS.IntVar(&g.Users, "users", 100_000, "users sending them")
	genFS.IntVar(&g.Groups, "groups", 5_000, "groups")
	genFS.Float64Var(&g.GroupShare, "group-share", 0.3, "share of messages sent to groups")
	genFS.IntVar(&g.Days, "days", 60, "days the messages span, ending today")
	genFS.BoolVar(&g.Deliveries, "deliveries", true, "also one delivery per message")
	genFS.Uint64Var(&g.FirstID, "first-id", 1, "first message id")
	gen := &ffcli.Command{Name: "archive-gen", ShortUsage: "imbench archive-gen [flags]",
		ShortHelp: "insert synthetic messages into the ClickHouse archive (for archive-query)", FlagSet: genFS,
		Exec: func(ctx context.Context, _ []string) error {
			db, err := open(ctx, genCfg)
			if err != nil {
				return err
			}
			defer db.Close()
			start := time.Now()
			err = db.Generate(ctx, g, func(done int) {
				if done%1_000_000 == 0 || done == g.Messages {
					fmt.Fprintf(stderr, "imbench: %d messages, %.0f/s\n", done, float64(done)/time.Since(start).Seconds())
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "generated %d messages in %v (%.0f messages/s)\n", g.Messages, time.Since(start).Round(time.Millisecond),
				float64(g.Messages)/time.Since(start).Seconds())
			return nil
		}}

	qFS, qCfg := flags("archive-query")
	runs := qFS.Int("runs", 3, "runs of each query; the median is reported")
	days := qFS.Int("days", 60, "range: this many days up to the end of today")
	query := &ffcli.Command{Name: "archive-query", ShortUsage: "imbench archive-query [flags]",
		ShortHelp: "run every analytics query and report the median time", FlagSet: qFS,
		Exec: func(ctx context.Context, _ []string) error {
			db, err := open(ctx, qCfg)
			if err != nil {
				return err
			}
			defer db.Close()
			end := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
			r := clickhouse.Range{From: end.AddDate(0, 0, -*days), To: end}
			fmt.Fprintf(stdout, "%-28s %10s %10s %10s  %s\n", "query", "median", "min", "max", "result size")
			for _, q := range []struct{ name, bucket string }{
				{"messages", "hour"}, {"messages", "day"}, {"active-users", "day"}, {"active-users", "month"},
				{"top-conversations", ""}, {"top-groups", ""}, {"content-mix", ""}, {"conversation-share", ""},
				{"delivery-latency", ""},
			} {
				var times []time.Duration
				var size int
				for range *runs {
					start := time.Now()
					res, err := db.Query(ctx, q.name, r, q.bucket, 10)
					if err != nil {
						return fmt.Errorf("%s: %w", q.name, err)
					}
					times = append(times, time.Since(start))
					size = resultSize(res)
				}
				slices.Sort(times)
				fmt.Fprintf(stdout, "%-28s %8.0fms %8.0fms %8.0fms  %d\n", q.name+" "+q.bucket, ms(times[len(times)/2]), ms(times[0]), ms(times[len(times)-1]), size)
			}
			return nil
		}}

	rFS, rCfg := flags("archive-replay")
	n := rFS.Int("messages", 1_000_000, "messages to append to a fresh embedded store before archiving them")
	batch := rFS.Int("batch", 20000, "archiver batch size")
	replay := &ffcli.Command{Name: "archive-replay", ShortUsage: "imbench archive-replay [flags]",
		ShortHelp: "fill an embedded store's outbox, then time the archiver draining it into ClickHouse", FlagSet: rFS,
		Exec: func(ctx context.Context, _ []string) error {
			db, err := open(ctx, rCfg)
			if err != nil {
				return err
			}
			defer db.Close()
			dir, err := os.MkdirTemp("", "imbench-archive-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			st, err := embedded.Open(dir, embedded.Options{Outbox: true})
			if err != nil {
				return err
			}
			defer st.Close()
			if err := fillOutbox(ctx, st, *n); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "imbench: %d messages in the outbox; archiving\n", *n)
			a := clickhouse.NewArchiver(clickhouse.ArchiverConfig{BatchSize: *batch}, db, st, nil, nil)
			start := time.Now()
			got, err := a.Drain(ctx)
			if err != nil {
				return err
			}
			el := time.Since(start)
			fmt.Fprintf(stdout, "archived %d messages (%d timeline rows) in %v: %.0f messages/s\n", got, 2*got,
				el.Round(time.Millisecond), float64(got)/el.Seconds())
			return nil
		}}
	return []*ffcli.Command{gen, query, replay}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func resultSize(v any) int {
	switch r := v.(type) {
	case []clickhouse.Point:
		return len(r)
	case []clickhouse.Count:
		return len(r)
	}
	return 1
}

// fillOutbox appends n private messages among 1,000 users, 64 at a time.
func fillOutbox(ctx context.Context, st persistence.Store, n int) error {
	const users = 1000
	for i := range users {
		if err := st.CreateAccount(ctx, persistence.Account{UserID: fmt.Sprintf("u%d", i)}); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				a, b := fmt.Sprintf("u%d", i%users), fmt.Sprintf("u%d", (i*7+1)%users)
				if a == b {
					b = fmt.Sprintf("u%d", (i+1)%users)
				}
				_, err := st.Append(ctx, &persistence.AppendRequest{
					Message: &clientpb.Message{ConversationId: "p:" + min(a, b) + ":" + max(a, b), From: a, To: b,
						FromDevice: "d", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: fmt.Sprintf("message %d", i)}}},
					Timelines: []string{a, b},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
