package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/ingest"
)

const waitLong = 60 * time.Second

func TestGoodEventsReachTheSinkAndTheGroupResumesAfterThem(t *testing.T) {
	tests := []struct {
		name      string
		events    int
		batchSize int
	}{
		{"one batch flushed by the interval", 20, 0},
		{"many batches flushed by size", 500, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := embedded(t)
			topic := unique(t, "topic")
			createTopic(t, addr, topic, 3)
			produce(t, addr, topic, goodEvents(t, 0, tt.events)...)
			cfg := config(t, addr, topic)
			cfg.BatchSize = tt.batchSize

			sink := &memSink{}
			stop := runWorker(t, cfg, sink)
			waitFor(t, waitLong, "every event in the sink", func() bool { return sink.Has(ids(0, tt.events)) })
			waitFor(t, waitLong, "offsets committed to the end of every partition", func() bool {
				return allCommitted(t, addr, cfg.GroupID, topic)
			})
			if err := stop(); err != nil {
				t.Fatalf("Run returned %v after cancel, want nil", err)
			}
			for id, n := range sink.Counts() {
				if n != 1 {
					t.Errorf("%s written %d times, want once", id, n)
				}
			}
			if tt.batchSize > 0 && sink.batches < tt.events/tt.batchSize {
				t.Errorf("%d batches for %d events with BatchSize %d", sink.batches, tt.events, tt.batchSize)
			}

			// A new worker of the same group starts after the committed offsets.
			produce(t, addr, topic, goodEvent(t, tt.events))
			next := &memSink{}
			runWorker(t, cfg, next)
			waitFor(t, waitLong, "the new event in the second sink", func() bool { return next.Has(ids(tt.events, 1)) })
			waitFor(t, waitLong, "the new event committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
			if got := next.Counts(); len(got) != 1 {
				t.Errorf("second worker of the group wrote %d distinct events, want only the new one", len(got))
			}
		})
	}
}

func TestFailingSinkWriteIsRetriedAndNothingIsCommittedUntilItSucceeds(t *testing.T) {
	for _, failures := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			const n = 30
			addr, topic, cfg := backlog(t, 3, n)
			reg := prometheus.NewPedanticRegistry()
			cfg.Metrics = ingest.NewMetrics(reg)

			var committedDuringFailure []bool
			sink := &memSink{fail: func(_ context.Context, attempt int, batch []ingest.Record) error {
				if attempt > failures {
					return nil
				}
				committedDuringFailure = append(committedDuringFailure, !noneCommitted(t, addr, cfg.GroupID, topic))
				return errSinkDown
			}}
			runWorker(t, cfg, sink)
			waitFor(t, waitLong, "every event in the sink", func() bool { return sink.Has(ids(0, n)) })
			waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })

			if slices.Contains(committedDuringFailure, true) {
				t.Errorf("offsets were committed while the sink was failing: %v", committedDuringFailure)
			}
			for id, c := range sink.Counts() {
				if c != 1 {
					t.Errorf("%s reached a successful write %d times, want exactly once", id, c)
				}
			}
			if got := value(t, reg, "leadthrough_ingest_write_errors_total"); got != float64(failures) {
				t.Errorf("write_errors_total = %v, want %d", got, failures)
			}
		})
	}
}

func TestUnwrittenBatchIsRedeliveredAfterCancel(t *testing.T) {
	tests := []struct {
		name string
		fail func(ctx context.Context, attempt int, batch []ingest.Record) error
	}{
		{"sink keeps failing", func(context.Context, int, []ingest.Record) error { return errSinkDown }},
		{"sink write hangs until the worker stops", func(ctx context.Context, _ int, _ []ingest.Record) error {
			<-ctx.Done()
			return ctx.Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testRedelivery(t, embedded(t), tt.fail) })
	}
}

// testRedelivery runs a worker whose sink never succeeds, stops it, and checks that nothing was committed and that
// a restarted worker of the same group gets every event.
func testRedelivery(t *testing.T, addr string, fail func(context.Context, int, []ingest.Record) error) {
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 3)
	const n = 25
	produce(t, addr, topic, goodEvents(t, 0, n)...)
	cfg := config(t, addr, topic)

	broken := &memSink{fail: fail}
	stop := runWorker(t, cfg, broken)
	waitFor(t, waitLong, "a write attempt", func() bool { return broken.Attempts() >= 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if !noneCommitted(t, addr, cfg.GroupID, topic) {
		committed, _ := offsets(t, addr, cfg.GroupID, topic)
		t.Fatalf("offsets committed without a successful write: %v", committed)
	}

	restarted := &memSink{}
	runWorker(t, cfg, restarted)
	waitFor(t, waitLong, "every event after the restart", func() bool { return restarted.Has(ids(0, n)) })
	waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
}

// badMessage is a message the worker must dead-letter, with what its headers must say.
type badMessage struct {
	name   string
	value  []byte
	reason string
	error  string // substring of leadthrough-error
}

func badMessages(maxBytes int) []badMessage {
	huge := bytes.Repeat([]byte("x"), maxBytes+1)
	return []badMessage{
		{"malformed JSON", []byte(`{"specversion":"1.0","id":`), "malformed_json", "malformed JSON"},
		{"negative amount", []byte(`{"specversion":"1.0","id":"neg-1","source":"crm/test","type":"deal.created",` +
			`"time":"2026-03-02T14:05:00Z","data":{"deal_id":"D-1","owner_id":"U-7","amount":-5}}`),
			"negative_amount", "data.amount: must be >= 0"},
		{"oversized", huge, "oversized", "more than the limit of " + strconv.Itoa(maxBytes) + " bytes"},
		{"invalid UTF-8", []byte("{\"specversion\":\"1.0\",\"id\":\"\xff\xfe\"}"), "invalid_utf8", "not valid UTF-8"},
		{"unknown type", []byte(`{"specversion":"1.0","id":"u-1","source":"crm/test","type":"deal.exploded",` +
			`"time":"2026-03-02T14:05:00Z","data":{}}`), "unknown_type", `type: unknown event type "deal.exploded"`},
		{"missing required field", []byte(`{"specversion":"1.0","id":"m-1","source":"crm/test","type":"deal.closed",` +
			`"time":"2026-03-02T14:05:00Z","data":{"deal_id":"D-1"}}`), "missing_field", "data.outcome: required"},
	}
}

func TestBadMessagesGoToTheDeadLetterTopicAndGoodOnesAroundThemArrive(t *testing.T) {
	addr := embedded(t)
	testDeadLetters(t, addr, 3)
}

// testDeadLetters interleaves good and bad messages on one key (one partition), runs the worker, and checks the
// sink, the dead-letter topic and its headers, the committed offsets and the dead-letter metric.
func testDeadLetters(t *testing.T, addr string, partitions int) {
	topic := unique(t, "topic")
	createTopic(t, addr, topic, partitions)
	const maxBytes = 4 << 10
	bad := badMessages(maxBytes)
	var msgs []kafka.Message
	for i, b := range bad {
		good := goodEvent(t, i)
		msgs = append(msgs, good,
			kafka.Message{Key: good.Key, Value: b.value, Headers: []kafka.Header{
				{Key: "traceparent", Value: []byte("00-abc-def-01")},
				{Key: "leadthrough-reason", Value: []byte("stale header from an earlier trip")},
			}})
	}
	msgs = append(msgs, goodEvent(t, len(bad)))
	produce(t, addr, topic, msgs...)

	cfg := config(t, addr, topic)
	cfg.MaxMessageBytes = maxBytes
	reg := prometheus.NewPedanticRegistry()
	cfg.Metrics = ingest.NewMetrics(reg)
	sink := &memSink{}
	runWorker(t, cfg, sink)

	waitFor(t, waitLong, "the good events", func() bool { return sink.Has(ids(0, len(bad)+1)) })
	waitFor(t, waitLong, "offsets committed past the bad messages", func() bool {
		return allCommitted(t, addr, cfg.GroupID, topic)
	})
	if got := len(sink.Counts()); got != len(bad)+1 {
		t.Errorf("sink holds %d distinct events, want the %d good ones", got, len(bad)+1)
	}

	dead := readTopic(t, addr, topic+".dlq", len(bad))
	byValue := make(map[string]kafka.Message)
	for _, m := range dead {
		byValue[string(m.Value)] = m
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			m, ok := byValue[string(b.value)]
			if !ok {
				t.Fatalf("no dead letter carries the original value")
			}
			want := map[string]string{
				ingest.HeaderReason:        b.reason,
				ingest.HeaderDecoder:       "cloudevents",
				ingest.HeaderOriginalTopic: topic,
				"traceparent":              "00-abc-def-01",
			}
			for k, v := range want {
				if got, _ := header(m, k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got, _ := header(m, ingest.HeaderError); !strings.Contains(got, b.error) {
				t.Errorf("header %s = %q, want it to contain %q", ingest.HeaderError, got, b.error)
			}
			n := 0
			for _, h := range m.Headers {
				if h.Key == ingest.HeaderReason {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d %s headers, want the stale one replaced", n, ingest.HeaderReason)
			}
			ps, _ := header(m, ingest.HeaderOriginalPartition)
			os, _ := header(m, ingest.HeaderOriginalOffset)
			p, err1 := strconv.Atoi(ps)
			o, err2 := strconv.ParseInt(os, 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatalf("original partition/offset headers %q/%q: %v", ps, os, err)
			}
			orig := readAt(t, addr, topic, p, o)
			if !bytes.Equal(orig.Value, b.value) || !bytes.Equal(orig.Key, m.Key) {
				t.Errorf("the original at %s/%d@%d is not the dead-lettered message", topic, p, o)
			}
		})
	}

	var want strings.Builder
	want.WriteString("# HELP leadthrough_ingest_dead_letters_total Messages written to a dead-letter topic, by original topic and rejection reason.\n")
	want.WriteString("# TYPE leadthrough_ingest_dead_letters_total counter\n")
	reasons := make([]string, 0, len(bad))
	for _, b := range bad {
		reasons = append(reasons, b.reason)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(&want, "leadthrough_ingest_dead_letters_total{reason=%q,topic=%q} 1\n", r, topic)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "leadthrough_ingest_dead_letters_total"); err != nil {
		t.Error(err)
	}
}

// arrayDecoder decodes a JSON array of CloudEvents, like a vendor webhook that batches changes.
type arrayDecoder struct{}

func (arrayDecoder) Name() string { return "test-array" }

func (arrayDecoder) Decode(value []byte) ([]event.Event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(value, &raws); err != nil {
		return nil, &event.Error{Reason: event.ReasonMalformedJSON, Detail: err.Error()}
	}
	if len(raws) > 0 && string(raws[0]) == `"panic"` {
		panic("decoder bug")
	}
	if len(raws) > 0 && string(raws[0]) == `"invalid"` {
		// A buggy decoder emitting an event the contract rejects.
		return []event.Event{{Source: "crm/test", ID: "x", Type: event.DealCreated, Time: time.Now(),
			Data: event.Data{DealID: "D-1", OwnerID: "U-1", Amount: event.Ptr(-1.0)}}}, nil
	}
	if len(raws) > 0 && string(raws[0]) == `"opaque"` {
		return nil, errors.New("vendor payload without a reason")
	}
	evs := make([]event.Event, len(raws))
	for i, r := range raws {
		ev, err := event.Decode(r)
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	return evs, nil
}

func TestCustomDecoderFansOutAndItsFailuresAreDeadLettered(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "vendor")
	createTopic(t, addr, topic, 1)
	array := func(msgs ...kafka.Message) []byte {
		var parts [][]byte
		for _, m := range msgs {
			parts = append(parts, m.Value)
		}
		return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	}
	produce(t, addr, topic,
		kafka.Message{Value: array(goodEvents(t, 0, 3)...)},
		kafka.Message{Value: []byte(`["panic"]`)},
		kafka.Message{Value: []byte(`["invalid"]`)},
		kafka.Message{Value: []byte(`["opaque"]`)},
		kafka.Message{Value: []byte(`[]`)}, // no events: committed, neither stored nor dead-lettered
		kafka.Message{Value: array(goodEvents(t, 3, 2)...)},
	)
	cfg := config(t, addr, topic)
	cfg.Topics = []ingest.Topic{{Name: topic, Decoder: arrayDecoder{}}}
	sink := &memSink{}
	runWorker(t, cfg, sink)
	waitFor(t, waitLong, "the fanned-out events", func() bool { return sink.Has(ids(0, 5)) })
	waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })

	want := map[string]string{ // value → reason
		`["panic"]`:   "decode_error",
		`["invalid"]`: "negative_amount",
		`["opaque"]`:  "decode_error",
	}
	for _, m := range readTopic(t, addr, topic+".dlq", len(want)) {
		reason, _ := header(m, ingest.HeaderReason)
		if w, ok := want[string(m.Value)]; !ok || reason != w {
			t.Errorf("dead letter %s has reason %q, want %q", m.Value, reason, w)
		}
		if d, _ := header(m, ingest.HeaderDecoder); d != "test-array" {
			t.Errorf("dead letter %s names decoder %q, want test-array", m.Value, d)
		}
	}
	// Events keep the offset of the message they came from.
	for _, r := range sink.written {
		if r.Topic != topic || r.Partition != 0 || (r.Offset != 0 && r.Offset != 5) {
			t.Errorf("record %s from %s/%d@%d, want %s/0@0 or @5", r.Event.ID, r.Topic, r.Partition, r.Offset, topic)
		}
	}
}

func TestMetricsPassLintOnAPedanticRegistry(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 2)
	produce(t, addr, topic, append(goodEvents(t, 0, 5), kafka.Message{Value: []byte("{")})...)
	cfg := config(t, addr, topic)
	reg := prometheus.NewPedanticRegistry()
	cfg.Metrics = ingest.NewMetrics(reg)
	sink := &memSink{fail: func(_ context.Context, attempt int, _ []ingest.Record) error {
		if attempt == 1 {
			return errSinkDown
		}
		return nil
	}}
	stop := runWorker(t, cfg, sink)
	waitFor(t, waitLong, "the events", func() bool { return sink.Has(ids(0, 5)) })
	waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	problems, err := testutil.CollectAndLint(cfg.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	gathered, err := testutil.GatherAndLint(reg) // the pedantic registry also checks descriptors against metrics
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(problems, gathered...) {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Every event type has its series from the start, at 0 until an event of it is written.
	var byType strings.Builder
	for _, typ := range event.Types {
		n := 0
		if typ == event.DealCreated {
			n = 5
		}
		fmt.Fprintf(&byType, "leadthrough_ingest_events_total{type=%q} %d\n", typ, n)
	}
	want := fmt.Sprintf(`
# HELP leadthrough_ingest_messages_total Kafka messages consumed, by topic, including redeliveries and messages that were dead-lettered.
# TYPE leadthrough_ingest_messages_total counter
leadthrough_ingest_messages_total{topic=%q} 6
# HELP leadthrough_ingest_events_total Canonical events written to the sink, by event type. Redelivered events count again.
# TYPE leadthrough_ingest_events_total counter
`+byType.String()+`# HELP leadthrough_ingest_write_errors_total Failed sink writes; nothing is committed past a failure. A batch written on its own is retried as it is; a failed insert of streamed batches is read again from Kafka (leadthrough_ingest_rereads_total).
# TYPE leadthrough_ingest_write_errors_total counter
leadthrough_ingest_write_errors_total 1
`, topic)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"leadthrough_ingest_messages_total", "leadthrough_ingest_events_total", "leadthrough_ingest_write_errors_total"); err != nil {
		t.Error(err)
	}
	if n := value(t, reg, "leadthrough_ingest_batches_total"); n < 1 {
		t.Errorf("batches_total = %v, want at least 1", n)
	}
	if ts := value(t, reg, "leadthrough_ingest_last_commit_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last_commit_timestamp_seconds = %v, want about now", ts)
	}
	if n, err := testutil.GatherAndCount(reg, "leadthrough_ingest_batch_write_duration_seconds"); err != nil || n != 1 {
		t.Errorf("batch_write_duration_seconds: %d series, %v", n, err)
	}
	for _, stage := range []string{"fetch", "decode", "write"} {
		if v := testutil.ToFloat64(cfg.Metrics.StageSeconds(stage)); v <= 0 {
			t.Errorf("stage_seconds_total{stage=%q} = %v, want > 0", stage, v)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "leadthrough_ingest_batch_bytes", "leadthrough_ingest_backpressure_seconds_total"); err != nil || n != 2 {
		t.Errorf("batch_bytes and backpressure_seconds_total: %d series, %v", n, err)
	}
}

// value returns the value of the single unlabelled counter or gauge series called name.
func value(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no single series named %s", name)
	return 0
}

func TestOversizedMessageTooLargeForTheDeadLetterTopicIsDeadLetteredTruncated(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		// Passes the producer's own limit, refused by the broker (message.max.bytes 1048588): retried truncated.
		{"just over the broker's limit", 1<<20 + 20<<10},
		// Refused by the producer before it is sent: truncated up front.
		{"three times the broker's limit", 3 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := embedded(t)
			topic := unique(t, "big")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := &kafka.Client{Addr: kafka.TCP(addr)}
			// The source topic accepts big messages; its dead-letter topic, created automatically, does not.
			resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
				Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(8 << 20)}},
			}}})
			if err != nil || resp.Errors[topic] != nil {
				t.Fatalf("create %s: %v %v", topic, err, resp.Errors[topic])
			}
			big := bytes.Repeat([]byte("y"), tt.size)
			produce(t, addr, topic, kafka.Message{Key: []byte("k"), Value: big}, goodEvent(t, 0))

			cfg := config(t, addr, topic) // default MaxMessageBytes: 1 MiB
			sink := &memSink{}
			runWorker(t, cfg, sink)
			waitFor(t, waitLong, "the good event after the big one", func() bool { return sink.Has(ids(0, 1)) })
			waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })

			m := readTopic(t, addr, topic+".dlq", 1)[0]
			if reason, _ := header(m, ingest.HeaderReason); reason != "oversized" {
				t.Errorf("reason %q, want oversized", reason)
			}
			if size, _ := header(m, ingest.HeaderOriginalSize); size != strconv.Itoa(tt.size) {
				t.Errorf("%s = %q, want %d", ingest.HeaderOriginalSize, size, tt.size)
			}
			if len(m.Value) >= tt.size || !bytes.HasPrefix(big, m.Value) || len(m.Value) == 0 {
				t.Errorf("dead letter value is %d bytes, want a non-empty prefix of the %d-byte original", len(m.Value), tt.size)
			}
			if o, _ := header(m, ingest.HeaderOriginalOffset); o != "0" {
				t.Errorf("original offset %q, want 0", o)
			}
		})
	}
}

func TestRunRejectsAnInvalidConfigWithoutConnecting(t *testing.T) {
	if err := ingest.Run(context.Background(), ingest.Config{}, &memSink{}); !errors.Is(err, ingest.ErrNoBrokers) {
		t.Errorf("Run without brokers: %v, want ErrNoBrokers", err)
	}
	if err := ingest.Run(context.Background(), ingest.Config{Brokers: []string{"127.0.0.1:1"}}, nil); err == nil {
		t.Error("Run with a nil Sink returned nil")
	}
}

func TestBatchWrittenAsTheWorkerStopsIsStillCommitted(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 3)
	produce(t, addr, topic, goodEvents(t, 0, 10)...)
	cfg := config(t, addr, topic)
	// The write completes only once the worker is told to stop.
	sink := &memSink{fail: func(ctx context.Context, _ int, _ []ingest.Record) error {
		<-ctx.Done()
		return nil
	}}
	stop := runWorker(t, cfg, sink)
	waitFor(t, waitLong, "a write attempt", func() bool { return sink.Attempts() >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !sink.Has(ids(0, 10)) {
		t.Fatal("the write did not complete")
	}
	if !allCommitted(t, addr, cfg.GroupID, topic) {
		committed, end := offsets(t, addr, cfg.GroupID, topic)
		t.Errorf("written batch not committed on the way out: committed %v, end %v", committed, end)
	}
}

func TestEachTopicHasItsOwnDecoderAndDeadLetterTopic(t *testing.T) {
	addr := embedded(t)
	canonical, vendor := unique(t, "canonical"), unique(t, "vendor")
	createTopic(t, addr, canonical, 2)
	createTopic(t, addr, vendor, 2)
	produce(t, addr, canonical, goodEvent(t, 0), kafka.Message{Value: []byte("[")})
	produce(t, addr, vendor, kafka.Message{Value: []byte("[" + string(goodEvent(t, 1).Value) + "]")},
		kafka.Message{Value: []byte("{")})
	cfg := config(t, addr, canonical)
	cfg.DLQSuffix = "-dead"
	cfg.Topics = []ingest.Topic{{Name: canonical}, {Name: vendor, Decoder: arrayDecoder{}}}
	sink := &memSink{}
	runWorker(t, cfg, sink)
	waitFor(t, waitLong, "both topics' events", func() bool { return sink.Has(ids(0, 2)) })
	for topic, decoder := range map[string]string{canonical: "cloudevents", vendor: "test-array"} {
		waitFor(t, waitLong, topic+" committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
		m := readTopic(t, addr, topic+"-dead", 1)[0]
		if d, _ := header(m, ingest.HeaderDecoder); d != decoder {
			t.Errorf("%s dead letter names decoder %q, want %q", topic, d, decoder)
		}
		if o, _ := header(m, ingest.HeaderOriginalTopic); o != topic {
			t.Errorf("%s dead letter names original topic %q", topic, o)
		}
	}
}

func TestRunWaitsForAMissingSourceTopicAndCreatesItWhenTheBrokerAllows(t *testing.T) {
	addr := embedded(t) // allows automatic topic creation
	topic := unique(t, "late")
	cfg := config(t, addr, topic)
	sink := &memSink{}
	runWorker(t, cfg, sink)
	waitFor(t, waitLong, "the topic to exist", func() bool {
		c := &kafka.Client{Addr: kafka.TCP(addr)}
		meta, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		return err == nil && len(meta.Topics) == 1 && meta.Topics[0].Error == nil && len(meta.Topics[0].Partitions) > 0
	})
	produce(t, addr, topic, goodEvents(t, 0, 5)...)
	waitFor(t, waitLong, "events produced after the worker started", func() bool { return sink.Has(ids(0, 5)) })
}

func TestTwoWorkersOfOneGroupShareThePartitionsAndLoseNothingOnRebalance(t *testing.T) {
	testTwoWorkers(t, embedded(t))
}

// testTwoWorkers runs a second worker of the group while the first is busy, then stops it; kafka-go members learn
// of a rebalance from their next heartbeat (every 3s).
func testTwoWorkers(t *testing.T, addr string) {
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 4)
	cfg := config(t, addr, topic)
	first, second := &memSink{}, &memSink{}
	produce(t, addr, topic, goodEvents(t, 0, 40)...)
	runWorker(t, cfg, first)
	waitFor(t, waitLong, "the first worker to start writing", func() bool { return first.Attempts() > 0 })
	stopSecond := runWorker(t, cfg, second) // joins: the group rebalances under load
	produce(t, addr, topic, goodEvents(t, 40, 40)...)
	waitFor(t, waitLong, "every event in one of the sinks", func() bool {
		all := first.Counts()
		for id, n := range second.Counts() {
			all[id] += n
		}
		for _, id := range ids(0, 80) {
			if all[id] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, waitLong, "offsets committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if err := stopSecond(); err != nil { // leaves: rebalances again
		t.Fatal(err)
	}
	produce(t, addr, topic, goodEvents(t, 80, 10)...)
	waitFor(t, waitLong, "events after the second worker left", func() bool { return first.Has(ids(80, 10)) })
}
