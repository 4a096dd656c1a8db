package simulate

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/leadthrough/leadthrough/event"
)

func TestStreamEmitsEventsInTimeOrderWithoutDeliveryExtras(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{End: testEnd}},
		{"one manager with one rep", Config{End: testEnd, Seed: 5, Managers: 1, RepsPerManager: 1}},
		{"large org, busy reps, 300 days", Config{End: testEnd, Seed: 9, Managers: 7, RepsPerManager: 8, DealsPerRepPerMonth: 12, Days: 300}},
		{"one day", Config{End: testEnd, Seed: 2, Days: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev event.Event
			n := 0
			stats, err := Stream(context.Background(), tt.cfg, func(e event.Event) error {
				if n > 0 && e.Time.Before(prev.Time) {
					t.Fatalf("event %d %s at %s comes after %s at %s", n, e.ID, e.Time, prev.ID, prev.Time)
				}
				prev = e
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 || stats != (Stats{Events: n}) {
				t.Fatalf("emitted %d events, stats %+v", n, stats)
			}
		})
	}
}

func TestStreamEmitsWhatGenerateReturns(t *testing.T) {
	cfg := Config{End: testEnd, Seed: 7, ShuffleRatio: 0.2, DuplicateRatio: 0.1}
	want := generate(t, cfg)
	var got []event.Event
	stats, err := Stream(context.Background(), cfg, func(e event.Event) error { got = append(got, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Stream emitted %d events that differ from Generate's %d", len(got), len(want))
	}
	base := generate(t, Config{End: testEnd, Seed: 7})
	if stats.Events != len(want) || stats.Distinct() != len(base) || stats.Duplicates != len(want)-len(base) ||
		stats.Late != int(math.Round(0.2*float64(len(base)))) {
		t.Fatalf("stats %+v for %d events, %d distinct", stats, len(want), len(base))
	}
}

func TestStreamStopsAtTheFirstEmitError(t *testing.T) {
	for _, cfg := range []Config{{End: testEnd}, {End: testEnd, ShuffleRatio: 0.3, DuplicateRatio: 0.3}} {
		stop := errors.New("stop")
		n := 0
		stats, err := Stream(context.Background(), cfg, func(event.Event) error {
			n++
			if n == 100 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 100 || stats.Events != 100 {
			t.Fatalf("%+v: Stream returned %v after %d calls (stats %+v), want the emit error after 100", cfg, err, n, stats)
		}
	}
}

func TestStreamStopsWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	_, err := Stream(ctx, Config{End: testEnd}, func(event.Event) error {
		if n++; n == 50 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 50 {
		t.Fatalf("Stream returned %v after %d events, want context.Canceled right after the 50th", err, n)
	}
	if _, err := Stream(ctx, Config{End: testEnd}, func(event.Event) error { t.Fatal("emitted after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream with a done context returned %v", err)
	}
}

func TestStreamRejectsAnInvalidConfigBeforeEmitting(t *testing.T) {
	_, err := Stream(context.Background(), Config{Days: -1}, func(event.Event) error { t.Fatal("emitted"); return nil })
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Stream returned %v, want ErrInvalidConfig", err)
	}
}
