package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
// exits. LEADTHROUGH_BENCH_INGEST_BIN names another leadthrough binary to measure instead of this package's (an
// older commit, for a before/after comparison on the same topic).
//
// Reported: x_pipe, the headline, is the pipe's time over ours (above 1 means ingest is faster); events/s of both;
// ingest_cpu_s/Mevents and pipe_cpu_s/Mevents, the CPU time of the client processes (kcat and clickhouse-client
// together) per million events; server_cpu_s/Mevents of each, the CPU time of ClickHouse's query threads
// (system.events, background merges excluded); ingest_peak_rss_MB, the largest resident memory of the ingest
// process.
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
	ctx := context.Background()
	bin := buildLeadthrough(b)
	ingestBin := bin
	if v := os.Getenv("LEADTHROUGH_BENCH_INGEST_BIN"); v != "" {
		ingestBin = v // another build of leadthrough, for a before/after comparison in one run
	}
	brk := startEmbeddedFaultBroker(b, bin, broker.DefaultPartitions)
	const topic = "bench.ingest"
	sim := exec.Command(bin, "simulate", "--brokers", brk.Addr(), "--topic", topic, "--managers", "60",
		"--reps-per-manager", "15", "--deals-per-rep-per-month", "30", "--days", strconv.Itoa(days),
		"--end", "2026-03-31T00:00:00Z", "--seed", "7", "--log-level", "warn")
	sim.Env = childEnv()
	if out, err := sim.CombinedOutput(); err != nil {
		b.Fatalf("simulate: %v\n%s", err, out)
	}
	ends := topicEnds(b, brk.Addr(), topic)
	var n int64
	for _, end := range ends {
		n += end
	}
	chHost, chPort, _ := strings.Cut(chAddr, ":")
	admin := openBenchStore(b, chAddr, "default")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)

	var pipeTime, oursTime time.Duration
	var pipeCPU, oursCPU, pipeServer, oursServer time.Duration
	var peakRSS int64
	for i := range b.N {
		// The pipe.
		db := fmt.Sprintf("lt_bench_pipe_%s_%d", suffix, i)
		exec1(b, admin, "CREATE DATABASE "+db)
		exec1(b, admin, "CREATE TABLE "+db+".t (v String) ENGINE = MergeTree ORDER BY tuple()")
		server := serverCPU(b, admin)
		pipe := exec.Command("bash", "-c", `set -o pipefail; "$1" -C -b "$2" -t "$3" -e -o beginning -q -f '%s\n' | `+
			`"$4" --host "$5" --port "$6" --database "$7" -q 'INSERT INTO t FORMAT TabSeparated'`,
			"pipe", kcat, brk.Addr(), topic, client, chHost, chPort, db)
		start := time.Now()
		if out, err := pipe.CombinedOutput(); err != nil {
			b.Fatalf("kcat | clickhouse-client: %v\n%s", err, out)
		}
		pipeTime += time.Since(start)
		pipeServer += serverCPU(b, admin) - server
		pipeCPU += cpuTime(pipe.ProcessState)
		if got := count(b, admin, "SELECT count() FROM "+db+".t"); got != n {
			b.Fatalf("the pipe stored %d rows, want %d", got, n)
		}
		exec1(b, admin, "DROP DATABASE "+db)

		// leadthrough ingest.
		db = fmt.Sprintf("lt_bench_ingest_%s_%d", suffix, i)
		if err := store.CreateDatabase(ctx, store.Config{Addr: chAddr, Database: db}); err != nil {
			b.Fatal(err)
		}
		migrate := exec.Command(ingestBin, "migrate", "--clickhouse-addr", chAddr, "--clickhouse-database", db, "--log-level", "warn")
		migrate.Env = childEnv()
		if out, err := migrate.CombinedOutput(); err != nil {
			b.Fatalf("migrate: %v\n%s", err, out)
		}
		group := "bench-" + db
		var stderr strings.Builder
		ingest := exec.Command(ingestBin, "ingest", "--brokers", brk.Addr(), "--topic", topic, "--group", group,
			"--clickhouse-addr", chAddr, "--clickhouse-database", db, "--listen", faultAddr(b), "--log-level", "warn")
		ingest.Env, ingest.Stderr = childEnv(), &stderr
		server = serverCPU(b, admin)
		start = time.Now()
		if err := ingest.Start(); err != nil {
			b.Fatal(err)
		}
		for !committedAll(b, brk.Addr(), group, topic, ends) {
			if ingest.ProcessState != nil {
				b.Fatalf("ingest exited:\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		oursTime += time.Since(start)
		oursServer += serverCPU(b, admin) - server
		ingest.Process.Signal(syscall.SIGTERM)
		if err := ingest.Wait(); err != nil {
			b.Fatalf("ingest: %v\n%s", err, stderr.String())
		}
		oursCPU += cpuTime(ingest.ProcessState)
		peakRSS = max(peakRSS, ingest.ProcessState.SysUsage().(*syscall.Rusage).Maxrss*1024)
		if got := count(b, admin, "SELECT count() FROM "+db+".events FINAL"); got != n {
			b.Fatalf("ingest stored %d distinct events, want %d", got, n)
		}
		exec1(b, admin, "DROP DATABASE "+db)
	}
	perM := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) / (float64(n) / 1e6) }
	b.ReportMetric(float64(n), "events")
	b.ReportMetric(pipeTime.Seconds()/oursTime.Seconds(), "x_pipe")
	b.ReportMetric(float64(n)*float64(b.N)/oursTime.Seconds(), "ingest_events/s")
	b.ReportMetric(float64(n)*float64(b.N)/pipeTime.Seconds(), "pipe_events/s")
	b.ReportMetric(perM(oursCPU), "ingest_cpu_s/Mevents")
	b.ReportMetric(perM(pipeCPU), "pipe_cpu_s/Mevents")
	b.ReportMetric(perM(oursServer), "ingest_server_cpu_s/Mevents")
	b.ReportMetric(perM(pipeServer), "pipe_server_cpu_s/Mevents")
	b.ReportMetric(float64(peakRSS)/1e6, "ingest_peak_rss_MB")
}

func openBenchStore(b *testing.B, addr, db string) *store.Store {
	s, err := store.Open(context.Background(), store.Config{Addr: addr, Database: db})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
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
