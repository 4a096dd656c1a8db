package store

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/leadthrough/leadthrough/internal/testenv"
)

func TestAddedColumnsRecognisesOnlyStatementsThatAddColumns(t *testing.T) {
	for _, tc := range []struct {
		name, stmt  string
		db, table   string
		columns     []string
		onlyAddsCol bool
	}{
		{name: "one column", stmt: "ALTER TABLE events ADD COLUMN ingest_seq UInt64 DEFAULT 0",
			table: "events", columns: []string{"ingest_seq"}, onlyAddsCol: true},
		{name: "several columns, types and defaults with commas",
			stmt:  "ALTER TABLE deal_events ADD COLUMN stage String DEFAULT concat('a', ','), ADD COLUMN ids Array(String),\n  add column n Tuple(UInt8, UInt8)",
			table: "deal_events", columns: []string{"stage", "ids", "n"}, onlyAddsCol: true},
		{name: "cluster form", stmt: "ALTER TABLE `lt_db`.`events_local` ON CLUSTER `lt` ADD COLUMN ingest_seq UInt64 DEFAULT 0",
			db: "lt_db", table: "events_local", columns: []string{"ingest_seq"}, onlyAddsCol: true},
		{name: "comment before the statement", stmt: "-- why\nALTER TABLE events ADD COLUMN x String",
			table: "events", columns: []string{"x"}, onlyAddsCol: true},
		{name: "adds and drops", stmt: "ALTER TABLE events ADD COLUMN x String, DROP COLUMN y"},
		{name: "drops a partition", stmt: "ALTER TABLE deal_attribution DROP PARTITION 202601"},
		{name: "creates a table", stmt: "CREATE TABLE IF NOT EXISTS t (a String) ENGINE = MergeTree ORDER BY a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, table, columns, ok := addedColumns(tc.stmt)
			if ok != tc.onlyAddsCol || db != tc.db || table != tc.table || !slices.Equal(columns, tc.columns) {
				t.Errorf("addedColumns(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", tc.stmt, db, table, columns, ok,
					tc.db, tc.table, tc.columns, tc.onlyAddsCol)
			}
		})
	}
}

// A migration whose ALTER … ADD COLUMN went through but that was not recorded (a later statement failed, or the
// process died before recording it) is applied again from its first statement: the ALTER must not stop it.
func TestMigrationRerunAfterItsColumnWasAddedCompletes(t *testing.T) {
	all, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(m Migration) bool { return m.Version == 3 })
	if i < 0 || len(all[i].Statements()) == 0 {
		t.Fatal("migration 0003 (ALTER TABLE events ADD COLUMN ingest_seq) not found")
	}
	if _, _, _, ok := addedColumns(all[i].Statements()[0]); !ok {
		t.Fatalf("migration 0003's first statement %q does not add a column", all[i].Statements()[0])
	}
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			s := newEngineStoreAt(t, e, 2)
			for _, stmt := range all[i].Statements() {
				if err := s.conn.Exec(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			applied, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatalf("re-run of migration 0003 after its ALTER: %v", err)
			}
			if len(applied) == 0 || applied[0].Version != 3 || applied[len(applied)-1].Version != all[len(all)-1].Version {
				t.Fatalf("applied %v, want migrations 3 to %d", applied, all[len(all)-1].Version)
			}
			var n uint64
			if err := s.conn.QueryRow(ctx, `SELECT count() FROM system.columns
				WHERE database = currentDatabase() AND table = 'events' AND name = 'ingest_seq'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("events has %d ingest_seq columns, want 1", n)
			}
		})
	}
}
