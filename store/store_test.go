package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// forEachEngine runs fn once per ClickHouse engine (testenv.ClickHouseEngines: the 18.16 server, and ClickHouse
// 26.9 in chdb over HTTP), as a subtest named after the engine, each on a fresh migrated database.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) { fn(t, newEngineStore(t, e)) })
	}
}

// newTestStore creates a fresh, migrated database on the ClickHouse 18.16 test server and drops it when the test
// ends. Tests of the SQL use forEachEngine instead, to run on every engine.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return newEngineStore(t, testenv.Engine{Name: "clickhouse-18.16", Addr: testenv.ClickHouse(t), Protocol: ProtocolNative})
}

// newEngineStore creates a fresh, migrated database on the given engine and drops it when the test ends.
func newEngineStore(t testing.TB, e testenv.Engine) *Store {
	t.Helper()
	return newEngineStoreAt(t, e, math.MaxInt)
}

// newEngineStoreAt is newEngineStore with the migrations up to version last only: an older install.
func newEngineStoreAt(t testing.TB, e testenv.Engine, last int) *Store {
	t.Helper()
	ctx := context.Background()
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	suffix := fmt.Sprintf("_%d", time.Now().UnixNano()%1_000_000)
	if maxLen := 60 - len("lt_test_") - len(suffix); len(clean) > maxLen {
		clean = clean[len(clean)-maxLen:] // keep the end: the subtest's engine name
	}
	name := "lt_test_" + clean + suffix
	cfg := Config{Addr: e.Addr, Protocol: e.Protocol, Database: name}
	if err := CreateDatabase(ctx, cfg); err != nil {
		t.Fatalf("%s: %v", e.Name, err)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: %v", e.Name, err)
	}
	t.Cleanup(func() {
		_ = s.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`")
		s.Close()
	})
	if _, err := s.migrateTo(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), last); err != nil {
		t.Fatalf("%s: %v", e.Name, err)
	}
	return s
}

func insert(t testing.TB, s *Store, evs []event.Event) {
	t.Helper()
	batch := make([]Stored, len(evs))
	for i, e := range evs {
		batch[i] = Stored{Event: e, Topic: "test", Offset: int64(i)}
	}
	if err := s.InsertEvents(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateIsIdempotentAndRecordsVersions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		again, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("second migrate applied %d migrations, want none", len(again))
		}
		all, _ := Migrations()
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != all[len(all)-1].Version {
			t.Fatalf("schema version %d, want %d", v, all[len(all)-1].Version)
		}
	})
}

func TestDuplicateEventsAreStoredOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		e := event.Event{Source: "crm/a", ID: "1", Type: event.DealCreated, Time: time.Now().UTC(),
			Data: event.Data{DealID: "D1", OwnerID: "U1"}}
		insert(t, s, []event.Event{e, e})
		insert(t, s, []event.Event{e})
		other := e
		other.Source = "crm/b" // same id, other source: a different event
		insert(t, s, []event.Event{other})
		n, err := s.CountEvents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("stored %d distinct events, want 2", n)
		}
	})
}

// TestIndicatorsSQLMatchesReferenceModel is the main check of the ClickHouse queries: on random histories, for
// several as-of times and windows, every indicator equals the plain-Go reference model's.
func TestIndicatorsSQLMatchesReferenceModel(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	seeds := 200
	if testing.Short() {
		seeds = 8
	}
	params := []indicator.Params{
		{AsOf: asOf, Window: 30 * 24 * time.Hour},
		{AsOf: asOf.Add(-17*24*time.Hour + 3*time.Hour), Window: 10 * 24 * time.Hour},
		{AsOf: asOf.Add(5 * 24 * time.Hour), Window: 60 * 24 * time.Hour, CoachingKinds: []string{"one_on_one"}},
	}
	// Scenarios share one database: every entity id is prefixed with its seed, so they cannot interact.
	scenarios := make([][]event.Event, seeds)
	var all []event.Event
	for seed := range scenarios {
		scenarios[seed] = namespace(scenario.Random(uint64(seed)+1, asOf), uint64(seed))
		all = append(all, scenarios[seed]...)
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		insert(t, s, all)
		for _, p := range params {
			got, err := s.Indicators(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var exercised coverage
			for seed, evs := range scenarios {
				want := indicator.Reference(evs, p)
				exercised.add(want)
				if diff := compareRows(filterPrefix(got, prefix(uint64(seed))), want); diff != "" {
					t.Fatalf("seed %d, as of %s, window %s: SQL and reference differ:\n%s", seed+1, p.AsOf, p.Window, diff)
				}
			}
			if !testing.Short() {
				exercised.require(t, p)
			}
		}
	})
}

// coverage counts how many compared rows had a non-trivial value of each indicator, so that the comparison cannot
// pass on degenerate scenarios where everything is zero or null.
type coverage map[string]int

func (c *coverage) add(rows []indicator.Row) {
	if *c == nil {
		*c = coverage{}
	}
	positive := func(p *float64) bool { return p != nil && *p > 0 }
	for _, r := range rows {
		for name, ok := range map[string]bool{
			"closed_deals": r.ClosedDeals > 0, "manager_closed_share": positive(r.ManagerClosedShare),
			"takeover_rate": positive(r.TakeoverRate), "takeovers": r.Takeovers > 0,
			"coaching_coverage": positive(r.CoachingCoverage), "rep_growth": r.RepGrowth != nil,
			"team_reps": r.TeamReps > 0, "null takeover_rate": r.TakeoverRate == nil,
		} {
			if ok {
				(*c)[name]++
			}
		}
	}
}

func (c coverage) require(t *testing.T, p indicator.Params) {
	t.Helper()
	for _, name := range []string{"closed_deals", "manager_closed_share", "takeover_rate", "takeovers",
		"coaching_coverage", "rep_growth", "team_reps", "null takeover_rate"} {
		if c[name] < 2 {
			t.Errorf("as of %s, window %s: only %d rows with a non-trivial %s: the scenarios no longer exercise it",
				p.AsOf, p.Window, c[name], name)
		}
	}
}

func prefix(seed uint64) string { return fmt.Sprintf("s%d.", seed) }

// namespace prefixes every entity id with the scenario so several scenarios coexist in one database.
func namespace(evs []event.Event, seed uint64) []event.Event {
	p := prefix(seed)
	out := make([]event.Event, len(evs))
	for i, e := range evs {
		d := e.Data
		for _, s := range []*string{&d.UserID, &d.DealID, &d.OwnerID, &d.PreviousOwnerID, &d.ActivityID, &d.ActorID} {
			if *s != "" {
				*s = p + *s
			}
		}
		if d.ManagerID != nil {
			d.ManagerID = event.Ptr(p + *d.ManagerID)
		}
		subjects := make([]string, len(d.SubjectUserIDs))
		for j, u := range d.SubjectUserIDs {
			subjects[j] = p + u
		}
		if d.SubjectUserIDs != nil {
			d.SubjectUserIDs = subjects
		}
		e.Data = d
		e.ID = p + e.ID
		out[i] = e
	}
	return out
}

func filterPrefix(rows []indicator.Row, p string) []indicator.Row {
	var out []indicator.Row
	for _, r := range rows {
		if strings.HasPrefix(r.ManagerID, p) {
			out = append(out, r)
		}
	}
	return out
}

func compareRows(got, want []indicator.Row) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "%d rows, want %d\n", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if d := rowDiff(g, w); d != "" {
			fmt.Fprintf(&b, "manager %s: %s\n", w.ManagerID, d)
		}
	}
	if b.Len() > 0 {
		fmt.Fprintf(&b, "got:  %+v\nwant: %+v\n", show(got), show(want))
	}
	return b.String()
}

func rowDiff(g, w indicator.Row) string {
	var diffs []string
	eqInt := func(name string, a, b int64) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s %d, want %d", name, a, b))
		}
	}
	eqF := func(name string, a, b *float64) {
		switch {
		case a == nil && b == nil:
		case a == nil || b == nil:
			diffs = append(diffs, fmt.Sprintf("%s %v, want %v", name, fmtF(a), fmtF(b)))
		case math.Abs(*a-*b) > 1e-9*math.Max(1, math.Abs(*b)):
			diffs = append(diffs, fmt.Sprintf("%s %v, want %v", name, *a, *b))
		}
	}
	if g.ManagerID != w.ManagerID || g.ManagerName != w.ManagerName {
		diffs = append(diffs, fmt.Sprintf("manager %s %q, want %s %q", g.ManagerID, g.ManagerName, w.ManagerID, w.ManagerName))
	}
	eqInt("won_deals", g.WonDeals, w.WonDeals)
	eqInt("closed_deals", g.ClosedDeals, w.ClosedDeals)
	eqF("manager_closed_share", g.ManagerClosedShare, w.ManagerClosedShare)
	eqF("manager_closed_revenue_share", g.ManagerClosedRevenueShare, w.ManagerClosedRevenueShare)
	eqF("takeover_rate", g.TakeoverRate, w.TakeoverRate)
	eqInt("takeovers", g.Takeovers, w.Takeovers)
	eqF("coaching_coverage", g.CoachingCoverage, w.CoachingCoverage)
	eqInt("reps_coached", g.RepsCoached, w.RepsCoached)
	eqF("rep_growth", g.RepGrowth, w.RepGrowth)
	eqInt("team_reps", g.TeamReps, w.TeamReps)
	return strings.Join(diffs, "; ")
}

func fmtF(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func show(rows []indicator.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("{%s won=%d closed=%d mcs=%s tr=%s tk=%d cov=%s g=%s team=%d}", r.ManagerID, r.WonDeals,
			r.ClosedDeals, fmtF(r.ManagerClosedShare), fmtF(r.TakeoverRate), r.Takeovers, fmtF(r.CoachingCoverage),
			fmtF(r.RepGrowth), r.TeamReps)
	}
	return out
}

// TestDealAttributionAddsUpToIndicators: per manager, the attributed deals add up to the indicators' counts.
func TestDealAttributionAddsUpToIndicators(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var all []event.Event
	for seed := range uint64(30) {
		all = append(all, namespace(scenario.Random(seed+1, asOf), seed)...)
	}
	p := indicator.Params{AsOf: asOf}
	rows := indicator.Reference(all, p)
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, all)
		deals, err := s.DealAttribution(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		type counts struct{ won, closed, taken int64 }
		per := map[string]*counts{}
		for _, d := range deals {
			if d.ManagerID == "" {
				continue
			}
			if per[d.ManagerID] == nil {
				per[d.ManagerID] = &counts{}
			}
			c := per[d.ManagerID]
			c.closed++
			if d.Won {
				c.won++
			}
			if d.TakenOver {
				c.taken++
			}
		}
		if len(deals) == 0 || len(rows) == 0 {
			t.Fatal("no deals or managers: the scenarios are degenerate")
		}
		for _, r := range rows {
			c := per[r.ManagerID]
			if c == nil {
				c = &counts{}
			}
			if c.won != r.WonDeals || c.closed != r.ClosedDeals {
				t.Errorf("%s: attribution has won %d closed %d, indicators won %d closed %d", r.ManagerID, c.won, c.closed, r.WonDeals, r.ClosedDeals)
			}
			if r.TakeoverRate != nil && math.Abs(float64(c.taken)/float64(c.closed)-*r.TakeoverRate) > 1e-9 {
				t.Errorf("%s: attribution takeover share %d/%d, indicator %v", r.ManagerID, c.taken, c.closed, *r.TakeoverRate)
			}
		}
	})
}
