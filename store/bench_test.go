package store

import (
	"context"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/simulate"
)

// loadOrg fills a fresh database with a simulated org of the given size and returns the as-of to query.
func loadOrg(b *testing.B, managers int) (*Store, time.Time, int) {
	b.Helper()
	end := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	evs, err := simulate.Generate(simulate.Config{Seed: 7, End: end, Days: 90, Managers: managers, RepsPerManager: 8})
	if err != nil {
		b.Fatal(err)
	}
	s := newTestStore(b)
	batch := make([]Stored, len(evs))
	for i, e := range evs {
		batch[i] = Stored{Event: e}
	}
	for i := 0; i < len(batch); i += 50_000 {
		if err := s.InsertEvents(context.Background(), batch[i:min(i+50_000, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	return s, end, len(evs)
}

// BenchmarkIndicators computes every indicator for a 30-day window over a simulated org (90 days, 8 reps per
// manager). Baseline, measured in the same run on the same data: one CountEvents, the
// distinct events of the three tables they are stored in. The reported x_baseline is the indicator computation's
// time over one deduplicating scan of the events.
func BenchmarkIndicators(b *testing.B) {
	for _, managers := range []int{10, 100} {
		b.Run(map[int]string{10: "managers=10", 100: "managers=100"}[managers], func(b *testing.B) {
			s, end, n := loadOrg(b, managers)
			ctx := context.Background()
			baseline := perOp(func() {
				{
					if _, err := s.CountEvents(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ResetTimer()
			for range b.N {
				if _, err := s.Indicators(ctx, indicator.Params{AsOf: end}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n), "events")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(baseline.Nanoseconds()), "x_baseline")
		})
	}
}

// BenchmarkInsertEvents measures batch inserts of 10,000 simulated events; events/s is the throughput ClickHouse
// accepts from one writer.
func BenchmarkInsertEvents(b *testing.B) {
	evs, err := simulate.Generate(simulate.Config{Seed: 3, End: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), Managers: 10, RepsPerManager: 8})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Stored, 10_000)
	for i := range batch {
		batch[i] = Stored{Event: evs[i%len(evs)]}
	}
	s := newTestStore(b)
	b.ResetTimer()
	for range b.N {
		if err := s.InsertEvents(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(batch)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// perOp times f over enough runs to take about 200ms and returns the mean duration of one run. Benchmarks use it for
// a baseline measured in the same run (testing.Benchmark cannot be nested in a benchmark).
func perOp(f func()) time.Duration {
	n, start := 0, time.Now()
	for time.Since(start) < 200*time.Millisecond || n < 3 {
		f()
		n++
	}
	return time.Since(start) / time.Duration(n)
}
