package clickhouse

import "embed"

// schema holds the archive's migrations, schema/*.sql, which Migrate applies
// in name order. They belong here, beside the code that writes and reads
// those tables.
//
//go:embed schema/*.sql
var schema embed.FS
