package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/ingest"
)

// embedded starts a kfake broker for one test and returns its address.
func embedded(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

var seq atomic.Int64

// unique returns a topic or group name unique to this test and process.
func unique(t *testing.T, what string) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("%s-%s-%d-%d", what, name, time.Now().UnixNano()%1e9, seq.Add(1))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func config(t *testing.T, addr, topic string) ingest.Config {
	return ingest.Config{
		Brokers:       []string{addr},
		GroupID:       unique(t, "group"),
		Topics:        []ingest.Topic{{Name: topic, Decoder: ingest.CloudEvents}},
		FlushInterval: 50 * time.Millisecond,
		Logger:        testLogger(t),
	}
}

// backlog starts an embedded broker with a topic of the given partitions holding goodEvents 0 to n-1, and returns
// a worker configuration for it.
func backlog(t *testing.T, partitions, n int) (addr, topic string, cfg ingest.Config) {
	t.Helper()
	addr = embedded(t)
	topic = unique(t, "topic")
	createTopic(t, addr, topic, partitions)
	produce(t, addr, topic, goodEvents(t, 0, n)...)
	return addr, topic, config(t, addr, topic)
}

// goodEvent is a valid deal.created event, keyed by its deal.
func goodEvent(t *testing.T, i int) kafka.Message {
	t.Helper()
	ev := event.Event{
		Source: "crm/test", ID: fmt.Sprintf("evt-%d", i), Type: event.DealCreated,
		Time: time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
		Data: event.Data{DealID: fmt.Sprintf("D-%d", i%7), OwnerID: "U-7", Amount: event.Ptr(100.0 + float64(i))},
	}
	v, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(ev.Key()), Value: v}
}

func goodEvents(t *testing.T, from, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = goodEvent(t, from+i)
	}
	return msgs
}

func ids(from, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("crm/test/evt-%d", from+i)
	}
	return s
}

// createTopic creates a topic with the given partitions, so tests do not depend on the broker's default.
func createTopic(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes msgs to topic, partitioned by key, and waits for the broker's acks.
func produce(t *testing.T, addr, topic string, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		AllowAutoTopicCreation: true, BatchTimeout: 5 * time.Millisecond, BatchBytes: 16 << 20,
	}
	defer w.Close()
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("produce %d messages to %s: %v", len(msgs), topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memSink is an in-memory Sink. fail, if set, decides each attempt (counted from 1); it runs without the lock so
// it may block.
type memSink struct {
	fail func(ctx context.Context, attempt int, batch []ingest.Record) error

	mu       sync.Mutex
	attempts int
	written  []ingest.Record // from successful writes only, in order
	batches  int
}

func (s *memSink) Write(ctx context.Context, batch []ingest.Record) error {
	s.mu.Lock()
	s.attempts++
	attempt := s.attempts
	s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(ctx, attempt, batch); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = append(s.written, batch...)
	s.batches++
	return nil
}

func (s *memSink) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Counts returns how often each source/id was written successfully.
func (s *memSink) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int)
	for _, r := range s.written {
		m[r.Event.Source+"/"+r.Event.ID]++
	}
	return m
}

func (s *memSink) Has(ids []string) bool {
	c := s.Counts()
	for _, id := range ids {
		if c[id] == 0 {
			return false
		}
	}
	return true
}

var errSinkDown = errors.New("sink is down")

// runWorker runs ingest.Run in the background; stop cancels it and returns Run's result.
func runWorker(t *testing.T, cfg ingest.Config, sink ingest.Sink) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingest.Run(ctx, cfg, sink) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				result = errors.New("Run did not return within 30s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// offsets returns, per partition of topic, the group's committed offset (-1 if none) and the end offset.
func offsets(t *testing.T, addr, group, topic string) (committed, end map[int]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, meta)
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	end = make(map[int]int64)
	for _, p := range lo.Topics[topic] {
		end[p.Partition] = p.LastOffset
	}
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	committed = make(map[int]int64)
	for _, p := range of.Topics[topic] {
		committed[p.Partition] = p.CommittedOffset
	}
	return committed, end
}

// allCommitted reports whether group committed every partition of topic up to its end.
func allCommitted(t *testing.T, addr, group, topic string) bool {
	committed, end := offsets(t, addr, group, topic)
	for p, e := range end {
		if e > 0 && committed[p] != e {
			return false
		}
	}
	return true
}

func noneCommitted(t *testing.T, addr, group, topic string) bool {
	committed, _ := offsets(t, addr, group, topic)
	for _, c := range committed {
		if c >= 0 {
			return false
		}
	}
	return true
}

// readTopic reads n messages from every partition of topic, from the start, with a throwaway group.
func readTopic(t *testing.T, addr, topic string, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: unique(t, "reader"), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	var got []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(got), n, err)
		}
		got = append(got, m)
	}
	return got
}

// readAt reads the message at topic/partition/offset.
func readAt(t *testing.T, addr, topic string, partition int, offset int64) kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := conn.ReadMessage(16 << 20)
	if err != nil {
		t.Fatalf("read %s/%d@%d: %v", topic, partition, offset, err)
	}
	return m
}

func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
