package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change, from migrations/NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Statements splits the migration into the statements it holds, in order: the native protocol runs one statement
// per query. A statement ends with a line whose last character is ';'; comment-only chunks are dropped. Every
// statement of a migration must be safe to run again (IF NOT EXISTS, an insert into a table that collapses
// duplicates, or an ALTER TABLE that only adds columns, which Migrate skips once the table has them all), because
// a migration that fails half-way is re-run from its first statement.
func (m Migration) Statements() []string {
	var out []string
	var cur []string
	flush := func() {
		code := false
		for _, l := range cur {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				code = true
			}
		}
		if code {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";"))
		}
		cur = cur[:0]
	}
	for _, line := range strings.Split(m.SQL, "\n") {
		cur = append(cur, line)
		if strings.HasSuffix(strings.TrimSpace(line), ";") && !strings.HasPrefix(strings.TrimSpace(line), "--") {
			flush()
		}
	}
	flush()
	return out
}

const createSchemaVersions = `
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime
)
ENGINE = MergeTree
ORDER BY version`

// Migrate applies, in order, the migrations that schema_migrations does not record yet, and records each one.
// Re-running it is a no-op. It returns the migrations it applied.
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) ([]Migration, error) {
	return s.migrateTo(ctx, log, math.MaxInt)
}

// migrateTo applies the pending migrations up to version last; tests use it to build an older schema.
func (s *Store) migrateTo(ctx context.Context, log *slog.Logger, last int) ([]Migration, error) {
	recorded, _, err := s.checkSchemaMode(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.Cluster != "" && recorded == "" {
		if err := s.recordCluster(ctx); err != nil {
			return nil, err
		}
	}
	versions, err := s.statementsFor(Migration{Name: "schema_migrations", SQL: createSchemaVersions})
	if err != nil {
		return nil, err
	}
	for _, stmt := range versions {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	applied := map[int]bool{}
	rows, err := s.conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		applied[int(v)] = true
	}
	rows.Close()
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	var done []Migration
	for _, m := range all {
		if applied[m.Version] || m.Version > last {
			continue
		}
		stmts, err := s.statementsFor(m)
		if err != nil {
			return done, err
		}
		for i, stmt := range stmts {
			skip, err := s.columnsAdded(ctx, stmt)
			if err != nil {
				return done, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
			if skip {
				continue
			}
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return done, fmt.Errorf("migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return done, fmt.Errorf("record migration %04d: %w", m.Version, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name, "database", s.cfg.Database)
		done = append(done, m)
	}
	return done, nil
}

// SchemaVersion is the highest applied migration version, 0 when none.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v), nil
}

// recordMigration uses the batch path: on ClickHouse 18.16 an INSERT … VALUES with bound arguments through Exec
// never returns.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	defer batch.Abort()
	if err := batch.Append(uint32(m.Version), m.Name, time.Now().UTC()); err != nil {
		return err
	}
	return batch.Send()
}

var (
	// addColumnsTo is an ALTER TABLE whose commands all add columns, single-node or cluster form (`db`.`table`
	// ON CLUSTER `c`); addColumn is one of its commands.
	addColumnsTo = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+((?:`[^`]+`|\\w+)(?:\\.(?:`[^`]+`|\\w+))?)" +
		"(?:\\s+ON\\s+CLUSTER\\s+(?:`[^`]+`|\\w+))?\\s+(ADD\\s+COLUMN\\b.*)$")
	addColumn = regexp.MustCompile(`(?is)^\s*ADD\s+COLUMN\s+(\w+)\b`)
)

// addedColumns returns the database ("" for the current one), table and columns of a statement that only adds
// columns, and ok false for any other statement.
func addedColumns(stmt string) (db, table string, columns []string, ok bool) {
	m := addColumnsTo.FindStringSubmatch(stripComments(stmt))
	if m == nil {
		return "", "", nil, false
	}
	name := strings.ReplaceAll(m[1], "`", "")
	if d, t, qualified := strings.Cut(name, "."); qualified {
		db, table = d, t
	} else {
		table = name
	}
	// The commands are separated by commas; column types such as Array(String) hold none, defaults may, so a
	// comma only ends a command outside parentheses and quotes.
	depth, quoted, start := 0, false, 0
	commands := []string{}
	body := m[2]
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '\'' && (i == 0 || body[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			commands, start = append(commands, body[start:i]), i+1
		}
	}
	for _, c := range append(commands, body[start:]) {
		col := addColumn.FindStringSubmatch(c)
		if col == nil {
			return "", "", nil, false
		}
		columns = append(columns, col[1])
	}
	return db, table, columns, true
}

// columnsAdded reports whether stmt only adds columns that the table already has: a migration re-run after such
// an ALTER succeeded (and a later statement, or recording the migration, failed) skips it instead of failing on
// the existing column, since ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS. On a cluster the columns are read
// on the node the store is connected to; ALTER … ON CLUSTER adds them on every node or reports the nodes it failed.
func (s *Store) columnsAdded(ctx context.Context, stmt string) (bool, error) {
	db, table, columns, ok := addedColumns(stmt)
	if !ok {
		return false, nil
	}
	rows, err := s.conn.Query(ctx, `SELECT name FROM system.columns
		WHERE database = if(@db = '', currentDatabase(), @db) AND table = @table`,
		clickhouse.Named("db", db), clickhouse.Named("table", table))
	if err != nil {
		return false, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	has := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, fmt.Errorf("read the columns of %s: %w", table, err)
		}
		has[name] = true
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	for _, c := range columns {
		if !has[c] {
			return false, nil
		}
	}
	return true, nil
}
