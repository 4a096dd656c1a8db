package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A cluster schema (Config.Cluster, `leadthrough migrate --cluster NAME`) is the single-node schema transformed
// statement by statement, so every migration, future ones included, gets a cluster form without being written
// twice (docs/scaling.md):
//
//   - A sharded table (shardedTables) becomes <name>_local, a Replicated*MergeTree on every node with one ZooKeeper
//     path per shard ({shard} macro), plus <name> itself, a Distributed table over the local ones. Queries and
//     inserts use <name> unchanged. Events are sharded by entity: every copy of a deal's events, of an activity's
//     events and of a user's events lands on one shard, so the IN subqueries that pick a window's deals and
//     activities (attributionFragments, teamFragments) run on each shard against its local table
//     (distributed_product_mode = 'local') and still see every copy of what they select.
//   - Every other table is replicated to all nodes under its own name (one ZooKeeper path for the cluster): the
//     tables that serve writes and reads back at once (deal_attribution, team_indicators, monthly_indicators) and
//     the schema's own bookkeeping. A node reads its own copy, so it reads what it has just written;
//     ALTER … DROP PARTITION on one replica drops the partition on all of them.
//   - A materialized view reads the local table of its sharded source, on every node, and writes to the local
//     table of a sharded target (the same entity key, so the rows stay on the shard of their event) or to a
//     replicated table.
//   - CREATE and ALTER run ON CLUSTER (ZooKeeper's distributed DDL queue): a node that is down gets them when it is
//     back. ALTERs of replicated-to-all tables run on one node and replicate.
//
// ClickHouse 18.16 runs a query whose FROM is a subquery on the node that received it: the shards scan their part
// of the tables and pre-aggregate (GROUP BY source, id), the receiving node attributes the deals and joins the
// reporting lines. Results are those of a single node; docs/scaling.md says what that means for sizing.

// shardedTables are the tables split across shards, each with its sharding key. A table not listed here is
// replicated to every node, which is always correct and only costs space: list a new table here when it grows
// with the events, with a key that puts its rows on the shard of the events they come from.
var shardedTables = map[string]string{
	// The entity a producer keys its messages by (DESIGN.md): activity, else deal, else user.
	"events":         "cityHash64(if(activity_id != '', activity_id, if(deal_id != '', deal_id, user_id)))",
	"deal_events":    "cityHash64(deal_id)",
	"deal_spans":     "cityHash64(deal_id)",
	"activities":     "cityHash64(activity_id)",
	"activity_spans": "cityHash64(activity_id)",
	"user_events":    "cityHash64(user_id)",
}

// localSuffix names the per-node table behind a Distributed one.
const localSuffix = "_local"

// clusterSettings are the session settings of a store on a cluster.
var clusterSettings = clickhouse.Settings{
	// An INSERT through a Distributed table returns once every shard's replica has the rows, not when they are
	// queued on the receiving node: ingest commits Kafka offsets only for rows on their shards, and a query right
	// after the insert sees them.
	"insert_distributed_sync": 1,
	// A replica whose replication queue holds an insert older than this many seconds is skipped while its shard
	// has a fresher one (fallback_to_stale_replicas_for_distributed_queries, on by default, still reads the least
	// stale replica when all are behind): a lagging or stopped replica does not make indicators stale.
	"max_replica_delay_for_distributed_queries": 1,
}

// productMode is appended to every SELECT (and INSERT … SELECT) on a cluster: the IN subqueries on sharded tables
// read each shard's local table, which is correct because an entity's rows are all on one shard (shardedTables).
// A clause, not a session setting: clickhouse-go sends settings to 18.16 as numbers only, and this one is a string.
const productMode = "\nSETTINGS distributed_product_mode = 'local'"

// clusterConn is the store's connection on a cluster: the queries of this package, written for one server, with
// productMode added.
type clusterConn struct{ driver.Conn }

func (c clusterConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	return c.Conn.Query(ctx, withProductMode(query), args...)
}

func (c clusterConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return c.Conn.QueryRow(ctx, withProductMode(query), args...)
}

func (c clusterConn) Exec(ctx context.Context, query string, args ...any) error {
	return c.Conn.Exec(ctx, withProductMode(query), args...)
}

var selectStatement = regexp.MustCompile(`(?is)^\s*(SELECT\b|INSERT\s+INTO\b.*\bSELECT\b)`)

func withProductMode(query string) string {
	if !selectStatement.MatchString(query) || strings.Contains(strings.ToUpper(query), "SETTINGS ") {
		return query
	}
	return query + productMode
}

// ErrSchemaMode: the database was migrated for another layout than the one configured (one server or a cluster,
// or another cluster name). Migrate and Open return it, wrapped with what to do.
var ErrSchemaMode = errors.New("schema layout mismatch")

// schemaClusterTable records, in a cluster schema only, the cluster the schema was created for.
const schemaClusterTable = "schema_cluster"

const createSchemaCluster = `
CREATE TABLE IF NOT EXISTS schema_cluster
(
    cluster     String,
    recorded_at DateTime
)
ENGINE = MergeTree
ORDER BY cluster`

// checkSchemaMode compares the layout recorded in the database with the configured one. fresh reports a database
// without schema_migrations (nothing migrated yet).
func (s *Store) checkSchemaMode(ctx context.Context) (recorded string, fresh bool, err error) {
	rows, err := s.conn.Query(ctx, `SELECT name FROM system.tables
		WHERE database = currentDatabase() AND name IN ('schema_migrations', 'schema_cluster')`)
	if err != nil {
		return "", false, fmt.Errorf("read the schema layout: %w", err)
	}
	has := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return "", false, fmt.Errorf("read the schema layout: %w", err)
		}
		has[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", false, fmt.Errorf("read the schema layout: %w", err)
	}
	if has[schemaClusterTable] {
		if err := s.conn.QueryRow(ctx, "SELECT any(cluster) FROM schema_cluster").Scan(&recorded); err != nil {
			return "", false, fmt.Errorf("read the schema's cluster: %w", err)
		}
	}
	db, want := s.cfg.Database, s.cfg.Cluster
	switch {
	case has[schemaClusterTable] && recorded != "" && want == "":
		return recorded, false, fmt.Errorf("%w: database %s has a cluster schema (cluster %s); use --cluster %s (LEADTHROUGH_CLUSTER=%s)",
			ErrSchemaMode, db, recorded, recorded, recorded)
	case has[schemaClusterTable] && recorded != "" && recorded != want:
		return recorded, false, fmt.Errorf("%w: database %s has a schema for cluster %s, not %s", ErrSchemaMode, db, recorded, want)
	case want != "" && has["schema_migrations"] && !has[schemaClusterTable]:
		return "", false, fmt.Errorf("%w: database %s has a single-node schema; run without --cluster, or copy it to a new cluster database as docs/scaling.md says",
			ErrSchemaMode, db)
	}
	return recorded, !has["schema_migrations"], nil
}

// recordCluster creates schema_cluster (replicated to every node) and records the cluster in it, before anything
// else of the schema, so that a single-node migrate that comes later refuses the database.
func (s *Store) recordCluster(ctx context.Context) error {
	stmts, err := clusterStatements(createSchemaCluster, s.cfg.Cluster, s.cfg.Database)
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create schema_cluster on cluster %s: %w", s.cfg.Cluster, err)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_cluster (cluster, recorded_at)")
	if err != nil {
		return fmt.Errorf("record the cluster: %w", err)
	}
	defer batch.Abort()
	if err := batch.Append(s.cfg.Cluster, time.Now().UTC()); err != nil {
		return fmt.Errorf("record the cluster: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record the cluster: %w", err)
	}
	return nil
}

var (
	createTable = regexp.MustCompile(
		`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w+)(?:\s*\(([^)]*)\))?(.*)$`)
	createView = regexp.MustCompile(
		`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+TO\s+(\w+)\s+AS\s+(SELECT\b.*)$`)
	fromTable    = regexp.MustCompile(`(?i)\bFROM\s+(\w+)`)
	alterTable   = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(\w+)\s+(.*)$`)
	columnChange = regexp.MustCompile(`(?i)^(ADD|DROP|MODIFY|CLEAR|COMMENT)\s+COLUMN\b`)
	insertSelect = regexp.MustCompile(`(?is)^INSERT\s+INTO\s+\w+\s*\([^)]*\)\s*SELECT\b`)
	dropTable    = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+IF\s+EXISTS\s+(\w+)\s*$`)
)

// clusterStatements transforms one statement of the single-node schema into its cluster form on cluster, in
// database db (see the top of this file). A statement of a shape it does not know is an error, never passed on
// as it is: it would create a table on one node only.
func clusterStatements(stmt, cluster, db string) ([]string, error) {
	stmt = stripComments(stmt)
	q := func(name string) string { return "`" + db + "`.`" + name + "`" }
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		name, columns, engine, args, rest := m[1], m[2], m[3], strings.TrimSpace(m[4]), m[5]
		if !strings.HasSuffix(engine, "MergeTree") || strings.HasPrefix(engine, "Replicated") {
			return nil, fmt.Errorf("table %s: cannot replicate engine %s", name, engine)
		}
		key, sharded := shardedTables[name]
		local, path := name, "/clickhouse/leadthrough/tables/all/"+db+"/"+name
		if sharded {
			local, path = name+localSuffix, "/clickhouse/leadthrough/tables/{shard}/"+db+"/"+name+localSuffix
		}
		engineArgs := "'" + path + "', '{replica}'"
		if args != "" {
			engineArgs += ", " + args
		}
		out := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER `%s`\n%s\nENGINE = Replicated%s(%s)%s",
			q(local), cluster, columns, engine, engineArgs, rest)}
		if sharded {
			out = append(out, distributedTable(q, cluster, db, name, key))
		}
		return out, nil
	}
	if m := createView.FindStringSubmatch(stmt); m != nil {
		name, target, query := m[1], m[2], m[3]
		var bad error
		query = fromTable.ReplaceAllStringFunc(query, func(from string) string {
			source := fromTable.FindStringSubmatch(from)[1]
			if _, ok := shardedTables[source]; !ok {
				bad = fmt.Errorf("materialized view %s reads %s, which is not sharded: it would see only the inserts its node receives", name, source)
				return from
			}
			return "FROM " + q(source+localSuffix)
		})
		if bad != nil {
			return nil, bad
		}
		if _, ok := shardedTables[target]; ok {
			target += localSuffix
		}
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s ON CLUSTER `%s` TO %s AS\n%s",
			q(name), cluster, q(target), query)}, nil
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil {
		name, change := m[1], m[2]
		if _, ok := shardedTables[name]; !ok {
			// Replicated to every node: an ALTER on one replica reaches all of them.
			return []string{fmt.Sprintf("ALTER TABLE %s %s", q(name), change)}, nil
		}
		// ON CLUSTER runs an ALTER of a replicated table on one replica per shard; the others follow through
		// ZooKeeper, and 18.16 waits for them before it returns.
		out := []string{fmt.Sprintf("ALTER TABLE %s ON CLUSTER `%s` %s", q(name+localSuffix), cluster, change)}
		if columnChange.MatchString(change) {
			// The Distributed table takes the new columns by being created again: 18.16 refuses an ALTER ON
			// CLUSTER of a table that is not replicated on a cluster whose shards replicate internally. It holds no
			// data (inserts through it are synchronous); an insert in the instant it is missing fails and is retried.
			out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s ON CLUSTER `%s`", q(name), cluster),
				distributedTable(q, cluster, db, name, shardedTables[name]))
		}
		return out, nil
	}
	if m := dropTable.FindStringSubmatch(stmt); m != nil {
		// A view, or a table that is on every node: dropped on every node. A sharded table would also need its
		// Distributed table dropped; no migration does that.
		if _, ok := shardedTables[m[1]]; ok {
			return nil, fmt.Errorf("no cluster form for dropping the sharded table %s", m[1])
		}
		return []string{fmt.Sprintf("DROP TABLE IF EXISTS %s ON CLUSTER `%s`", q(m[1]), cluster)}, nil
	}
	if insertSelect.MatchString(stmt) {
		// A backfill: it reads and writes the tables under the names the queries use, Distributed ones included,
		// and insert_distributed_sync makes it complete before the next statement.
		return []string{stmt}, nil
	}
	return nil, fmt.Errorf("no cluster form for statement %.60q: teach clusterStatements (store/cluster.go) its shape", stmt)
}

// distributedTable creates the Distributed table name over name_local, with its columns.
func distributedTable(q func(string) string, cluster, db, name, key string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER `%s` AS %s\nENGINE = Distributed(`%s`, `%s`, `%s`, %s)",
		q(name), cluster, q(name+localSuffix), cluster, db, name+localSuffix, key)
}

// stripComments removes the -- comments of a statement (the migrations' comments say "run's", so a quote inside a
// comment is not a string).
func stripComments(stmt string) string {
	lines := strings.Split(stmt, "\n")
	out := lines[:0]
	for _, l := range lines {
		inString := false
		for i := 0; i < len(l); i++ {
			switch {
			case l[i] == '\'' && (i == 0 || l[i-1] != '\\'):
				inString = !inString
			case !inString && strings.HasPrefix(l[i:], "--"):
				l = l[:i]
			}
		}
		if l = strings.TrimRight(l, " \t"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// statementsFor is the statements a migration runs with the store's layout.
func (s *Store) statementsFor(m Migration) ([]string, error) {
	if s.cfg.Cluster == "" {
		return m.Statements(), nil
	}
	var out []string
	for i, stmt := range m.Statements() {
		cs, err := clusterStatements(stmt, s.cfg.Cluster, s.cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("migration %04d_%s, statement %d on cluster %s: %w", m.Version, m.Name, i+1,
				s.cfg.Cluster, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// onCluster is the ON CLUSTER clause of database DDL: empty on a single node.
func onCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER `" + cluster + "`"
}
