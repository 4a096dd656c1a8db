package ingest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
)

// BenchmarkProcessOverDecode measures the processor stage on one chunk of messages (decode, validate, move into a
// batch, track the offsets) against bare event.Decode of the same messages in the same run, and reports the ratio
// and the extra allocations per message.
func BenchmarkProcessOverDecode(b *testing.B) {
	ev := event.Event{Source: "crm/bench", ID: "evt-1", Type: event.DealOwnerChanged, Time: time.Now(),
		Data: event.Data{DealID: "D-1001", OwnerID: "U-7", PreviousOwnerID: "U-42", ChangedBy: "U-7"}}
	value, err := event.Encode(ev)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := Config{Brokers: []string{"unused:9092"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	w := newWorker(cfg, nil, nil, nil, cfg.Logger)
	t := w.topicState(DefaultTopic)
	c := &chunk{topic: t}
	for i := range chunkSize {
		c.msgs = append(c.msgs, kafka.Message{Topic: DefaultTopic, Partition: 1, Offset: int64(i), Value: value})
	}
	bt := newBatch()
	process := func() { // one chunk: decode, validate, move into a batch, track offsets
		c.next = 0
		c.dead, c.deadLabels = c.dead[:0], c.deadLabels[:0]
		w.decodeChunk(c)
		w.fill(bt, c)
		c.release()
		bt.reset()
	}
	decode := func() {
		for range chunkSize {
			if _, err := event.Decode(value); err != nil {
				b.Fatal(err)
			}
		}
	}

	start := time.Now()
	for range b.N {
		decode()
	}
	base := time.Since(start)
	b.ResetTimer()
	for range b.N {
		process()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(base), "process/decode")
	b.ReportMetric((testing.AllocsPerRun(20, process)-testing.AllocsPerRun(20, decode))/chunkSize, "extra-allocs/msg")
}
