package clickhouse

import (
	"context"
	"fmt"
)

// erasedTables are the archive's tables with a row per position of a
// user's timeline or per delivery to a user's device, keyed by user_id.
var erasedTables = []string{"timeline", "timeline_events", "deliveries"}

// EraseUser deletes userID's rows from the archive: the positions and
// events of its timeline and the deliveries to its devices. The messages
// it sent stay in messages, as they stay in their recipients' timelines.
//
// Each deletion is a mutation (ALTER TABLE ... DELETE), which ClickHouse
// applies in the background after EraseUser returns; rows of the user the
// archiver inserts later (from an outbox that still held them) are not
// deleted, which a repeated call does.
func (db *DB) EraseUser(ctx context.Context, userID string) error {
	for _, table := range erasedTables {
		if err := db.conn.Exec(ctx, "ALTER TABLE "+table+" DELETE WHERE user_id = ?", userID); err != nil {
			return fmt.Errorf("clickhouse: erase %q from %s: %w", userID, table, err)
		}
	}
	return nil
}
