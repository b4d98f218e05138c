package redisstore

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Appends are pipelined: each batcher takes a queued append, adds whatever
// else is queued (up to maxPipeline), and sends them in one round trip. Each
// script still runs atomically on its own; the batch only saves per-command
// network work on both sides and, with appendfsync always, fsyncs (Redis
// fsyncs once per pass of its event loop, covering the whole pipeline).
// Several batchers keep a batch forming while another is in flight.
const (
	batchers      = 4
	maxPipeline   = 128
	pipelineLimit = 10 * time.Second // bound of one pipeline round trip
)

// appendOp is one queued append script call.
type appendOp struct {
	keys  []string
	args  []any
	reply []any
	err   error
	done  chan struct{}
}

func (s *Store) startBatchers() {
	s.ops = make(chan *appendOp, batchers*maxPipeline)
	s.quit = make(chan struct{})
	for range batchers {
		s.batchersDone.Add(1)
		go s.batcher()
	}
}

func (s *Store) stopBatchers() {
	close(s.quit)
	s.batchersDone.Wait()
}

// runAppend queues the append script call and waits for its reply. If ctx
// ends first the script may still run: a retry with the same client msg id
// finds it (see persistence.Timelines).
func (s *Store) runAppend(ctx context.Context, keys []string, args ...any) ([]any, error) {
	op := &appendOp{keys: keys, args: args, done: make(chan struct{})}
	select {
	case s.ops <- op:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-op.done:
		return op.reply, op.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Store) batcher() {
	defer s.batchersDone.Done()
	batch := make([]*appendOp, 0, maxPipeline)
	for {
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		case <-s.quit:
			return
		}
	drain:
		for len(batch) < maxPipeline {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		s.exec(batch)
		for _, op := range batch {
			close(op.done)
		}
		clear(batch)
		batch = batch[:0]
	}
}

// exec runs a batch as one pipeline of EVALSHA calls. A NOSCRIPT reply means
// Redis lost its script cache (it restarted) and the call did not run: the
// script is loaded again and those calls alone are repeated.
func (s *Store) exec(batch []*appendOp) {
	ctx, cancel := context.WithTimeout(context.Background(), pipelineLimit)
	defer cancel()
	todo := batch
	for attempt := 0; attempt < 2 && len(todo) > 0; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for i, op := range todo {
			cmds[i] = pipe.EvalSha(ctx, appendScript.Hash(), op.keys, op.args...)
		}
		_, _ = pipe.Exec(ctx) // errors are per command
		var again []*appendOp
		for i, op := range todo {
			reply, err := cmds[i].Slice()
			if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") && attempt == 0 {
				again = append(again, op)
				continue
			}
			op.reply, op.err = reply, err
		}
		if len(again) > 0 {
			if err := appendScript.Load(ctx, s.rdb).Err(); err != nil {
				for _, op := range again {
					op.err = err
				}
				return
			}
		}
		todo = again
	}
}
