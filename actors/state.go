package actors

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"actorim/persistence"
)

// errBadRecord reports a stored grain record that does not decode.
var errBadRecord = errors.New("actors: stored record unreadable")

// loadState reads the record under key into m. found is false, and m left
// as it is, when there is none; a record that does not decode is
// errBadRecord.
func (d *deps) loadState(key string, m proto.Message) (found bool, err error) {
	return d.loadRecord(context.Background(), key, m)
}

// loadRecord is loadState within ctx.
func (d *deps) loadRecord(ctx context.Context, key string, m proto.Message) (found bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	b, err := d.records.GetState(sctx, key)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return false, fmt.Errorf("%w: %s: %v", errBadRecord, key, err)
	}
	return true, nil
}

// saveState writes m under key, durably.
func (d *deps) saveState(key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	sctx, cancel := d.storeCtx()
	defer cancel()
	return d.records.PutState(sctx, key, b)
}
