package ingest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
)

// BenchmarkProcessOverDecode measures the processor stage (decode, validate, append to the batch, track the
// offset, count) against bare event.Decode in the same run, and reports the ratio and the extra allocations.
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
	m := kafka.Message{Topic: DefaultTopic, Partition: 1, Value: value}
	process := func() {
		m.Offset++
		w.process(&m)
		if len(w.records) == cap(w.records) {
			w.records = w.records[:0]
		}
	}
	decode := func() {
		if _, err := event.Decode(value); err != nil {
			b.Fatal(err)
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
	b.ReportMetric(testing.AllocsPerRun(100, process)-testing.AllocsPerRun(100, decode), "extra-allocs/op")
}
