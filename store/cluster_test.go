package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// TestEveryMigrationHasAClusterForm: each statement of every migration transforms, and the sharded tables become a
// local replicated table plus a Distributed table under the name the queries use.
func TestEveryMigrationHasAClusterForm(t *testing.T) {
	all, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var ddl []string
	for _, m := range append(all, Migration{Name: "versions", SQL: createSchemaVersions}, Migration{Name: "cluster", SQL: createSchemaCluster}) {
		s := &Store{cfg: Config{Cluster: "c", Database: "db"}}
		stmts, err := s.statementsFor(m)
		if err != nil {
			t.Fatal(err)
		}
		ddl = append(ddl, stmts...)
	}
	text := strings.Join(ddl, "\n;\n")
	for name := range shardedTables {
		for _, want := range []string{
			"CREATE TABLE IF NOT EXISTS `db`.`" + name + "_local` ON CLUSTER `c`",
			"CREATE TABLE IF NOT EXISTS `db`.`" + name + "` ON CLUSTER `c` AS `db`.`" + name + "_local`\nENGINE = Distributed(`c`, `db`, `" + name + "_local`, ",
			"'/clickhouse/leadthrough/tables/{shard}/db/" + name + "_local', '{replica}'",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("no %q in the cluster schema", want)
			}
		}
	}
	for _, want := range []string{
		"ENGINE = ReplicatedMergeTree('/clickhouse/leadthrough/tables/all/db/deal_attribution', '{replica}')",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/leadthrough/tables/all/db/team_indicators', '{replica}', computed_at)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.`deal_events_mv` ON CLUSTER `c` TO `db`.`deal_events_local` AS",
		"FROM `db`.`events_local`",
		"ALTER TABLE `db`.`events_local` ON CLUSTER `c` ADD COLUMN ingest_seq",
		"DROP TABLE IF EXISTS `db`.`events` ON CLUSTER `c`",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the cluster schema", want)
		}
	}
	if _, err := clusterStatements("DROP TABLE events", "c", "db"); err == nil {
		t.Error("a statement of unknown shape passed unchanged")
	}
}

// newClusterStore creates a fresh cluster database through the first node of the local cluster, migrated, and drops
// it on every node when the test ends. open opens the same database through another node.
func newClusterStore(t *testing.T) (s *Store, open func(node int) *Store, cl testenv.Cluster) {
	t.Helper()
	cl = testenv.ClickHouseCluster(t)
	ctx := context.Background()
	cfg := Config{Addr: cl.Nodes[0], Database: fmt.Sprintf("lt_cluster_%d", time.Now().UnixNano()), Cluster: cl.Name,
		DialTimeout: 10 * time.Second}
	if err := CreateDatabase(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	open = func(node int) *Store {
		t.Helper()
		c := cfg
		c.Addr = cl.Nodes[node]
		s, err := Open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s = open(0)
	t.Cleanup(func() {
		// A node the test left down would hold the DROP for distributed_ddl_task_timeout (180s); it drops the
		// database when it is back.
		ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": 20}))
		if err := s.DropDatabase(ctx, cfg.Database); err != nil {
			t.Errorf("drop the cluster database: %v", err)
		}
	})
	if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return s, open, cl
}

// syncReplicas waits until every replica of the database's replicated tables on node has fetched what the others
// wrote (SYSTEM SYNC REPLICA).
func syncReplicas(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, name := range tables {
		if err := s.conn.Exec(ctx, "SYSTEM SYNC REPLICA `"+s.cfg.Database+"`.`"+name+"`"); err != nil {
			t.Fatalf("sync replica %s: %v", name, err)
		}
	}
}

// TestClusterIndicatorsEqualSingleNodeAndReference loads random histories (redelivered copies, late and moved
// events included) into a cluster database, through two nodes, and into a single-node one: through any node, every
// indicator and the deal attribution equal the single node's and the reference model's. Then one replica of a
// shard stops fetching while more histories arrive: queries through the lagging replica and through the other
// shard still answer from up-to-date replicas. Retention drops attribution runs and history months on every node.
func TestClusterIndicatorsEqualSingleNodeAndReference(t *testing.T) {
	cs, open, cl := newClusterStore(t)
	single := newTestStore(t)
	ctx := context.Background()
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	params := []indicator.Params{
		{AsOf: asOf, Window: 30 * 24 * time.Hour},
		{AsOf: asOf.Add(-17*24*time.Hour + 3*time.Hour), Window: 10 * 24 * time.Hour},
		{AsOf: asOf.Add(5 * 24 * time.Hour), Window: 60 * 24 * time.Hour, CoachingKinds: []string{"one_on_one"}},
	}
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	var all []event.Event
	for seed := range uint64(seeds) {
		all = append(all, namespace(scenario.Random(seed+1, asOf), seed)...)
	}
	third := open(2) // a node of the other shard
	half := len(all) / 2
	insert(t, cs, all[:half])
	insert(t, third, all[half:])
	insert(t, third, all[:half/3]) // redelivered: must not count twice
	insert(t, single, all)
	insert(t, single, all[:half/3])

	check := func(t *testing.T, via *Store, evs []event.Event) {
		t.Helper()
		want, err := single.CountEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := via.CountEvents(ctx); err != nil || got != want {
			t.Fatalf("cluster stores %d distinct events (%v), the single node %d", got, err, want)
		}
		for _, p := range params {
			got, err := via.Indicators(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			one, err := single.Indicators(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := compareRows(got, one); diff != "" {
				t.Fatalf("as of %s, window %s: cluster and single node differ:\n%s", p.AsOf, p.Window, diff)
			}
			if diff := compareRows(got, indicator.Reference(evs, p)); diff != "" {
				t.Fatalf("as of %s, window %s: cluster and reference differ:\n%s", p.AsOf, p.Window, diff)
			}
			if len(got) < seeds {
				t.Fatalf("as of %s: only %d managers: the scenarios are degenerate", p.AsOf, len(got))
			}
		}
		got, err := via.DealAttribution(ctx, params[0])
		if err != nil {
			t.Fatal(err)
		}
		one, err := single.DealAttribution(ctx, params[0])
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(one) {
			t.Fatalf("deal attribution: cluster has %d deals, single node %d, or they differ", len(got), len(one))
		}
	}
	t.Run("through-each-shard", func(t *testing.T) {
		check(t, cs, all)
		check(t, third, all)
	})

	t.Run("replica-lagging", func(t *testing.T) {
		lagging := open(1) // the other replica of cs's shard
		if err := lagging.conn.Exec(ctx, "SYSTEM STOP FETCHES"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := lagging.conn.Exec(ctx, "SYSTEM START FETCHES"); err != nil {
				t.Errorf("start fetches again: %v", err)
			}
			syncReplicas(t, lagging)
		}()
		var more []event.Event
		for seed := uint64(seeds); seed < uint64(seeds)+10; seed++ {
			more = append(more, namespace(scenario.Random(seed+1, asOf), seed)...)
		}
		for i := 0; i < len(more); i += 500 { // several inserts: some land on the lagging replica, some not
			insert(t, cs, more[i:min(i+500, len(more))])
		}
		insert(t, single, more)
		syncReplicas(t, cs)
		syncReplicas(t, third)
		lag := replicaDelay(t, lagging)
		// Distinct events (FINAL), not rows: a merge on the up-to-date replica collapses redelivered copies, so
		// its raw row count can drop below the lagging one's.
		const distinct = "SELECT (SELECT count() FROM deal_events_local FINAL) + (SELECT count() FROM activities_local FINAL) + " +
			"(SELECT count() FROM user_events_local FINAL)"
		have, behind := countRows(t, cs, distinct), countRows(t, lagging, distinct)
		if behind >= have {
			t.Fatalf("the stopped replica has %d events in its local tables, its up-to-date peer %d: nothing lags", behind, have)
		}
		t.Logf("the lagging replica has %d of its shard's %d events (queue delay %ds)", behind, have, lag)
		// max_replica_delay_for_distributed_queries is 1s; the delay is counted in whole seconds.
		time.Sleep(2500 * time.Millisecond)
		all := append(append([]event.Event{}, all...), more...)
		check(t, lagging, all)
		check(t, third, all)
	})

	t.Run("retention", func(t *testing.T) {
		rows, err := cs.Indicators(ctx, params[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range params[:2] {
			if _, err := cs.Attribute(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Every run is older than RunRetention an hour from now: only the latest of each window length stays.
		if err := cs.pruneRuns(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := cs.SaveIndicators(ctx, indicator.Params{AsOf: asOf.AddDate(-2, 0, 0)}, rows); err != nil {
			t.Fatal(err)
		}
		if err := cs.SaveIndicators(ctx, indicator.Params{AsOf: asOf}, rows); err != nil { // prunes the first
			t.Fatal(err)
		}
		for i := range cl.Nodes {
			n := open(i)
			syncReplicas(t, n)
			if got := countRows(t, n, "SELECT uniqExact(window_seconds) * 1000 + uniqExact(run_id) FROM deal_attribution"); got != 3003 {
				t.Errorf("node %d: %d window lengths × 1000 + runs in deal_attribution, want 3 windows with one run each", i+1, got)
			}
			if got := countRows(t, n, "SELECT uniqExact(as_of) FROM team_indicators"); got != 1 {
				t.Errorf("node %d: %d refreshes in team_indicators, want the retained one", i+1, got)
			}
		}
	})
}

// replicaDelay is the largest absolute_delay of the database's replicas on the store's node.
func replicaDelay(t *testing.T, s *Store) uint64 {
	t.Helper()
	var d uint64
	if err := s.conn.QueryRow(context.Background(),
		"SELECT toUInt64(max(absolute_delay)) FROM system.replicas WHERE database = currentDatabase()").Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSchemaLayoutMismatchIsRefused: a cluster database refuses a single-node store and another cluster's name, and
// a single-node database refuses a cluster store.
func TestSchemaLayoutMismatchIsRefused(t *testing.T) {
	cs, _, cl := newClusterStore(t)
	ctx := context.Background()
	cfg := cs.cfg
	cfg.Cluster = ""
	if _, err := Open(ctx, cfg); !errors.Is(err, ErrSchemaMode) || !strings.Contains(err.Error(), "--cluster "+cl.Name) {
		t.Errorf("single-node open of a cluster database: %v, want ErrSchemaMode naming --cluster %s", err, cl.Name)
	}
	cfg.Cluster = "other"
	if _, err := Open(ctx, cfg); !errors.Is(err, ErrSchemaMode) {
		t.Errorf("open with another cluster name: %v, want ErrSchemaMode", err)
	}

	single := newTestStore(t)
	cfg = single.cfg
	cfg.Cluster = cl.Name // the single server has no such cluster, but the check comes first
	if _, err := Open(ctx, cfg); !errors.Is(err, ErrSchemaMode) || !strings.Contains(err.Error(), "single-node") {
		t.Errorf("cluster open of a single-node database: %v, want ErrSchemaMode saying single-node", err)
	}
}
