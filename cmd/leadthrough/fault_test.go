package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/simulate"
)

// The fault run: its size, its pace and how long it may take to recover.
const (
	faultWorkers    = 3
	faultPartitions = 6
	// faultStreamTime is how long publishing the stream takes when nothing stalls the producer; a broker restart
	// stretches it by the time the broker is down.
	faultStreamTime = 30 * time.Second
	faultChunk      = 100 // messages per produce call
	// faultRecovery bounds the wait, after the stream and the faults ended, for the workers to store every event
	// and dead-letter every bad message. Generous: it only turns a pipeline that never recovers into a failure.
	faultRecovery = 4 * time.Minute
)

// faultEnd is the end of the simulated period: fixed, so that the run is the same every time.
var faultEnd = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// TestPipelineSurvivesFaults runs the pipeline as production does, as processes of the real binary: three
// `leadthrough ingest` workers in one consumer group on a topic of six partitions, writing to one ClickHouse
// database. While a simulated org's events (redelivered copies and late arrivals included) and a set of bad messages
// are published, it SIGKILLs and restarts workers, takes ClickHouse away from the workers for 10 seconds (a TCP
// proxy between them and the shared server, cut and restored; a worker is restarted while it is cut), and SIGKILLs
// and restarts the broker. Then it waits, up to a generous deadline, and checks that every distinct event is stored
// exactly once, that the indicators computed in ClickHouse equal the reference model's on the generated events, and
// that the dead-letter topic holds exactly the bad messages.
//
// It runs on Apache Kafka and on the embedded broker. The Apache Kafka is one of the test's own, set up by
// scripts/kafka.sh on ports of its own: the shared test broker cannot be restarted under the other tests, and a
// proxy in front of it would not cut anything, since kafka-go connects to the addresses the broker advertises (the
// group coordinator's and each partition leader's) once it has bootstrapped.
func TestPipelineSurvivesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault-injection test runs the pipeline as processes for minutes; skipped in -short")
	}
	testenv.ClickHouse(t)
	bin := buildLeadthrough(t)
	t.Run("kafka", func(t *testing.T) {
		testenv.Kafka(t) // make test installs Apache Kafka and provides the shared broker; this test starts its own
		runFaults(t, bin, startDedicatedKafka(t))
	})
	t.Run("embedded-broker", func(t *testing.T) {
		runFaults(t, bin, startEmbeddedFaultBroker(t, bin, faultPartitions))
	})
}

// badMessage is a message that must be dead-lettered, with the reason it must be dead-lettered for.
type badMessage struct {
	value  string
	reason event.Reason
}

// faultBadMessages returns n bad messages of every kind in turn, each with a value of its own.
func faultBadMessages(n int) []badMessage {
	kinds := []struct {
		reason event.Reason
		format string // %d: a number unique to the message
	}{
		{event.ReasonMalformedJSON, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.created",`},
		{event.ReasonUnknownType, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.teleported",` +
			`"time":"2026-01-10T10:00:00Z","data":{"deal_id":"D-bad"}}`},
		{event.ReasonMissingField, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.created",` +
			`"time":"2026-01-10T10:00:00Z","data":{"deal_id":"D-bad"}}`}, // no owner_id
		{event.ReasonNegativeAmount, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.amount_changed",` +
			`"time":"2026-01-10T10:00:00Z","data":{"deal_id":"D-bad","amount":-5}}`},
		// Trailing garbage after a valid event: the closing brace of a careless template, and plain text.
		{event.ReasonMalformedJSON, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.deleted",` +
			`"time":"2026-01-10T10:00:00Z","data":{"deal_id":"D-bad"}}}`},
		{event.ReasonMalformedJSON, `{"specversion":"1.0","id":"bad-%d","source":"fault/bad","type":"deal.deleted",` +
			`"time":"2026-01-10T10:00:00Z","data":{"deal_id":"D-bad"}} trailing`},
	}
	out := make([]badMessage, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		out[i] = badMessage{value: fmt.Sprintf(k.format, i), reason: k.reason}
	}
	return out
}

// faultStream is what a fault run publishes.
type faultStream struct {
	events   []event.Event // as simulated, redelivered copies included: the reference model's input
	distinct map[[2]string]bool
	msgs     []kafka.Message // in publishing order: the events' messages with the bad ones in between
	bad      map[string]badMessage
}

func newFaultStream(t *testing.T) *faultStream {
	t.Helper()
	cfg := simulate.Config{Seed: 8, End: faultEnd, Days: 240, Managers: 6, RepsPerManager: 6,
		DuplicateRatio: 0.08, ShuffleRatio: 0.05}
	s := &faultStream{distinct: map[[2]string]bool{}, bad: map[string]badMessage{}}
	stats, err := simulate.Stream(context.Background(), cfg, func(e event.Event) error {
		s.events = append(s.events, e)
		s.distinct[[2]string{e.Source, e.ID}] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Duplicates == 0 || stats.Late == 0 || len(s.distinct) != stats.Distinct() {
		t.Fatalf("the simulated stream should have redelivered copies and late events: %+v", stats)
	}
	bad := faultBadMessages(18)
	every := len(s.events) / len(bad)
	for i, e := range s.events {
		if i%every == every/2 && i/every < len(bad) {
			b := bad[i/every]
			s.bad[b.value] = b
			s.msgs = append(s.msgs, kafka.Message{Key: []byte(fmt.Sprintf("bad-%d", i/every)), Value: []byte(b.value)})
		}
		v, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		s.msgs = append(s.msgs, kafka.Message{Key: []byte(e.Key()), Value: v})
	}
	return s
}

// publish produces the stream's messages in chunks, faultStreamTime/chunks apart, retrying a chunk until the broker
// takes it (or ctx ends): a retry may publish a message twice, as a real producer's would. It returns the number
// of failed produce calls.
func (s *faultStream) publish(ctx context.Context, addr, topic string) (failures int, err error) {
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: faultChunk, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 5 * time.Second}
	defer w.Close()
	chunks := (len(s.msgs) + faultChunk - 1) / faultChunk
	pause := faultStreamTime / time.Duration(chunks)
	for start := 0; start < len(s.msgs); start += faultChunk {
		pending := s.msgs[start:min(start+faultChunk, len(s.msgs))]
		for {
			err := w.WriteMessages(ctx, pending...)
			if err == nil {
				break
			}
			failures++
			if ctx.Err() != nil {
				return failures, fmt.Errorf("publish messages %d–%d: %w", start, start+len(pending), err)
			}
			var perMessage kafka.WriteErrors
			if errors.As(err, &perMessage) { // retry only the ones that failed
				var failed []kafka.Message
				for i, e := range perMessage {
					if e != nil {
						failed = append(failed, pending[i])
					}
				}
				pending = failed
			}
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(pause)
	}
	return failures, nil
}

// faultRun is one fault run's state.
type faultRun struct {
	t       *testing.T
	env     *pipelinetest.Env
	broker  faultBroker
	clickh  *faultProxy
	workers []*faultProcess
	topic   string
	began   time.Time
}

// logf logs what happened with the time since the stream began.
func (r *faultRun) logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("%5.1fs  %s", time.Since(r.began).Seconds(), fmt.Sprintf(format, args...))
}

func (r *faultRun) killWorker(i int) {
	r.t.Helper()
	r.workers[i].kill()
	r.logf("kill -9 worker %d (restarted %s later)", i, faultRestartDelay)
}

// dumpLogs logs the end of every process's log, and the workers' exits that the test did not cause, for a failure.
func (r *faultRun) dumpLogs() {
	r.t.Helper()
	for i, w := range r.workers {
		r.t.Logf("worker %d log (%s) ends with:\n%s", i, w.logPath, faultTail(w.logPath, 25))
		for _, e := range w.unexpectedExits() {
			r.t.Logf("worker %d exited without being killed: %s", i, e)
		}
	}
	r.t.Logf("broker log ends with:\n%s", r.broker.Log())
}

func runFaults(t *testing.T, bin string, broker faultBroker) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := pipelinetest.New(t, "fault")
	stream := newFaultStream(t)
	r := &faultRun{t: t, env: env, broker: broker, clickh: startFaultProxy(t, env.ClickHouse),
		topic: env.Name("fault.events.")}
	if err := createFaultTopic(ctx, broker.Addr(), r.topic); err != nil {
		t.Fatal(err)
	}
	group := env.Name("fault-")
	for i := range faultWorkers {
		r.workers = append(r.workers, startFaultProcess(t, fmt.Sprintf("worker-%d", i), bin, "ingest",
			"--brokers", broker.Addr(), "--topic", r.topic, "--group", group,
			"--clickhouse-addr", r.clickh.addr, "--clickhouse-database", env.Database,
			"--listen", faultAddr(t), "--flush-interval", "200ms", "--log-level", "info"))
	}
	t.Logf("%d events (%d distinct) and %d bad messages to %s through %s; %d workers, ClickHouse through %s",
		len(stream.events), len(stream.distinct), len(stream.bad), r.topic, broker.Addr(), faultWorkers, r.clickh.addr)

	r.began = time.Now()
	var published sync.WaitGroup
	var publishFailures int
	var publishErr error
	published.Go(func() {
		publishFailures, publishErr = stream.publish(ctx, broker.Addr(), r.topic)
	})
	at := func(d time.Duration) { time.Sleep(time.Until(r.began.Add(d))) }

	at(2 * time.Second)
	r.killWorker(0)
	at(5 * time.Second)
	r.killWorker(1)
	at(8 * time.Second)
	if n := r.clickh.cut(); n == 0 {
		t.Fatal("no worker was connected to ClickHouse through the proxy: cutting it would prove nothing")
	} else {
		r.logf("ClickHouse cut off from the workers (%d connections closed, new ones refused)", n)
	}
	at(11 * time.Second)
	r.killWorker(2) // it starts again while ClickHouse is away: it must wait for it, not exit
	at(18 * time.Second)
	if err := r.clickh.restore(); err != nil {
		t.Fatal(err)
	}
	r.logf("ClickHouse back")
	at(20 * time.Second)
	r.logf("kill -9 the broker")
	broker.Restart(t)
	r.logf("broker back")
	back := time.Since(r.began)
	at(back + 2*time.Second)
	r.killWorker(0)
	at(back + 4*time.Second)
	r.killWorker(1)

	published.Wait()
	if publishErr != nil {
		r.dumpLogs()
		t.Fatal(publishErr)
	}
	r.logf("stream published (%d produce calls failed and were retried); last fault at %.1fs",
		publishFailures, (back + 4*time.Second).Seconds())

	r.waitStored(ctx, stream)
	r.checkDeadLetters(ctx, stream)
	r.checkStoredSet(ctx, stream)
	r.checkIndicators(ctx, stream)

	// A daemon waits for its services rather than exiting, and exits with 0 when asked to stop.
	for i, w := range r.workers {
		for _, e := range w.unexpectedExits() {
			t.Errorf("worker %d exited without being killed: %s", i, e)
		}
		if err := w.stop(30 * time.Second); err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
}

// createFaultTopic creates topic with faultPartitions partitions: Apache Kafka would create it with its default
// count on first use.
func createFaultTopic(ctx context.Context, addr, topic string) error {
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: faultPartitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %s with %d partitions at %s: %w", topic, faultPartitions, addr, err)
	}
	return nil
}

// waitStored waits until ClickHouse holds the stream's distinct events, failing when it holds more or faultRecovery
// passed.
func (r *faultRun) waitStored(ctx context.Context, s *faultStream) {
	r.t.Helper()
	want := uint64(len(s.distinct))
	since := time.Now()
	deadline := since.Add(faultRecovery)
	for {
		n, err := r.env.Store.CountEvents(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		if n == want {
			r.logf("all %d distinct events stored, %.1fs after the stream ended", want, time.Since(since).Seconds())
			return
		}
		if n > want {
			r.checkStoredSet(ctx, s) // names what should not be there
			r.dumpLogs()
			r.t.Fatalf("%d distinct events stored, want %d: something that is not one of the simulated events was "+
				"stored", n, want)
		}
		if time.Now().After(deadline) {
			r.dumpLogs()
			r.t.Fatalf("%d of %d distinct events stored %s after the stream ended: the pipeline did not recover",
				n, want, faultRecovery)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkStoredSet checks that the events stored are exactly the distinct events simulated, each once.
func (r *faultRun) checkStoredSet(ctx context.Context, s *faultStream) {
	r.t.Helper()
	rows, err := r.env.Store.Conn().Query(ctx, "SELECT source, id FROM deal_events FINAL "+
		"UNION ALL SELECT source, id FROM activities FINAL UNION ALL SELECT source, id FROM user_events FINAL")
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	seen := map[[2]string]int{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			r.t.Fatal(err)
		}
		seen[k]++
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	var extra, twice, missing []string
	for k, n := range seen {
		if !s.distinct[k] {
			extra = append(extra, k[0]+"/"+k[1])
		} else if n > 1 {
			twice = append(twice, fmt.Sprintf("%s/%s ×%d", k[0], k[1], n))
		}
	}
	for k := range s.distinct {
		if seen[k] == 0 {
			missing = append(missing, k[0]+"/"+k[1])
		}
	}
	for _, l := range []struct {
		what string
		ids  []string
	}{{"stored but never simulated", extra}, {"stored more than once", twice}, {"missing", missing}} {
		if len(l.ids) > 0 {
			slices.Sort(l.ids)
			r.t.Errorf("%d events %s: %s", len(l.ids), l.what, strings.Join(l.ids[:min(10, len(l.ids))], ", "))
		}
	}
}

// checkIndicators compares the indicators ClickHouse computes with the reference model's, for a few windows.
func (r *faultRun) checkIndicators(ctx context.Context, s *faultStream) {
	r.t.Helper()
	for _, p := range []indicator.Params{
		{AsOf: faultEnd, Window: 30 * 24 * time.Hour},
		{AsOf: faultEnd.Add(-45 * 24 * time.Hour), Window: 30 * 24 * time.Hour},
		{AsOf: faultEnd, Window: 90 * 24 * time.Hour},
	} {
		want := indicator.Reference(s.events, p)
		won := 0
		for _, row := range want {
			won += int(row.WonDeals)
		}
		if won == 0 {
			r.t.Fatalf("window of %s ending %s: the reference has no won deal, so it proves little", p.Window, p.AsOf)
		}
		got := r.env.Indicators(ctx, r.t, p)
		if diff := diffRows(got, want); diff != "" {
			r.t.Errorf("window of %s ending %s: the indicators differ from the reference model's:\n%s", p.Window,
				p.AsOf.Format(time.RFC3339), diff)
		}
	}
}

// position is where a message lies in its topic.
type position struct {
	partition int
	offset    int64
}

// checkDeadLetters reads the topic as published and its dead-letter topic, and checks that the dead letters are
// exactly the bad messages: one for the message at each position where a bad one was published (a retried produce
// call may have published it twice, at two positions), each with its value and the reason it was rejected for,
// and none for any other message. Dead letters are delivered at least once (a worker killed after producing them
// but before committing its batch produces them again), so a position may have more than one; it waits up to
// faultRecovery for every position to have one.
func (r *faultRun) checkDeadLetters(ctx context.Context, s *faultStream) {
	r.t.Helper()
	source, err := readFaultTopic(ctx, r.broker.Addr(), r.topic)
	if err != nil {
		r.t.Fatal(err)
	}
	published := 0
	for _, msgs := range source {
		published += len(msgs)
	}
	want := map[position]badMessage{}
	found := map[string]bool{}
	for p, msgs := range source {
		for _, m := range msgs {
			if b, ok := s.bad[string(m.Value)]; ok {
				want[position{p, m.Offset}] = b
				found[b.value] = true
			}
		}
	}
	if len(found) != len(s.bad) {
		r.t.Fatalf("%d of the %d bad messages are in %s", len(found), len(s.bad), r.topic)
	}
	r.logf("%s holds %d messages for the %d published (a retried produce call can publish one twice); %d of them bad",
		r.topic, published, len(s.msgs), len(want))

	deadline := time.Now().Add(faultRecovery)
	for {
		dead, err := readFaultTopic(ctx, r.broker.Addr(), r.topic+ingest.DefaultDLQSuffix)
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			r.t.Fatal(err)
		}
		got := map[position]int{}
		letters := 0
		for _, msgs := range dead {
			for _, m := range msgs {
				letters++
				h := pipelinetest.Headers(m)
				part, perr := strconv.Atoi(h[ingest.HeaderOriginalPartition])
				off, oerr := strconv.ParseInt(h[ingest.HeaderOriginalOffset], 10, 64)
				if h[ingest.HeaderOriginalTopic] != r.topic || perr != nil || oerr != nil {
					r.t.Fatalf("dead letter %q does not name its original position in %s: %v", m.Value, r.topic, h)
				}
				pos := position{part, off}
				b, ok := want[pos]
				switch {
				case !ok:
					r.t.Fatalf("dead letter of a message that is not bad, at %s[%d]@%d: %q (%s: %s)", r.topic, part,
						off, m.Value, h[ingest.HeaderReason], h[ingest.HeaderError])
				case string(m.Value) != b.value:
					r.t.Fatalf("dead letter for %s[%d]@%d holds %q, want %q", r.topic, part, off, m.Value, b.value)
				case h[ingest.HeaderReason] != string(b.reason):
					r.t.Errorf("dead letter %q: reason %q (%s), want %q", m.Value, h[ingest.HeaderReason],
						h[ingest.HeaderError], b.reason)
				}
				got[pos]++
			}
		}
		if len(got) == len(want) {
			r.logf("%s holds %d dead letters: one for each of the %d bad messages, %d of them more than once "+
				"(at-least-once delivery of dead letters)", r.topic+ingest.DefaultDLQSuffix, letters, len(want),
				letters-len(want))
			return
		}
		if time.Now().After(deadline) {
			var missing []string
			for pos, b := range want {
				if got[pos] == 0 {
					missing = append(missing, fmt.Sprintf("[%d]@%d %q", pos.partition, pos.offset, b.value))
				}
			}
			slices.Sort(missing)
			r.dumpLogs()
			r.t.Fatalf("%d of %d bad messages have no dead letter %s after the stream: %s", len(missing), len(want),
				faultRecovery, strings.Join(missing, "; "))
		}
		time.Sleep(time.Second)
	}
}

// readFaultTopic reads every message of topic at addr, partition by partition, up to the end it has now.
func readFaultTopic(ctx context.Context, addr, topic string) (map[int][]kafka.Message, error) {
	offsets, err := partitionOffsets(ctx, addr, topic)
	if err != nil {
		return nil, err
	}
	out := map[int][]kafka.Message{}
	for partition, o := range offsets {
		first, last := o.first, o.end
		if last <= first {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: partition,
			MaxWait: 200 * time.Millisecond, MaxBytes: 10 << 20})
		if err := rd.SetOffset(first); err != nil {
			rd.Close()
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		next := first
		for {
			m, err := rd.ReadMessage(rctx)
			if err != nil {
				cancel()
				rd.Close()
				return nil, fmt.Errorf("%s[%d] has offsets %d to %d, but reading it stopped at %d: %w", topic, partition,
					first, last-1, next, err)
			}
			next = m.Offset + 1
			out[partition] = append(out[partition], m)
			if m.Offset >= last-1 {
				break
			}
		}
		cancel()
		rd.Close()
	}
	return out, nil
}
