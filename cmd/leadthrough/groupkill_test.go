package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/publish"
)

// TestWorkersKilledOverAndOverOnTheEmbeddedBrokerCatchUp: three `leadthrough ingest` processes in one consumer
// group on the embedded broker (6 partitions), SIGKILLed and restarted one after the other every 2s while events are
// produced, then one more batch of events after the last kill. Every event must be stored, and soon: the workers
// run with the default group timeouts, and the partitions of the last worker killed may wait for its session
// timeout (10s) and a rebalance, not more. On kfake with kafka-go's default timeouts the group never settled
// (workers logging "Failed to join group …: i/o timeout" for minutes; see broker/conn.go), and even a single kill
// stalled its partitions for more than the 30s session timeout.
func TestWorkersKilledOverAndOverOnTheEmbeddedBrokerCatchUp(t *testing.T) {
	const (
		workers   = 3
		kills     = 6
		killEvery = 2 * time.Second
		batchSize = 100
		// maxStall bounds the wait for the last batch, published right after the last kill: the session timeout
		// (10s), the rejoin, the flush, with room for a slow machine.
		maxStall = 25 * time.Second
	)
	env := pipelinetest.New(t, "groupkill")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Partitions: 6, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic, group := env.Name("groupkill."), env.Name("groupkill-")
	published := 0
	publishBatch := func() {
		t.Helper()
		evs := make([]event.Event, batchSize)
		for j := range evs {
			n := published + j
			evs[j] = event.Event{Source: "crm/groupkill", ID: fmt.Sprintf("e-%d", n), Type: event.UserUpserted,
				Time: time.Date(2026, 3, 1, 0, 0, n, 0, time.UTC), Data: event.Data{UserID: fmt.Sprintf("U-%d", n)}}
		}
		if err := publish.Events(ctx, publish.Config{Brokers: []string{b.Addr()}, Topic: topic}, evs); err != nil {
			t.Fatal(err)
		}
		published += batchSize
	}
	procs := make([]*groupWorker, workers)
	// waitStored waits until every event published is stored, at most within.
	waitStored := func(what string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			n, err := env.Store.CountEvents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == uint64(published) {
				return time.Since(start)
			}
			for i, p := range procs {
				if p.exited() {
					t.Fatalf("worker %d exited by itself: %s", i, p.stderr.String())
				}
			}
			if time.Since(start) > within {
				var logs strings.Builder
				for i, p := range procs {
					fmt.Fprintf(&logs, "worker %d (running):\n%s\n", i, lastLines(p.stderr.String(), 10))
				}
				t.Fatalf("%s: %d of %d events stored after %s; the broker says the group is %s\n%s", what, n, published,
					within, describeGroup(b.Addr(), group), logs.String())
			}
			time.Sleep(pipelinetest.Poll)
		}
	}

	publishBatch() // creates the topic before the workers look for it
	for i := range procs {
		procs[i] = startGroupWorker(t, b.Addr(), topic, group, env)
	}
	waitStored("the group forms", time.Minute)
	for k := range kills {
		i := k % workers
		procs[i].kill(t)
		procs[i] = startGroupWorker(t, b.Addr(), topic, group, env)
		publishBatch()
		time.Sleep(killEvery)
	}
	publishBatch()
	stall := waitStored("after the last kill", maxStall)
	t.Logf("all %d events stored, the last batch %s after it was published", published, stall.Round(100*time.Millisecond))
}

// describeGroup is the group's state and members as the broker reports them, for a failure message.
func describeGroup(addr, group string) string {
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	resp, err := c.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 {
		return fmt.Sprintf("(describe failed: %v)", err)
	}
	g := resp.Groups[0]
	var members []string
	for _, m := range g.Members {
		n := 0
		for _, t := range m.MemberAssignments.Topics {
			n += len(t.Partitions)
		}
		members = append(members, fmt.Sprintf("%s at %s (%d partitions)", m.MemberID, m.ClientHost, n))
	}
	return fmt.Sprintf("%s, members: %s", g.GroupState, strings.Join(members, "; "))
}

// groupWorker is a `leadthrough ingest` process.
type groupWorker struct {
	cmd    *exec.Cmd
	stderr *workerLog
	done   chan struct{}
}

// startGroupWorker starts `leadthrough ingest` (the test binary, through TestLeadthroughProcess) in group on topic
// at brokers, into env's database, with the default group timeouts.
func startGroupWorker(t *testing.T, brokers, topic, group string, env *pipelinetest.Env) *groupWorker {
	t.Helper()
	args := []string{"-test.run=^TestLeadthroughProcess$", "--", "ingest", "--brokers", brokers, "--topic", topic,
		"--group", group, "--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database,
		"--listen", "", "--flush-interval", "200ms", "--log-level", "warn"}
	w := &groupWorker{cmd: exec.Command(os.Args[0], args...), stderr: &workerLog{}, done: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), "LEADTHROUGH_TEST_PROCESS=1")
	w.cmd.Stdout, w.cmd.Stderr = io.Discard, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.kill(t) })
	return w
}

// kill SIGKILLs the worker (no chance to leave the group or commit) and waits for it to be gone.
func (w *groupWorker) kill(t *testing.T) {
	t.Helper()
	if !w.exited() {
		if err := w.cmd.Process.Kill(); err != nil {
			t.Log(err)
		}
	}
	<-w.done
}

func (w *groupWorker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// workerLog is a worker's stderr, written by the process and read by the test.
type workerLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *workerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *workerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
