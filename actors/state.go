package actors

import (
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
func (r *Runtime) loadState(key string, m proto.Message) (found bool, err error) {
	sctx, cancel := r.storeCtx()
	defer cancel()
	b, err := r.store.GetState(sctx, key)
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
func (r *Runtime) saveState(key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	sctx, cancel := r.storeCtx()
	defer cancel()
	return r.store.PutState(sctx, key, b)
}
