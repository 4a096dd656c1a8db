package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// BenchmarkIngestVsPipe is the comparison users make: `leadthrough ingest` against piping the topic straight into
// ClickHouse with `kcat -C … | clickhouse-client -q "INSERT INTO t FORMAT TabSeparated"` into a table of one String
// column. Both drain the same topic of the embedded broker (a separate process), in the same run, into the
// ClickHouse of the tests; ours decodes, validates, deduplicates and fills the events table and its derived tables
// (docs/indicators.md), the pipe stores the bytes.
//
// The topic holds the simulated 60-manager org (simulate --managers 60 --reps-per-manager 15
// --deals-per-rep-per-month 30) over LEADTHROUGH_BENCH_DAYS days (default 166: about 1.04M events; 1,440 days is
// about 10M). Ours is timed from its start to the moment its group has committed every message; the pipe until it
// exits. LEADTHROUGH_BENCH_INGEST_BIN names another leadthrough binary to measure instead of this package's;
// LEADTHROUGH_BENCH_COMPARE_BIN one to measure as well, in the same rounds (an older commit: before and after side
// by side).
//
// The machine's speed drifts by a quarter within minutes (a CPU-bound microbenchmark run back to back does too), so
// one drain of each says little: LEADTHROUGH_BENCH_ROUNDS rounds (default 3) each drain the topic with the pipe,
// then with ours (then with the compared binary), and x_pipe is the median of the rounds' ratios. Before every
// drain the benchmark waits until ClickHouse merges nothing, and it drops its databases only at the end
// (dropLater).
//
// Reported: x_pipe, the headline, is the pipe's time over ours (above 1 means ingest is faster), with the lowest and
// highest round (x_pipe_min, x_pipe_max); over all rounds: events/s of both; ingest_cpu_s/Mevents and
// pipe_cpu_s/Mevents, the CPU time of the client processes (kcat and clickhouse-client together) per million
// events; server_cpu_s/Mevents of each, the CPU time of ClickHouse's query threads (system.events, background
// merges excluded); ingest_peak_rss_MB, the largest resident memory of the ingest process. The other_ metrics are
// the compared binary's.
func BenchmarkIngestVsPipe(b *testing.B) {
	chAddr := testenv.ClickHouse(b)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.Missing(b, "kcat (Debian package kcat; scripts/deps.sh installs it)")
	}
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		testenv.Missing(b, "clickhouse-client (scripts/deps.sh installs it)")
	}
	days := 166
	if v := os.Getenv("LEADTHROUGH_BENCH_DAYS"); v != "" {
		if days, err = strconv.Atoi(v); err != nil {
			b.Fatalf("LEADTHROUGH_BENCH_DAYS=%q: %v", v, err)
		}
	}
	rounds := 3
	if v := os.Getenv("LEADTHROUGH_BENCH_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			b.Fatalf("LEADTHROUGH_BENCH_ROUNDS=%q: want a positive number", v)
		}
	}
	bin := buildLeadthrough(b)
	ingestBin := bin
	if v := os.Getenv("LEADTHROUGH_BENCH_INGEST_BIN"); v != "" {
		ingestBin = v // another build of leadthrough, instead of this package's
	}
	otherBin := os.Getenv("LEADTHROUGH_BENCH_COMPARE_BIN") // measured too, in the same rounds
	brk := startEmbeddedFaultBroker(b, bin, broker.DefaultPartitions)
	const topic = "bench.ingest"
	sim := exec.Command(bin, "simulate", "--brokers", brk.Addr(), "--topic", topic, "--managers", "60",
		"--reps-per-manager", "15", "--deals-per-rep-per-month", "30", "--days", strconv.Itoa(days),
		"--end", "2026-03-31T00:00:00Z", "--seed", "7", "--log-level", "warn")
	sim.Env = childEnv()
	if out, err := sim.CombinedOutput(); err != nil {
		b.Fatalf("simulate: %v\n%s", err, out)
	}
	r := &pipeBench{b: b, chAddr: chAddr, kcat: kcat, client: client, broker: brk.Addr(), topic: topic,
		ends: topicEnds(b, brk.Addr(), topic), admin: openBenchStore(b, chAddr, "default"),
		suffix: strconv.FormatInt(time.Now().UnixNano(), 36)}
	for _, end := range r.ends {
		r.n += end
	}

	var pipe, ours, other runTotals
	var ratios, otherRatios []float64
	for i := range b.N * rounds {
		p := r.pipe(i)
		pipe.add(p)
		o := r.ingest(ingestBin, fmt.Sprintf("ingest_%d", i))
		ours.add(o)
		ratios = append(ratios, p.wall.Seconds()/o.wall.Seconds())
		if otherBin != "" {
			c := r.ingest(otherBin, fmt.Sprintf("other_%d", i))
			other.add(c)
			otherRatios = append(otherRatios, p.wall.Seconds()/c.wall.Seconds())
		}
	}
	runs, n := float64(b.N*rounds), float64(r.n)
	perM := func(d time.Duration) float64 { return d.Seconds() / runs / (n / 1e6) }
	b.ReportMetric(n, "events")
	b.ReportMetric(median(ratios), "x_pipe")
	b.ReportMetric(slices.Min(ratios), "x_pipe_min")
	b.ReportMetric(slices.Max(ratios), "x_pipe_max")
	b.ReportMetric(n*runs/ours.wall.Seconds(), "ingest_events/s")
	b.ReportMetric(n*runs/pipe.wall.Seconds(), "pipe_events/s")
	b.ReportMetric(perM(ours.cpu), "ingest_cpu_s/Mevents")
	b.ReportMetric(perM(pipe.cpu), "pipe_cpu_s/Mevents")
	b.ReportMetric(perM(ours.server), "ingest_server_cpu_s/Mevents")
	b.ReportMetric(perM(pipe.server), "pipe_server_cpu_s/Mevents")
	b.ReportMetric(float64(ours.peakRSS)/1e6, "ingest_peak_rss_MB")
	if otherBin != "" {
		b.ReportMetric(median(otherRatios), "other_x_pipe")
		b.ReportMetric(n*runs/other.wall.Seconds(), "other_events/s")
		b.ReportMetric(perM(other.cpu), "other_cpu_s/Mevents")
		b.ReportMetric(perM(other.server), "other_server_cpu_s/Mevents")
		b.ReportMetric(float64(other.peakRSS)/1e6, "other_peak_rss_MB")
	}
}

// pipeBench is the setting of BenchmarkIngestVsPipe's runs: a topic of n events on the embedded broker, and the
// ClickHouse they are drained into.
type pipeBench struct {
	b                    *testing.B
	chAddr, kcat, client string
	broker, topic        string
	ends                 map[int]int64
	n                    int64
	admin                *store.Store
	suffix               string
}

// runResult is what one drain of the topic took: wall time, the CPU time of the client processes and of
// ClickHouse's query threads, and the client's peak resident memory.
type runResult struct {
	wall, cpu, server time.Duration
	peakRSS           int64
}

type runTotals runResult

func (t *runTotals) add(r runResult) {
	t.wall += r.wall
	t.cpu += r.cpu
	t.server += r.server
	t.peakRSS = max(t.peakRSS, r.peakRSS)
}

// pipe drains the topic with kcat into clickhouse-client, into a table of one String column.
func (r *pipeBench) pipe(i int) runResult {
	b := r.b
	db := fmt.Sprintf("lt_bench_pipe_%s_%d", r.suffix, i)
	exec1(b, r.admin, "CREATE DATABASE "+db)
	dropLater(b, r.admin, db)
	exec1(b, r.admin, "CREATE TABLE "+db+".t (v String) ENGINE = MergeTree ORDER BY tuple()")
	chHost, chPort, _ := strings.Cut(r.chAddr, ":")
	pipe := exec.Command("bash", "-c", `set -o pipefail; "$1" -C -b "$2" -t "$3" -e -o beginning -q -f '%s\n' | `+
		`"$4" --host "$5" --port "$6" --database "$7" -q 'INSERT INTO t FORMAT TabSeparated'`,
		"pipe", r.kcat, r.broker, r.topic, r.client, chHost, chPort, db)
	settle(b, r.admin)
	server := serverCPU(b, r.admin)
	start := time.Now()
	if out, err := pipe.CombinedOutput(); err != nil {
		b.Fatalf("kcat | clickhouse-client: %v\n%s", err, out)
	}
	res := runResult{wall: time.Since(start), server: serverCPU(b, r.admin) - server, cpu: cpuTime(pipe.ProcessState)}
	if got := count(b, r.admin, "SELECT count() FROM "+db+".t"); got != r.n {
		b.Fatalf("the pipe stored %d rows, want %d", got, r.n)
	}
	return res
}

// ingest drains the topic with `bin ingest` into a database of its own, timed from the process's start to the
// moment its group has committed every message.
func (r *pipeBench) ingest(bin, name string) runResult {
	b := r.b
	db := fmt.Sprintf("lt_bench_%s_%s", r.suffix, name)
	if err := store.CreateDatabase(context.Background(), store.Config{Addr: r.chAddr, Database: db}); err != nil {
		b.Fatal(err)
	}
	dropLater(b, r.admin, db)
	migrate := exec.Command(bin, "migrate", "--clickhouse-addr", r.chAddr, "--clickhouse-database", db, "--log-level", "warn")
	migrate.Env = childEnv()
	if out, err := migrate.CombinedOutput(); err != nil {
		b.Fatalf("%s migrate: %v\n%s", bin, err, out)
	}
	group := "bench-" + db
	var stderr strings.Builder
	ingest := exec.Command(bin, "ingest", "--brokers", r.broker, "--topic", r.topic, "--group", group,
		"--clickhouse-addr", r.chAddr, "--clickhouse-database", db, "--listen", faultAddr(b), "--log-level", "warn")
	ingest.Env, ingest.Stderr = childEnv(), &stderr
	settle(b, r.admin)
	server := serverCPU(b, r.admin)
	start := time.Now()
	if err := ingest.Start(); err != nil {
		b.Fatal(err)
	}
	for !committedAll(b, r.broker, group, r.topic, r.ends) {
		if ingest.ProcessState != nil {
			b.Fatalf("%s ingest exited:\n%s", bin, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := runResult{wall: time.Since(start), server: serverCPU(b, r.admin) - server}
	ingest.Process.Signal(syscall.SIGTERM)
	if err := ingest.Wait(); err != nil {
		b.Fatalf("%s ingest: %v\n%s", bin, err, stderr.String())
	}
	res.cpu = cpuTime(ingest.ProcessState)
	res.peakRSS = ingest.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	// Each event once in its type's table (the compare binary of an earlier release writes to events, whose views
	// copy into the same tables).
	got, err := openBenchStore(b, r.chAddr, db).CountEvents(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if got != uint64(r.n) {
		b.Fatalf("%s ingest stored %d distinct events, want %d", bin, got, r.n)
	}
	return res
}

// median is the middle value of xs (the mean of the two middle ones for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func openBenchStore(b *testing.B, addr, db string) *store.Store {
	s, err := store.Open(context.Background(), store.Config{Addr: addr, Database: db})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// dropLater drops db once the benchmark is over, not between its runs. Dropping a database frees thousands of files
// at once, and for minutes afterwards ext4 skips the freed inodes when it allocates new ones: in a profile of
// ClickHouse inserting right after such drops, 15% of its time went to that search, which would be charged to the
// next run.
func dropLater(b *testing.B, s *store.Store, db string) {
	b.Cleanup(func() { exec1(b, s, "DROP DATABASE IF EXISTS "+db) })
}

// settle waits, for up to two minutes, until ClickHouse merges nothing, so that a timed run does not share the
// machine with the merges of the run before it.
func settle(b *testing.B, s *store.Store) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if count(b, s, "SELECT count() FROM system.merges") == 0 {
			return
		}
	}
	b.Log("ClickHouse is still merging after two minutes; timing the run anyway")
}

func exec1(b *testing.B, s *store.Store, sql string) {
	if err := s.Conn().Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

func count(b *testing.B, s *store.Store, sql string) int64 {
	var n uint64
	if err := s.Conn().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	return int64(n)
}

// serverCPU is the CPU time ClickHouse's query threads have used since it started.
func serverCPU(b *testing.B, s *store.Store) time.Duration {
	return time.Duration(count(b, s, "SELECT sum(value) FROM system.events "+
		"WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')")) * time.Microsecond
}

// cpuTime is the user and system CPU time of a finished process and of the children it waited for.
func cpuTime(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// topicEnds is the end offset of each partition of topic.
func topicEnds(b *testing.B, addr, topic string) map[int]int64 {
	offsets, err := partitionOffsets(context.Background(), addr, topic)
	if err != nil {
		b.Fatal(err)
	}
	ends := make(map[int]int64, len(offsets))
	for p, o := range offsets {
		ends[p] = o.end
	}
	return ends
}

// committedAll reports whether group has committed every message of topic up to ends.
func committedAll(b *testing.B, addr, group, topic string, ends map[int]int64) bool {
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	resp, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group,
		Topics: map[string][]int{topic: parts}})
	if err != nil {
		return false // the group's coordinator is not ready yet
	}
	got := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		got[p.Partition] = p.CommittedOffset
	}
	for p, end := range ends {
		if got[p] < end {
			return false
		}
	}
	return true
}
