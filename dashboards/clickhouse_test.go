package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/leadthrough/leadthrough/dashboards"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// The panels with a ClickHouse query, each run on real servers by a test of this file. A panel missing here fails
// TestEveryClickHouseQueryIsTested: a new query must come with a test that runs it.
const (
	closedDealsPanel    = "Closed deals of the team (latest refresh)"
	historyPanel        = "Indicator history (ClickHouse)"
	dealsHandedPanel    = "Deals handed to the manager"
	takenOverPanel      = "Deals the manager took over (latest refresh)"
	takeoverTrendPanel  = "Takeover rate by month"
	closedShareTrend    = "Manager-closed share by month"
	coverageTrendPanel  = "Coaching coverage by month"
	repGrowthTrendPanel = "Rep growth by month"
)

var testedClickHousePanels = []string{closedDealsPanel, historyPanel, dealsHandedPanel, takenOverPanel,
	takeoverTrendPanel, closedShareTrend, coverageTrendPanel, repGrowthTrendPanel}

// The values Grafana gives the queries: serve's window (${window_seconds}, 30 days as by default) and the panel's
// interval ($__interval_s).
const (
	windowSeconds30d         = 30 * 24 * 3600
	dashboardIntervalSeconds = 60
)

func TestEveryClickHouseQueryIsTested(t *testing.T) {
	var got []string
	for title := range clickhouseSQL(t) {
		got = append(got, title)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(testedClickHousePanels))
	if !slices.Equal(got, want) {
		t.Fatalf("panels with a ClickHouse query: %q; the tests run %q", got, want)
	}
}

// TestDealsHandedToManagerRunsOnClickHouse runs the panel's SQL, as Grafana's ClickHouse plugin would after
// expanding its macros, on every ClickHouse engine with the real schema: it must parse on 18.16 and on a current
// release, and list the owner changes to the selected manager in the time range, deduplicated (a later copy of an
// event replaces an earlier one, whatever its time), with the previous owner's name and the deal's status.
func TestDealsHandedToManagerRunsOnClickHouse(t *testing.T) {
	sql := clickhouseSQL(t)[dealsHandedPanel]
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
		amount := 1000.0
		var evs []store.Stored
		n := 0
		add := func(typ string, ts time.Time, d event.Data) {
			n++
			evs = append(evs, store.Stored{Event: event.Event{Source: "crm/test", ID: fmt.Sprintf("e%d", n), Type: typ, Time: ts, Data: d}})
		}
		add("user.upserted", at(0), event.Data{UserID: "U-1", Name: "Ada Lovelace"})
		add("user.upserted", at(0), event.Data{UserID: "U-10", Name: "Rita Old"})
		add("user.upserted", at(1), event.Data{UserID: "U-10", Name: "Rita Rep"}) // the latest name wins
		add("deal.created", at(1), event.Data{DealID: "D-1", OwnerID: "U-10", Amount: &amount})
		add("deal.created", at(1), event.Data{DealID: "D-2", OwnerID: "U-10"})
		add("deal.owner_changed", at(2), event.Data{DealID: "D-1", OwnerID: "U-1", PreviousOwnerID: "U-10", ChangedBy: "U-1"})
		add("deal.owner_changed", at(3), event.Data{DealID: "D-2", OwnerID: "U-1", PreviousOwnerID: "U-10", ChangedBy: "U-1"})
		add("deal.closed", at(4), event.Data{DealID: "D-1", Outcome: "won", Amount: &amount})
		add("deal.owner_changed", at(3), event.Data{DealID: "D-3", OwnerID: "U-2", PreviousOwnerID: "U-11"}) // another manager
		add("deal.owner_changed", at(30), event.Data{DealID: "D-4", OwnerID: "U-1"})                         // after the range
		evs = append(evs, evs[5])                                                                            // a redelivery
		if err := s.InsertEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		// A later copy of D-2's handover, moved to another time: it replaces the first copy.
		moved := evs[6]
		moved.Event.Time = at(5)
		if err := s.InsertEvents(ctx, []store.Stored{moved}); err != nil {
			t.Fatal(err)
		}

		g := grafana{from: at(0), to: at(24), managerIDs: []string{"U-1"}}
		got := query(t, s.Conn(), g.expand(t, sql),
			[]string{"Changed at", "Deal", "New owner", "Previous owner", "Previous owner name", "Changed by", "Status now"},
			func(rows driver.Rows) (string, error) {
				var changedAt time.Time
				var deal, owner, prev, prevName, by, status string
				if err := rows.Scan(&changedAt, &deal, &owner, &prev, &prevName, &by, &status); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s %s %s<-%s(%s) by %s: %s", changedAt.UTC().Format("15:04"), deal, owner, prev,
					prevName, by, status), nil
			})
		want := []string{
			"14:00 D-2 U-1<-U-10(Rita Rep) by U-1: open",
			"11:00 D-1 U-1<-U-10(Rita Rep) by U-1: won",
		}
		compareRows(t, got, want)
	})
}

// TestClosedDealsOfTheTeamRunsOnClickHouse runs the drill-down's SQL on every engine against deal_attribution as
// the store writes it (several runs: older ones, one of another window length, a later one for a past as-of, and
// one whose window ends in the future, which the panel must skip): the deals closed in the window ending last among
// the runs of serve's window length whose team manager is selected, newest first, with closer and rep of record and
// their latest names, and whether and when the manager took them over.
func TestClosedDealsOfTheTeamRunsOnClickHouse(t *testing.T) {
	sql := clickhouseSQL(t)[closedDealsPanel]
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		f := newTeamFixture(t, s)
		g := grafana{from: f.asOf2.Add(-24 * time.Hour), to: f.asOf2, windowSeconds: windowSeconds30d,
			managerIDs: []string{"U-1"}}
		got := query(t, s.Conn(), g.expand(t, sql),
			[]string{"Closed at", "Deal", "Outcome", "Amount", "Closer", "Closer name", "Rep of record", "Rep name",
				"Taken over", "Taken over at"},
			func(rows driver.Rows) (string, error) {
				var closedAt time.Time
				var takenAt *time.Time
				var amount float64
				var deal, outcome, closer, closerName, rep, repName, taken string
				if err := rows.Scan(&closedAt, &deal, &outcome, &amount, &closer, &closerName, &rep, &repName, &taken,
					&takenAt); err != nil {
					return "", err
				}
				at := "-"
				if takenAt != nil {
					at = takenAt.UTC().Format(minute)
				}
				return fmt.Sprintf("%s %s %s %.0f closer %s(%s) rep %s(%s) taken %s at %s", closedAt.UTC().Format(minute),
					deal, outcome, amount, closer, closerName, rep, repName, taken, at), nil
			})
		// D-3 and D-7 closed in the latest 30-day run only; D-4 is the other manager's; D-5 closed in the previous
		// window; D-6 was taken over but is still open.
		want := []string{
			"2026-03-28 15:00 D-7 lost 400 closer U-1(Ada Lovelace) rep U-11(Rob Rep) taken yes at 2026-03-20 10:00",
			"2026-03-25 11:00 D-3 lost 200 closer U-10(Rita Rep) rep U-10(Rita Rep) taken no at -",
			"2026-03-06 16:30 D-2 won 5000 closer U-1(Ada Lovelace) rep U-11(Rob Rep) taken yes at 2026-03-04 10:00",
			"2026-03-05 15:00 D-1 won 1000 closer U-10(Rita Rep) rep U-10(Rita Rep) taken no at -",
		}
		compareRows(t, got, want)
	})
}

// TestIndicatorHistoryRunsOnClickHouse runs the history panel's SQL on every engine against team_indicators as the
// store writes it: one point per snapshot of serve's window length in the time range (a refresh stored twice is
// still one point), one series per manager, time first and ascending as the plugin's time series format needs, and the ratios
// as the store computed them from the events.
func TestIndicatorHistoryRunsOnClickHouse(t *testing.T) {
	sql := clickhouseSQL(t)[historyPanel]
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		f := newTeamFixture(t, s)
		// From after the first snapshot (10 March) to after the last one (31 March).
		g := grafana{from: f.asOf1.Add(-5 * 24 * time.Hour), to: f.asOf2.Add(time.Hour), windowSeconds: windowSeconds30d,
			intervalSeconds: dashboardIntervalSeconds, managerIDs: []string{"U-1", "U-2"}}
		expanded := g.expand(t, sql)
		rows, err := s.Conn().Query(context.Background(), expanded)
		if err != nil {
			t.Fatalf("dashboard SQL fails: %v\n%s", err, expanded)
		}
		var types []string
		for _, c := range rows.ColumnTypes() {
			types = append(types, c.Name()+" "+c.DatabaseTypeName())
		}
		rows.Close()
		// The plugin makes one series per value column and label set when time comes first, the labels are strings
		// and the values numbers.
		wantTypes := []string{"time DateTime", "manager_name String", "Takeover rate Nullable(Float64)",
			"Coaching coverage Nullable(Float64)"}
		if !slices.Equal(types, wantTypes) {
			t.Errorf("columns %q, want %q", types, wantTypes)
		}
		ratio := func(v *float64) string {
			if v == nil {
				return "null"
			}
			return fmt.Sprintf("%.3f", *v)
		}
		got := query(t, s.Conn(), expanded, []string{"time", "manager_name", "Takeover rate", "Coaching coverage"},
			func(rows driver.Rows) (string, error) {
				var at time.Time
				var name string
				var takeover, coverage *float64
				if err := rows.Scan(&at, &name, &takeover, &coverage); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s %s takeover %s coverage %s", at.UTC().Format(minute), name, ratio(takeover),
					ratio(coverage)), nil
			})
		// 20 March: Ada's closed deals D-1 and D-2, D-2 taken over; Rita coached, Rob not. 31 March: D-3 and D-7
		// (taken over) closed too, and Rob coached on 22 March. Grace: D-4 closed, not taken over; Sam never coached.
		want := []string{
			"2026-03-20 00:00 Ada Lovelace takeover 0.500 coverage 0.500",
			"2026-03-20 00:00 Grace Hopper takeover 0.000 coverage 0.000",
			"2026-03-31 00:00 Ada Lovelace takeover 0.500 coverage 1.000",
			"2026-03-31 00:00 Grace Hopper takeover 0.000 coverage 0.000",
		}
		compareRows(t, got, want)
	})
}

// TestTakenOverDealsRunsOnClickHouse runs the takeover drill-down's SQL on every engine against deal_attribution as
// the store writes it: of the latest run of serve's window length (not a later run of a past as-of, not a run whose
// window ends in the future), the deals closed in the window that their team manager, a selected one, took over
// before the close, latest takeover first, with the manager's and the rep of record's latest names. A deal taken
// over and still open (D-6) is not one of them.
func TestTakenOverDealsRunsOnClickHouse(t *testing.T) {
	sql := clickhouseSQL(t)[takenOverPanel]
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		f := newTeamFixture(t, s)
		g := grafana{from: f.asOf2.Add(-24 * time.Hour), to: f.asOf2, windowSeconds: windowSeconds30d,
			managerIDs: []string{"U-1", "U-2"}}
		got := query(t, s.Conn(), g.expand(t, sql),
			[]string{"Taken over at", "Deal", "Manager", "Rep of record", "Rep name", "Outcome", "Amount", "Closed at"},
			func(rows driver.Rows) (string, error) {
				var takenAt, closedAt time.Time
				var amount float64
				var deal, manager, rep, repName, outcome string
				if err := rows.Scan(&takenAt, &deal, &manager, &rep, &repName, &outcome, &amount, &closedAt); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s %s by %s from %s(%s): %s %.0f at %s", takenAt.UTC().Format(minute), deal, manager,
					rep, repName, outcome, amount, closedAt.UTC().Format(minute)), nil
			})
		want := []string{
			"2026-03-20 10:00 D-7 by Ada Lovelace from U-11(Rob Rep): lost 400 at 2026-03-28 15:00",
			"2026-03-04 10:00 D-2 by Ada Lovelace from U-11(Rob Rep): won 5000 at 2026-03-06 16:30",
		}
		compareRows(t, got, want)
	})
}

// TestMonthlyTrendsRunOnClickHouse runs the SQL of each trend panel on every engine against monthly_indicators as
// the store writes it: one point per selected manager and calendar month in the time range, at the month's first
// day, time first and ascending with the manager's name as the label, as the plugin's time series need; March's
// recomputation counts once, and a manager only an earlier computation of March had (U-3) is not drawn.
func TestMonthlyTrendsRunOnClickHouse(t *testing.T) {
	sqls := clickhouseSQL(t)
	// February: Rita won D-5 herself; nobody coached. March: of Ada's four closed deals she took two over (D-2,
	// D-7) and closed one of the two won ones (D-2), and coached both reps; Rita's self-closed won amount went from
	// 300 to 1000. Grace: no deal in February, D-4 won by Sam in March; never coached.
	tests := []struct {
		panel, column string
		want          []string
	}{
		{takeoverTrendPanel, "Takeover rate", []string{
			"2026-02-01 Ada Lovelace 0.000", "2026-02-01 Grace Hopper null",
			"2026-03-01 Ada Lovelace 0.500", "2026-03-01 Grace Hopper 0.000"}},
		{closedShareTrend, "Manager-closed share", []string{
			"2026-02-01 Ada Lovelace 0.000", "2026-02-01 Grace Hopper null",
			"2026-03-01 Ada Lovelace 0.500", "2026-03-01 Grace Hopper 0.000"}},
		{coverageTrendPanel, "Coaching coverage", []string{
			"2026-02-01 Ada Lovelace 0.000", "2026-02-01 Grace Hopper 0.000",
			"2026-03-01 Ada Lovelace 1.000", "2026-03-01 Grace Hopper 0.000"}},
		{repGrowthTrendPanel, "Rep growth", []string{
			"2026-02-01 Ada Lovelace null", "2026-02-01 Grace Hopper null",
			"2026-03-01 Ada Lovelace 2.333", "2026-03-01 Grace Hopper null"}},
	}
	forEachEngine(t, func(t *testing.T, s *store.Store) {
		newTeamFixture(t, s)
		// The panels show the last year; this range holds February and March 2026.
		g := grafana{from: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), to: time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC),
			managerIDs: []string{"U-1", "U-2", "U-3"}}
		for _, tt := range tests {
			t.Run(tt.column, func(t *testing.T) {
				expanded := g.expand(t, sqls[tt.panel])
				rows, err := s.Conn().Query(context.Background(), expanded)
				if err != nil {
					t.Fatalf("dashboard SQL fails: %v\n%s", err, expanded)
				}
				var types []string
				for _, c := range rows.ColumnTypes() {
					types = append(types, c.Name()+" "+c.DatabaseTypeName())
				}
				rows.Close()
				wantTypes := []string{"time DateTime", "manager_name String", tt.column + " Nullable(Float64)"}
				if !slices.Equal(types, wantTypes) {
					t.Errorf("columns %q, want %q", types, wantTypes)
				}
				got := query(t, s.Conn(), expanded, []string{"time", "manager_name", tt.column},
					func(rows driver.Rows) (string, error) {
						var at time.Time
						var name string
						var v *float64
						if err := rows.Scan(&at, &name, &v); err != nil {
							return "", err
						}
						value := "null"
						if v != nil {
							value = fmt.Sprintf("%.3f", *v)
						}
						return fmt.Sprintf("%s %s %s", at.UTC().Format(time.DateOnly), name, value), nil
					})
				compareRows(t, got, tt.want)
			})
		}
	})
}

const minute = "2006-01-02 15:04"

// teamFixture is a migrated database with two managers' teams and deals, and the indicator runs and snapshots that
// `leadthrough serve` would have stored: 30-day windows ending 10, 20 and 31 March 2026 (each attributed into
// deal_attribution and saved to team_indicators, the last one saved twice like a repeated refresh), then a 7-day
// window ending 31 March, then a 30-day one ending 15 March; and the calendar months February and March 2026 in
// monthly_indicators.
type teamFixture struct {
	asOf1, asOf2 time.Time
}

func newTeamFixture(t *testing.T, s *store.Store) teamFixture {
	t.Helper()
	ctx := context.Background()
	at := func(v string) time.Time {
		ts, err := time.Parse(minute, v)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	var evs []store.Stored
	add := func(typ, ts string, d event.Data) {
		evs = append(evs, store.Stored{Event: event.Event{Source: "crm/test", ID: fmt.Sprintf("e%d", len(evs)+1),
			Type: typ, Time: at(ts), Data: d}})
	}
	amount := func(v float64) *float64 { return &v }
	// Ada (U-1) manages Rita (U-10) and Rob (U-11); Grace (U-2) manages Sam (U-20).
	add(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "U-1", Name: "Ada Lovelace"})
	add(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "U-2", Name: "Grace Hopper"})
	add(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "U-10", Name: "Rita Old"})
	add(event.UserUpserted, "2026-02-01 00:00", event.Data{UserID: "U-10", Name: "Rita Rep"}) // the latest name wins
	add(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "U-11", Name: "Rob Rep"})
	add(event.UserUpserted, "2026-01-01 00:00", event.Data{UserID: "U-20", Name: "Sam Rep"})
	add(event.UserManagerChanged, "2026-01-01 01:00", event.Data{UserID: "U-10", ManagerID: event.Ptr("U-1")})
	add(event.UserManagerChanged, "2026-01-01 01:00", event.Data{UserID: "U-11", ManagerID: event.Ptr("U-1")})
	add(event.UserManagerChanged, "2026-01-01 01:00", event.Data{UserID: "U-20", ManagerID: event.Ptr("U-2")})
	// D-5: Rita's, won in February (the previous window of the March runs).
	add(event.DealCreated, "2026-02-05 09:00", event.Data{DealID: "D-5", OwnerID: "U-10", Amount: amount(300)})
	add(event.DealClosed, "2026-02-10 09:00", event.Data{DealID: "D-5", Outcome: event.OutcomeWon})
	// D-1: Rita's, won by Rita.
	add(event.DealCreated, "2026-03-02 09:00", event.Data{DealID: "D-1", OwnerID: "U-10", Amount: amount(1000)})
	add(event.DealClosed, "2026-03-05 15:00", event.Data{DealID: "D-1", Outcome: event.OutcomeWon, Amount: amount(1000)})
	// D-2: Rob's, taken over by Ada, who wins it.
	add(event.DealCreated, "2026-03-02 10:00", event.Data{DealID: "D-2", OwnerID: "U-11", Amount: amount(5000)})
	add(event.DealOwnerChanged, "2026-03-04 10:00", event.Data{DealID: "D-2", OwnerID: "U-1", PreviousOwnerID: "U-11",
		ChangedBy: "U-1"})
	add(event.DealClosed, "2026-03-06 16:30", event.Data{DealID: "D-2", Outcome: event.OutcomeWon, Amount: amount(5000)})
	// D-3: Rita's, lost on 25 March; its amount is the one known at the close.
	add(event.DealCreated, "2026-03-03 09:00", event.Data{DealID: "D-3", OwnerID: "U-10", Amount: amount(200)})
	add(event.DealClosed, "2026-03-25 11:00", event.Data{DealID: "D-3", Outcome: event.OutcomeLost})
	// D-4: Sam's, won: Grace's team.
	add(event.DealCreated, "2026-03-02 09:00", event.Data{DealID: "D-4", OwnerID: "U-20", Amount: amount(700)})
	add(event.DealClosed, "2026-03-08 12:00", event.Data{DealID: "D-4", Outcome: event.OutcomeWon, Amount: amount(700)})
	// D-6: Rob's, taken over by Ada, still open.
	add(event.DealCreated, "2026-03-10 09:00", event.Data{DealID: "D-6", OwnerID: "U-11", Amount: amount(900)})
	add(event.DealOwnerChanged, "2026-03-12 09:00", event.Data{DealID: "D-6", OwnerID: "U-1", PreviousOwnerID: "U-11",
		ChangedBy: "U-1"})
	// D-7: Rob's, taken over by Ada after the 20 March refresh, lost on 28 March.
	add(event.DealCreated, "2026-03-15 09:00", event.Data{DealID: "D-7", OwnerID: "U-11", Amount: amount(400)})
	add(event.DealOwnerChanged, "2026-03-20 10:00", event.Data{DealID: "D-7", OwnerID: "U-1", PreviousOwnerID: "U-11",
		ChangedBy: "U-1"})
	add(event.DealClosed, "2026-03-28 15:00", event.Data{DealID: "D-7", Outcome: event.OutcomeLost})
	// Ada coaches Rita on 10 March and Rob on 22 March.
	add(event.ActivityLogged, "2026-03-10 14:00", event.Data{ActivityID: "A-1", Kind: "one_on_one", ActorID: "U-1",
		SubjectUserIDs: []string{"U-10"}})
	add(event.ActivityLogged, "2026-03-22 14:00", event.Data{ActivityID: "A-2", Kind: "one_on_one", ActorID: "U-1",
		SubjectUserIDs: []string{"U-11"}})
	if err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}

	f := teamFixture{asOf1: at("2026-03-20 00:00"), asOf2: at("2026-03-31 00:00")}
	refresh := func(asOf time.Time, window time.Duration, saves int) {
		t.Helper()
		p := indicator.Params{AsOf: asOf, Window: window}
		rows, err := s.Indicators(ctx, p)
		if err != nil {
			t.Fatalf("indicators as of %s: %v", asOf, err)
		}
		for range saves {
			if err := s.SaveIndicators(ctx, p, rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	window := time.Duration(windowSeconds30d) * time.Second
	refresh(at("2026-03-10 00:00"), window, 1)
	refresh(f.asOf1, window, 1)
	refresh(f.asOf2, window, 2)
	refresh(f.asOf2, 7*24*time.Hour, 1)
	// A later `leadthrough indicators --as-of <past>`: the newest run, but not the window serve shows.
	refresh(at("2026-03-15 00:00"), window, 0)
	// A run of serve's window length whose window ends in the future: the latest by as_of, but not what serve shows
	// now. serve's monthly refresh leaves one for the month under way when it has 30 days, as serve's window.
	if err := s.Conn().Exec(ctx, `INSERT INTO deal_attribution (run_id, as_of, window_seconds, computed_at, deal_id,
		closed, in_window, close_time, close_ms, won, amount, closer_id, rep_id, manager_id, taken_over, taken_over_ms,
		takeover_ms, takeover_managers)
		SELECT toUInt64(1), now() + 86400, toUInt32(2592000), now(), 'D-FUTURE', 1, 1, now(), toInt64(0), 1, 1.,
		       'U-1', 'U-10', 'U-1', 1, toInt64(0), emptyArrayInt64(), emptyArrayString()`); err != nil {
		t.Fatal(err)
	}

	// The calendar months serve keeps in monthly_indicators: first a row of a manager that a later computation of
	// March no longer finds, then February and March, then March recomputed.
	march, april := at("2026-03-01 00:00"), at("2026-04-01 00:00")
	stale := indicator.Row{ManagerID: "U-3", ManagerName: "Stale Manager", TakeoverRate: amount(0.9),
		ManagerClosedShare: amount(0.9), CoachingCoverage: amount(0.1), RepGrowth: amount(-0.5)}
	if err := s.SaveMonthly(ctx, []indicator.PeriodRow{{PeriodStart: march, PeriodEnd: april, Row: stale}}); err != nil {
		t.Fatal(err)
	}
	for _, from := range []time.Time{at("2026-02-01 00:00"), march} {
		months, err := s.MonthlyIndicators(ctx, from, april, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveMonthly(ctx, months); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// forEachEngine runs fn once per ClickHouse engine (testenv.ClickHouseEngines: the 18.16 server, and ClickHouse
// 26.9 in chdb over HTTP), as a subtest named after the engine, each on a fresh migrated database.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := store.Config{Addr: e.Addr, Protocol: e.Protocol,
				Database: fmt.Sprintf("lt_test_dashboards_%d", time.Now().UnixNano()%1_000_000_000)}
			if err := store.CreateDatabase(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = s.DropDatabase(context.Background(), cfg.Database)
				s.Close()
			})
			if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

// query runs expanded SQL, checks the names of its columns (what the panel shows) and formats each row with row.
func query(t *testing.T, conn driver.Conn, sql string, columns []string, row func(driver.Rows) (string, error)) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("dashboard SQL fails: %v\n%s", err, sql)
	}
	defer rows.Close()
	if got := rows.Columns(); !slices.Equal(got, columns) {
		t.Errorf("columns %q, want %q", got, columns)
	}
	var out []string
	for rows.Next() {
		s, err := row(rows)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func compareRows(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// clickhouseSQL is the raw SQL of every ClickHouse query of the dashboard, by panel title (one query per panel).
func clickhouseSQL(t *testing.T) map[string]string {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(render(t, dashboards.Files[0]), &d); err != nil {
		t.Fatal(err)
	}
	sqls := map[string]string{}
	walkPanels(d, func(where string, p map[string]any) {
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			if dig(tg, "datasource", "type") != "grafana-clickhouse-datasource" {
				continue
			}
			title, _ := p["title"].(string)
			if _, dup := sqls[title]; dup {
				t.Fatalf("%s has more than one ClickHouse query: the tests only know one per panel", where)
			}
			sqls[title], _ = dig(tg, "rawSql").(string)
		}
	})
	if len(sqls) == 0 {
		t.Fatal("found no ClickHouse queries: the test no longer understands the dashboard JSON")
	}
	return sqls
}

// grafana is what Grafana and the ClickHouse plugin put into a query before sending it: the time range and the
// interval of the panel, and the values of the dashboard's variables.
type grafana struct {
	from, to        time.Time
	intervalSeconds int      // $__interval_s
	windowSeconds   int      // ${window_seconds}
	managerIDs      []string // ${manager_id:singlequote}
}

var timeFilter = regexp.MustCompile(`\$__timeFilter\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)

// expand does what Grafana (variables) and the ClickHouse plugin (macros) do: $__timeFilter(column) becomes a
// DateTime range in whole seconds, $__interval_s the interval in seconds, ${window_seconds} a number and
// ${manager_id:singlequote} a quoted list. It fails on anything else that looks like a macro or a variable.
func (g grafana) expand(t *testing.T, sql string) string {
	t.Helper()
	quoted := make([]string, len(g.managerIDs))
	for i, id := range g.managerIDs {
		quoted[i] = "'" + id + "'"
	}
	sql = strings.ReplaceAll(sql, "${manager_id:singlequote}", strings.Join(quoted, ","))
	sql = timeFilter.ReplaceAllString(sql,
		fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", g.from.Unix(), g.to.Unix()))
	if strings.Contains(sql, "${window_seconds}") {
		if g.windowSeconds == 0 {
			t.Fatal("the query uses ${window_seconds}: give the test a window")
		}
		sql = strings.ReplaceAll(sql, "${window_seconds}", fmt.Sprint(g.windowSeconds))
	}
	if strings.Contains(sql, "$__interval_s") {
		if g.intervalSeconds == 0 {
			t.Fatal("the query uses $__interval_s: give the test an interval")
		}
		sql = strings.ReplaceAll(sql, "$__interval_s", fmt.Sprint(g.intervalSeconds))
	}
	if strings.Contains(sql, "$") {
		t.Fatalf("the test does not expand every macro or variable of the query:\n%s", sql)
	}
	return sql
}
