package chsink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/publish"
	"github.com/leadthrough/leadthrough/simulate"
	"github.com/leadthrough/leadthrough/store"
)

// BenchmarkPipeline measures the whole ingest path on the real services: a consumer group reads simulated canonical
// events from Apache Kafka, decodes and validates them, inserts them into ClickHouse in batches and commits. Baseline,
// measured in the same run on the same topic: a bare kafka-go consumer group that only reads the messages. The
// reported x_baseline is the pipeline's time over the bare read's; events/s is the pipeline's throughput.
func BenchmarkPipeline(b *testing.B) {
	kafkaAddr, chAddr := testenv.Kafka(b), testenv.ClickHouse(b)
	ctx := context.Background()
	evs, err := simulate.Generate(simulate.Config{Seed: 11, End: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC),
		Managers: 50, RepsPerManager: 8})
	if err != nil {
		b.Fatal(err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	topic := "bench.pipeline." + suffix
	if err := publish.Events(ctx, publish.Config{Brokers: []string{kafkaAddr}, Topic: topic}, evs); err != nil {
		b.Fatal(err)
	}
	readAll := func(group string) time.Duration {
		start := time.Now()
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, GroupID: group, GroupTopics: []string{topic},
			StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		for range evs {
			if _, err := r.FetchMessage(ctx); err != nil { // no commit: a bare read
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	baseline := readAll("bench-raw-" + suffix)

	var total time.Duration
	for i := range b.N {
		db := fmt.Sprintf("lt_bench_%s_%d", suffix, i)
		cfg := store.Config{Addr: chAddr, Database: db}
		if err := store.CreateDatabase(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		s, err := store.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- ingest.Run(runCtx, ingest.Config{Brokers: []string{kafkaAddr}, GroupID: "bench-" + db,
				Topics: []ingest.Topic{{Name: topic}}, FlushInterval: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, chsink.New(s))
		}()
		for {
			n, err := s.CountEvents(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if int(n) >= len(evs) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		total += time.Since(start)
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = s.DropDatabase(ctx, db)
		s.Close()
	}
	b.ReportMetric(float64(len(evs)), "events")
	b.ReportMetric(float64(len(evs)*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(total)/float64(b.N)/float64(baseline), "x_baseline")
}
