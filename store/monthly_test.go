package store

import (
	"context"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
)

// TestMonthlyIndicatorsMatchTheReferenceModelPerCalendarMonth: with --period month, each calendar month is the
// window (start of M, start of M+1] and rep_growth compares it with the previous calendar month, whatever the
// lengths of the two months. On random histories spanning several months (28-, 30- and 31-day months among them),
// every month's rows equal the reference model's for MonthParams.
func TestMonthlyIndicatorsMatchTheReferenceModelPerCalendarMonth(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	seeds := 60
	if testing.Short() {
		seeds = 6
	}
	var all []event.Event
	scenarios := make([][]event.Event, seeds)
	for seed := range scenarios {
		scenarios[seed] = namespace(scenario.Random(uint64(seed)+500, asOf), uint64(seed))
		all = append(all, scenarios[seed]...)
	}
	from, to := time.Date(2025, 12, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	months := indicator.Months(from, to)
	if len(months) != 4 || !months[0].Equal(time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("months of [%s, %s): %v, want December to March", from, to, months)
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, all)
		got, err := s.MonthlyIndicators(context.Background(), from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		byMonth := map[time.Time][]indicator.Row{}
		for _, r := range got {
			if !r.PeriodEnd.Equal(r.PeriodStart.AddDate(0, 1, 0)) || r.PeriodStart.Day() != 1 {
				t.Fatalf("period (%s, %s] is not a calendar month", r.PeriodStart, r.PeriodEnd)
			}
			byMonth[r.PeriodStart] = append(byMonth[r.PeriodStart], r.Row)
		}
		compared, growth := 0, 0
		for _, m := range months {
			p := indicator.MonthParams(m, nil)
			for seed, evs := range scenarios {
				want := indicator.Reference(evs, p)
				compared += len(want)
				for _, r := range want {
					if r.RepGrowth != nil {
						growth++
					}
				}
				if diff := compareRows(filterPrefix(byMonth[m], prefix(uint64(seed))), want); diff != "" {
					t.Fatalf("seed %d, month %s: SQL and reference differ:\n%s", seed+500, m.Format("2006-01"), diff)
				}
			}
		}
		if compared == 0 || growth == 0 {
			t.Fatalf("%d manager rows, %d with rep_growth: the scenarios do not exercise monthly windows", compared,
				growth)
		}
	})
}
