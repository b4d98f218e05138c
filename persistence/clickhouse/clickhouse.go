// Package clickhouse is actorim's message archive in ClickHouse: an Archiver
// that streams the hot store's outbox into it, a History store decorator that
// reads timelines and conversations past what the hot store keeps, a Trimmer
// that sheds archived entries from the hot store, a delivery recorder, and
// the analytics queries.
//
// It speaks ClickHouse's native protocol with LZ4 compression. The schema is
// in schema/*.sql, embedded and applied by Migrate; it works on ClickHouse
// 18.16 and current releases, and every INSERT names its columns, which
// 18.16 needs.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config locates the archive. Zero values are the defaults.
type Config struct {
	// Addr is the native protocol's host:port. Required.
	Addr string
	// Database holds the archive's tables. Default "actorim".
	Database string
	// Username and Password authenticate; default user "default", no password.
	Username, Password string
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration
	// TLS, when not nil, connects over TLS with it (the server's
	// tcp_port_secure). Nil: plain TCP.
	TLS *tls.Config
}

// ErrNotConfigured reports a Config without an address.
var ErrNotConfigured = errors.New("clickhouse: no address configured")

// DB is a connection pool to the archive's database.
type DB struct {
	conn driver.Conn
	cfg  Config
}

func (c *Config) setDefaults() {
	if c.Database == "" {
		c.Database = "actorim"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
}

var validDatabase = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open returns a pool for cfg. It does not connect: an archive that is down
// when the node starts is retried by whoever uses it.
func Open(cfg Config) (*DB, error) {
	if cfg.Addr == "" {
		return nil, ErrNotConfigured
	}
	cfg.setDefaults()
	if !validDatabase.MatchString(cfg.Database) {
		return nil, fmt.Errorf("clickhouse: invalid database name %q", cfg.Database)
	}
	conn, err := ch.Open(&ch.Options{
		Addr:         []string{cfg.Addr},
		Auth:         ch.Auth{Database: cfg.Database, Username: cfg.Username, Password: cfg.Password},
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
		DialTimeout:  cfg.DialTimeout,
		TLS:          cfg.TLS,
		MaxOpenConns: 8,
		MaxIdleConns: 4,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %s: %w", cfg.Addr, err)
	}
	return &DB{conn: conn, cfg: cfg}, nil
}

// Close releases the pool.
func (db *DB) Close() error { return db.conn.Close() }

// Ping checks that the archive answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: ping %s: %w", db.cfg.Addr, err)
	}
	return nil
}

// Migrate creates the database and applies every schema file in name order.
// Every statement is idempotent (CREATE ... IF NOT EXISTS, ALTER TABLE ...
// ADD COLUMN IF NOT EXISTS), so Migrate may run at every start.
func Migrate(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Addr == "" {
		return ErrNotConfigured
	}
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The database may not exist yet: create it from the default one.
	boot := cfg
	boot.Database = "default"
	db, err := Open(boot)
	if err != nil {
		return err
	}
	if err := db.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
		_ = db.Close()
		return fmt.Errorf("clickhouse: create database %s: %w", cfg.Database, err)
	}
	_ = db.Close()
	if db, err = Open(cfg); err != nil {
		return err
	}
	defer db.Close()
	files, err := fs.Sub(schema, "schema")
	if err != nil {
		return err
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		stmts := splitSQL(string(b))
		for _, st := range stmts {
			if err := db.exec(ctx, st); err != nil {
				return fmt.Errorf("clickhouse: migrate %s: %w\n%s", name, err, st)
			}
		}
		logger.Info("clickhouse schema applied", "file", name, "statements", len(stmts), "database", cfg.Database)
	}
	return nil
}

// addColumn matches "ALTER TABLE t ADD COLUMN IF NOT EXISTS c <type ...>",
// one column per statement.
var addColumn = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.+)$`)

// exec runs one schema statement. ClickHouse 18.16 does not know ADD COLUMN
// IF NOT EXISTS (current releases do): such a statement runs without the IF
// NOT EXISTS, and only when the table lacks the column. Another node
// migrating at the same moment may add it first, which is no error either.
func (db *DB) exec(ctx context.Context, st string) error {
	m := addColumn.FindStringSubmatch(st)
	if m == nil {
		return db.conn.Exec(ctx, st)
	}
	table, column, rest := m[1], m[2], m[3]
	has, err := db.hasColumn(ctx, table, column)
	if err != nil || has {
		return err
	}
	err = db.conn.Exec(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+rest)
	if err != nil {
		if has, herr := db.hasColumn(ctx, table, column); herr == nil && has {
			return nil
		}
	}
	return err
}

// hasColumn reports whether table of the database has column.
func (db *DB) hasColumn(ctx context.Context, table, column string) (bool, error) {
	var n uint64
	err := db.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		db.cfg.Database, table, column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up column %s.%s: %w", table, column, err)
	}
	return n > 0, nil
}

// splitSQL drops "--" comments and splits a script into statements at ';'.
// The schema files have no ';' or "--" inside string literals.
func splitSQL(script string) []string {
	var b strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, st := range strings.Split(b.String(), ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}
