package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/simulate"
)

// scaleOrg is the large org of the scale benchmarks: `leadthrough simulate --managers 60 --reps-per-manager 15
// --deals-per-rep-per-month 30 --days N` (1,100 days: about 989k deals and 7.4M events).
func scaleOrg(days int) simulate.Config {
	return simulate.Config{Seed: 7, End: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), Days: days, Managers: 60,
		RepsPerManager: 15, DealsPerRepPerMonth: 30}
}

// scaleStore opens the database holding cfg's events, loading it first when it is not complete yet. Loading the
// largest org takes minutes, so the database is kept between runs (named after the config) and reused once its
// marker table says the load finished; `DROP DATABASE` it to reload.
func scaleStore(b *testing.B, e testenv.Engine, cfg simulate.Config) (*Store, uint64) {
	b.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("lt_bench_s%d_m%d_r%d_d%g_days%d", cfg.Seed, cfg.Managers, cfg.RepsPerManager,
		cfg.DealsPerRepPerMonth, cfg.Days)
	conf := Config{Addr: e.Addr, Protocol: e.Protocol, Database: name}
	if err := CreateDatabase(ctx, conf); err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, conf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		b.Fatal(err)
	}
	if err := s.conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_loaded (events UInt64) ENGINE = TinyLog"); err != nil {
		b.Fatal(err)
	}
	var loaded uint64
	if err := s.conn.QueryRow(ctx, "SELECT toUInt64(sum(events)) FROM bench_loaded").Scan(&loaded); err != nil {
		b.Fatal(err)
	}
	if loaded > 0 {
		return s, loaded
	}
	start := time.Now()
	const batchSize = 100_000
	batch := make([]Stored, 0, batchSize)
	var n uint64
	flush := func() error {
		if err := s.InsertEvents(ctx, batch); err != nil {
			return err
		}
		n += uint64(len(batch))
		batch = batch[:0]
		return nil
	}
	_, err = simulate.Stream(ctx, cfg, func(e event.Event) error {
		batch = append(batch, Stored{Event: e, Topic: "bench"})
		if len(batch) == batchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	batchMarker, err := s.conn.PrepareBatch(ctx, "INSERT INTO bench_loaded (events)")
	if err != nil {
		b.Fatal(err)
	}
	if err := batchMarker.Append(n); err != nil {
		b.Fatal(err)
	}
	if err := batchMarker.Send(); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events into %s in %s", n, name, time.Since(start).Round(time.Second))
	return s, n
}

// peakMemory is the largest memory_usage of the queries ClickHouse logged (with log_queries=1) since start.
// Benchmarks run alone on their server, so these are the benchmark's own queries.
func (s *Store) peakMemory(ctx context.Context, start time.Time) (uint64, error) {
	if err := s.conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		return 0, err
	}
	var peak uint64
	err := s.conn.QueryRow(ctx, `SELECT toUInt64(max(memory_usage)) FROM system.query_log
		WHERE event_time >= toDateTime(@start) AND toInt8(type) = 2 AND query NOT LIKE '%query_log%'`,
		clickhouse.Named("start", start.Unix())).Scan(&peak)
	return peak, err
}

// BenchmarkIndicatorsAtScale computes the indicators of one 30-day window, and one `serve` refresh (indicators +
// team_indicators), over the large simulated org at three history lengths: 110 days (~99k deals), 1,100 days
// (~989k deals) and 2,200 days (~2M deals). Windows end in the middle of the history (mid) and at its end (end).
// Reported: seconds per op, the peak memory of any one query (system.query_log; chdb has none), and x_baseline, the
// time over one CountEvents (the distinct events of the three tables they are stored in) on the same data in the
// same run. The work should follow the
// window, not the history: compare days=1100 with days=2200. On ClickHouse 26.9 (chdb, through the test bridge) only
// the 110-day history runs: loading millions of events through the bridge takes too long.
func BenchmarkIndicatorsAtScale(b *testing.B) {
	for _, e := range testenv.ClickHouseEngines(b) {
		for _, days := range []int{110, 1100, 2200} {
			if e.Protocol == ProtocolHTTP && days > 110 {
				continue
			}
			cfg := scaleOrg(days)
			for _, at := range []string{"mid", "end"} {
				asOf := cfg.End
				if at == "mid" {
					asOf = cfg.End.Add(-time.Duration(days/2) * 24 * time.Hour)
				}
				p := indicator.Params{AsOf: asOf, Window: 30 * 24 * time.Hour}
				b.Run(fmt.Sprintf("%s/days=%d/window=%s", e.Name, days, at), func(b *testing.B) {
					benchmarkWindow(b, e, cfg, p)
				})
			}
		}
	}
}

func benchmarkWindow(b *testing.B, e testenv.Engine, cfg simulate.Config, p indicator.Params) {
	s, events := scaleStore(b, e, cfg)
	ctx := context.Background()
	baseline := perOp(func() {
		if _, err := s.CountEvents(ctx); err != nil {
			b.Fatal(err)
		}
	})
	for _, op := range []string{"indicators", "refresh"} {
		b.Run(op, func(b *testing.B) {
			began := time.Now().Truncate(time.Second)
			qctx := ctx
			if e.Protocol == ProtocolNative {
				qctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
			}
			var deals uint64
			b.ResetTimer()
			for range b.N {
				run, err := s.Attribute(qctx, p)
				if err != nil {
					b.Fatal(err)
				}
				rows, err := s.RunIndicators(qctx, run)
				if err != nil {
					b.Fatal(err)
				}
				if op == "refresh" {
					if err := s.SaveIndicators(qctx, p, rows); err != nil {
						b.Fatal(err)
					}
				}
				deals = run.Deals
			}
			b.StopTimer()
			if e.Protocol == ProtocolNative {
				peak, err := s.peakMemory(ctx, began)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak_MiB")
			}
			b.ReportMetric(float64(events), "events")
			b.ReportMetric(float64(deals), "window_deals")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(baseline.Nanoseconds()), "x_baseline")
		})
	}
}
