package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
)

// comparePeriodRows is compareRows for monthly rows, periods included.
func comparePeriodRows(got, want []indicator.PeriodRow) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "%d rows, want %d\n", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !g.PeriodStart.Equal(w.PeriodStart) || !g.PeriodEnd.Equal(w.PeriodEnd) {
			fmt.Fprintf(&b, "row %d: period (%s, %s], want (%s, %s]\n", i, g.PeriodStart, g.PeriodEnd, w.PeriodStart,
				w.PeriodEnd)
		}
		if d := rowDiff(g.Row, w.Row); d != "" {
			fmt.Fprintf(&b, "row %d, %s of %s: %s\n", i, w.PeriodStart.Format("2006-01"), w.ManagerID, d)
		}
	}
	return b.String()
}

func countRows(t *testing.T, s *Store, sql string) uint64 {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestSavedMonthsReadBackAsComputed: the months MonthlyIndicators computes on random histories, saved with
// SaveMonthly, read back from monthly_indicators exactly (nulls, periods and all), and only the months asked for.
func TestSavedMonthsReadBackAsComputed(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var all []event.Event
	for seed := range uint64(6) {
		all = append(all, namespace(scenario.Random(seed+700, asOf), seed)...)
	}
	from, to := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		insert(t, s, all)
		computed, err := s.MonthlyIndicators(ctx, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		nulls := 0
		for _, r := range computed {
			if r.TakeoverRate == nil || r.RepGrowth == nil {
				nulls++
			}
		}
		if len(computed) == 0 || nulls == 0 || nulls == len(computed) {
			t.Fatalf("%d rows, %d with a null: the scenarios do not exercise values and nulls", len(computed), nulls)
		}
		if err := s.SaveMonthly(ctx, computed); err != nil {
			t.Fatal(err)
		}
		got, err := s.SavedMonthly(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if diff := comparePeriodRows(got, computed); diff != "" {
			t.Fatalf("saved and computed months differ:\n%s", diff)
		}
		// Mid-month bounds: from's month is included, the month starting at or after to is not.
		got, err = s.SavedMonthly(ctx, time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0,
			time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		var want []indicator.PeriodRow
		for _, r := range computed {
			if r.PeriodStart.Month() == time.January || r.PeriodStart.Month() == time.February {
				want = append(want, r)
			}
		}
		if diff := comparePeriodRows(got, want); diff != "" {
			t.Fatalf("January and February:\n%s", diff)
		}
		t.Logf("%d manager-months compared", len(computed))
	})
}

// TestSavingAMonthAgainReplacesIt: late events change March; March recomputed and saved again replaces the earlier
// rows. Under FINAL, the manager still in March has one row, with the new figures; a manager whom the late events
// took out of March (their only rep moved to another manager before March) keeps a stale row in the table, which
// SavedMonthly leaves out because it is not of the month's latest computation.
func TestSavingAMonthAgainReplacesIt(t *testing.T) {
	at := func(v string) time.Time {
		ts, err := time.Parse("2006-01-02 15:04", v)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	n := 0
	ev := func(typ, ts string, d event.Data) event.Event {
		n++
		return event.Event{Source: "crm/test", ID: fmt.Sprintf("e%d", n), Type: typ, Time: at(ts), Data: d}
	}
	amount := 100.0
	early := []event.Event{
		ev(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "A", Name: "Ada"}),
		ev(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "B", Name: "Bob"}),
		ev(event.UserManagerChanged, "2026-01-01 00:00", event.Data{UserID: "R", ManagerID: event.Ptr("A")}),
		ev(event.UserManagerChanged, "2026-01-01 00:00", event.Data{UserID: "S", ManagerID: event.Ptr("B")}),
		ev(event.DealCreated, "2026-03-02 09:00", event.Data{DealID: "D-1", OwnerID: "R", Amount: &amount}),
		ev(event.DealClosed, "2026-03-10 09:00", event.Data{DealID: "D-1", Outcome: event.OutcomeWon}),
	}
	late := []event.Event{
		// Ada took D-1 over before it closed, and S moved to Ada on the first day of the year.
		ev(event.DealOwnerChanged, "2026-03-05 09:00", event.Data{DealID: "D-1", OwnerID: "A", PreviousOwnerID: "R"}),
		ev(event.UserManagerChanged, "2026-01-01 00:30", event.Data{UserID: "S", ManagerID: event.Ptr("A")}),
	}
	march, april := at("2026-03-01 00:00"), at("2026-04-01 00:00")
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		save := func() []indicator.PeriodRow {
			t.Helper()
			rows, err := s.MonthlyIndicators(ctx, march, april, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SaveMonthly(ctx, rows); err != nil {
				t.Fatal(err)
			}
			return rows
		}
		insert(t, s, early)
		first := save()
		if got := show(periodRows(first)); fmt.Sprint(got) != "[{A won=1 closed=1 mcs=0 tr=0 tk=0 cov=0 g=null team=1} "+
			"{B won=0 closed=0 mcs=null tr=null tk=0 cov=0 g=null team=1}]" {
			t.Fatalf("March before the late events: %v", got)
		}
		insert(t, s, late)
		second := save()
		if got := show(periodRows(second)); fmt.Sprint(got) != "[{A won=1 closed=1 mcs=1 tr=1 tk=1 cov=0 g=null team=2}]" {
			t.Fatalf("March after the late events: %v", got)
		}
		got, err := s.SavedMonthly(ctx, march, april)
		if err != nil {
			t.Fatal(err)
		}
		if diff := comparePeriodRows(got, second); diff != "" {
			t.Fatalf("SavedMonthly after the recomputation:\n%s", diff)
		}
		if n := countRows(t, s, "SELECT count() FROM monthly_indicators FINAL WHERE manager_id = 'A'"); n != 1 {
			t.Errorf("%d rows of A under FINAL, want 1", n)
		}
		if n := countRows(t, s, "SELECT count() FROM monthly_indicators FINAL WHERE manager_id = 'B'"); n != 1 {
			t.Errorf("%d rows of B under FINAL, want its stale one (which SavedMonthly must skip)", n)
		}
		if n := countRows(t, s, "SELECT count() FROM monthly_indicators FINAL WHERE manager_id = 'A' "+
			"AND takeover_rate = 1 AND team_reps = 2"); n != 1 {
			t.Errorf("A's row under FINAL is not the recomputed one")
		}
	})
}

func periodRows(rows []indicator.PeriodRow) []indicator.Row {
	out := make([]indicator.Row, len(rows))
	for i, r := range rows {
		out[i] = r.Row
	}
	return out
}
