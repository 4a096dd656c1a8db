package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/ingest"
)

// orderSink records every batch it is given: which partition offsets, in which order, and how many value bytes.
type orderSink struct {
	mu      sync.Mutex
	batches [][]ingest.Record
}

func (s *orderSink) Write(_ context.Context, batch []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, append([]ingest.Record(nil), batch...))
	return nil
}

func (s *orderSink) snapshot() [][]ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]ingest.Record(nil), s.batches...)
}

// TestParallelDecodingKeepsEachPartitionsOrderAndBatchesStayWithinTheirBytes: with more decoding goroutines than
// cores and batches far smaller than the backlog, every partition's events reach the sink exactly once, in offset
// order, and no batch holds more message bytes than BatchBytes (unless it is one message).
func TestParallelDecodingKeepsEachPartitionsOrderAndBatchesStayWithinTheirBytes(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 3)
	const n = 3000
	msgs := goodEvents(t, 0, n)
	valueBytes := len(msgs[0].Value)
	produce(t, addr, topic, msgs...)

	cfg := config(t, addr, topic)
	cfg.DecodeWorkers = 7
	cfg.Writers = 1 // the sink records batches in the order it is called; with more writers it is not cut order
	cfg.BatchSize = 1000
	cfg.BatchBytes = 40 * valueBytes // a batch holds about 40 messages: many batches, cut mid-chunk
	sink := &orderSink{}
	stop := runWorker(t, cfg, sink)
	waitFor(t, 30*time.Second, "every message committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	last := map[int]int64{}
	seen := map[string]bool{}
	batches := sink.snapshot()
	for i, b := range batches {
		size := 0
		for _, r := range b {
			if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
				t.Fatalf("batch %d: partition %d offset %d after %d", i, r.Partition, r.Offset, prev)
			}
			last[r.Partition] = r.Offset
			seen[r.Event.ID] = true
			size += valueBytes + 8 // values differ in length by a few digits
		}
		if len(b) > 1 && size > cfg.BatchBytes+8*len(b)+valueBytes {
			t.Fatalf("batch %d holds %d events (about %d bytes), more than BatchBytes %d allows", i, len(b), size, cfg.BatchBytes)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events reached the sink, want %d", len(seen), n)
	}
	if len(batches) < n/50 {
		t.Fatalf("%d batches for %d messages of a %d-byte bound: batches are not cut by bytes", len(batches), n, cfg.BatchBytes)
	}
	t.Logf("%d batches", len(batches))
}

// TestQuietTopicsBatchGoesOutWithinFlushInterval: a single message is written and committed about FlushInterval
// after it arrives, though the batch is far from full, and with every stage idle around it.
func TestQuietTopicsBatchGoesOutWithinFlushInterval(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 1)
	cfg := config(t, addr, topic)
	cfg.FlushInterval = 200 * time.Millisecond
	sink := &orderSink{}
	stop := runWorker(t, cfg, sink)
	defer stop()
	for i := range 3 {
		produce(t, addr, topic, kafka.Message{Value: goodEvent(t, i).Value})
		waitFor(t, 10*time.Second, fmt.Sprintf("message %d written", i), func() bool {
			return len(sink.snapshot()) == i+1
		})
	}
}

// blockingSink holds back the write of the batch that holds offset 0 until release is closed.
type blockingSink struct {
	orderSink
	release chan struct{}
}

func (s *blockingSink) Write(ctx context.Context, batch []ingest.Record) error {
	if batch[0].Offset == 0 {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.orderSink.Write(ctx, batch)
}

// TestOffsetsAreCommittedInOrderWhileLaterBatchesAreWrittenFirst: with two writers, a later batch may be written
// before an earlier one that is still being written, but nothing is committed until the earlier one is written.
func TestOffsetsAreCommittedInOrderWhileLaterBatchesAreWrittenFirst(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 1)
	msgs := goodEvents(t, 0, 200)
	produce(t, addr, topic, msgs...)
	cfg := config(t, addr, topic)
	cfg.Writers = 2
	cfg.BatchBytes = 20 * len(msgs[0].Value)
	sink := &blockingSink{release: make(chan struct{})}
	stop := runWorker(t, cfg, sink)
	defer stop()
	waitFor(t, 30*time.Second, "a later batch written while the first is held", func() bool { return len(sink.snapshot()) > 0 })
	time.Sleep(300 * time.Millisecond) // time for a wrong commit to happen
	if !noneCommitted(t, addr, cfg.GroupID, topic) {
		t.Fatal("offsets were committed past a batch that is not written yet")
	}
	close(sink.release)
	waitFor(t, 30*time.Second, "every message committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	seen := map[string]bool{}
	for _, b := range sink.snapshot() {
		for _, r := range b {
			seen[r.Event.ID] = true
		}
	}
	if len(seen) != len(msgs) {
		t.Fatalf("%d distinct events written, want %d", len(seen), len(msgs))
	}
}
