// Package schema holds the ClickHouse schema of actorim's archive: the
// *.sql files of this directory, applied in name order by `imnode migrate`.
package schema

import "embed"

// Files are the migration files, *.sql.
//
//go:embed *.sql
var Files embed.FS
