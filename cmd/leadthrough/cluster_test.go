package main

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// sharedBroker is the shared test Kafka as a faultBroker: the cluster test restarts ClickHouse servers, never the
// broker.
type sharedBroker string

func (b sharedBroker) Addr() string { return string(b) }
func (b sharedBroker) Restart(t *testing.T) {
	t.Helper()
	t.Fatal("the shared test broker is never restarted")
}
func (b sharedBroker) Log() string { return "(the shared test broker's log is not the test's)" }

// TestClusterIngestWithTwoWorkersAndAKilledReplica runs the pipeline on the local ClickHouse cluster
// (scripts/cluster.sh, 2 shards × 2 replicas) as production would: `leadthrough migrate --cluster` creates the
// schema, two `leadthrough ingest --cluster` workers in one consumer group write through the Distributed tables, one
// through a node of each shard, while a simulated org's events (redelivered copies and late arrivals included) are
// published. Meanwhile a replica that neither worker talks to is SIGKILLed and, seconds later, started again. Then
// every distinct event is stored exactly once, the killed replica has caught up with its peer, and the indicators
// equal the reference model's and a single node's on the same events.
func TestClusterIngestWithTwoWorkersAndAKilledReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster ingest test runs the pipeline as processes for a minute; skipped in -short")
	}
	cl := testenv.ClickHouseCluster(t)
	kafkaAddr := testenv.Kafka(t)
	bin := buildLeadthrough(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	single := pipelinetest.New(t, "clusterref") // the single node to compare with; its Suffix names the rest
	db := single.Name("lt_cluster_")
	migrate := exec.CommandContext(ctx, bin, "migrate", "--clickhouse-addr", cl.Nodes[0], "--cluster", cl.Name,
		"--clickhouse-database", db)
	migrate.Env = childEnv()
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("leadthrough migrate --cluster: %v\n%s", err, out)
	}
	cfg := store.Config{Addr: cl.Nodes[1], Database: db, Cluster: cl.Name}
	cs, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A node the test left down would hold the DROP for distributed_ddl_task_timeout (180s); it drops the
		// database when it is back.
		ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": 20}))
		if err := cs.DropDatabase(ctx, db); err != nil {
			t.Errorf("drop the cluster database: %v", err)
		}
		cs.Close()
	})

	stream := newFaultStream(t)
	r := &faultRun{t: t, env: &pipelinetest.Env{Store: cs, Database: db}, broker: sharedBroker(kafkaAddr),
		topic: single.Name("cluster.events.")}
	if err := createFaultTopic(ctx, kafkaAddr, r.topic); err != nil {
		t.Fatal(err)
	}
	group := single.Name("cluster-")
	for i, node := range []string{cl.Nodes[0], cl.Nodes[2]} {
		r.workers = append(r.workers, startFaultProcess(t, fmt.Sprintf("worker-%d", i), bin, "ingest",
			"--brokers", kafkaAddr, "--topic", r.topic, "--group", group,
			"--clickhouse-addr", node, "--clickhouse-database", db, "--cluster", cl.Name,
			"--listen", faultAddr(t), "--flush-interval", "200ms", "--log-level", "info"))
	}
	t.Logf("%d events (%d distinct) and %d bad messages to %s; 2 workers into cluster %s through %s and %s",
		len(stream.events), len(stream.distinct), len(stream.bad), r.topic, cl.Name, cl.Nodes[0], cl.Nodes[2])

	const killed = 3 // ch4: shard 2's second replica, which no worker talks to
	r.began = time.Now()
	published := make(chan error, 1)
	go func() {
		_, err := stream.publish(ctx, kafkaAddr, r.topic)
		published <- err
	}()
	time.Sleep(time.Until(r.began.Add(8 * time.Second)))
	cl.Kill(t, killed)
	r.logf("kill -9 ch%d", killed+1)
	time.Sleep(time.Until(r.began.Add(16 * time.Second)))
	cl.Start(t, killed)
	r.logf("ch%d back", killed+1)
	if err := <-published; err != nil {
		r.dumpLogs()
		t.Fatal(err)
	}
	r.logf("stream published")

	r.waitStored(ctx, stream)
	r.checkStoredSet(ctx, stream)
	r.checkIndicators(ctx, stream)

	// The killed replica fetched what its peer received meanwhile: both hold the same events.
	peer := openClusterNode(t, cfg, cl.Nodes[killed-1])
	back := openClusterNode(t, cfg, cl.Nodes[killed])
	for _, table := range []string{"deal_events_local", "activities_local", "user_events_local"} {
		if err := back.Conn().Exec(ctx, "SYSTEM SYNC REPLICA `"+db+"`."+table); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s *store.Store) uint64 {
		var n uint64
		if err := s.Conn().QueryRow(ctx, "SELECT (SELECT count() FROM deal_events_local FINAL) + "+
			"(SELECT count() FROM activities_local FINAL) + (SELECT count() FROM user_events_local FINAL)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b := count(peer), count(back); a != b || a == 0 {
		t.Errorf("shard 2's replicas hold %d and %d distinct events after the killed one came back", a, b)
	}

	// The same events on one server give the same indicators.
	var stored []store.Stored
	for i, e := range stream.events {
		stored = append(stored, store.Stored{Event: e, Topic: "direct", Offset: int64(i)})
	}
	if err := single.Store.InsertEvents(ctx, stored); err != nil {
		t.Fatal(err)
	}
	p := indicator.Params{AsOf: faultEnd, Window: 30 * 24 * time.Hour}
	if diff := diffRows(r.env.Indicators(ctx, t, p), single.Indicators(ctx, t, p)); diff != "" {
		t.Errorf("the cluster's indicators differ from a single node's:\n%s", diff)
	}

	for i, w := range r.workers {
		for _, e := range w.unexpectedExits() {
			t.Errorf("worker %d exited without being killed: %s", i, e)
		}
		if err := w.stop(30 * time.Second); err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
}

// openClusterNode opens the cluster database cfg through node.
func openClusterNode(t *testing.T, cfg store.Config, node string) *store.Store {
	t.Helper()
	cfg.Addr = node
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
