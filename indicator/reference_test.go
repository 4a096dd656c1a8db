package indicator

// These tests pin the reference model to DESIGN.md ("Indicator definitions") and to the edge rules of
// docs/indicators.md. Each case is a tiny hand-built history; the expected rows are computed by hand in the comments,
// from the definitions, not from the model.
//
// Unless a case says otherwise: as_of = day 60 00:00 and W = 30 days (the default), so
//
//	window          (day 30 00:00, day 60 00:00]
//	previous window (day  0 00:00, day 30 00:00]
//
// and events get the ids e001, e002, … in the order they are listed (that order only matters for events at the same
// millisecond, which are ordered by (source, id)).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// day0 is "day 0 00:00".
var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at parses "day N hh:mm", "day N hh:mm:ss" or "day N hh:mm:ss.fff…" into a time after day0.
func at(s string) time.Time {
	var d int
	var clock string
	if _, err := fmt.Sscanf(s, "day %d %s", &d, &clock); err != nil {
		panic(fmt.Sprintf("bad time %q: %v", s, err))
	}
	layout := "15:04"
	if strings.Count(clock, ":") == 2 {
		layout = "15:04:05.999999999"
	}
	c, err := time.Parse(layout, clock)
	if err != nil {
		panic(fmt.Sprintf("bad time %q: %v", s, err))
	}
	sinceMidnight := time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute +
		time.Duration(c.Second())*time.Second + time.Duration(c.Nanosecond())
	return day0.AddDate(0, 0, d).Add(sinceMidnight)
}

// defaultParams is as_of = day 60 00:00 with the default window (30 days) and coaching kinds.
var defaultParams = Params{AsOf: at("day 60 00:00")}

const testSource = "crm/test"

func ev(typ string, t time.Time, d event.Data) event.Event {
	return event.Event{Source: testSource, Type: typ, Time: t, Data: d}
}

func named(t time.Time, user, name string) event.Event {
	return ev(event.UserUpserted, t, event.Data{UserID: user, Name: name})
}

func reportsTo(t time.Time, user, manager string) event.Event {
	return ev(event.UserManagerChanged, t, event.Data{UserID: user, ManagerID: event.Ptr(manager)})
}

// noManager is a user.manager_changed with manager_id null.
func noManager(t time.Time, user string) event.Event {
	return ev(event.UserManagerChanged, t, event.Data{UserID: user})
}

func deactivated(t time.Time, user string) event.Event {
	return ev(event.UserDeactivated, t, event.Data{UserID: user})
}

// optAmount turns an optional trailing amount argument into the event's optional amount.
func optAmount(amount []float64) *float64 {
	if len(amount) == 0 {
		return nil
	}
	return event.Ptr(amount[0])
}

func created(t time.Time, deal, owner string, amount ...float64) event.Event {
	return ev(event.DealCreated, t, event.Data{DealID: deal, OwnerID: owner, Amount: optAmount(amount)})
}

// ownerChanged carries previous_owner_id as a CRM would send it; it may be stale and must not matter.
func ownerChanged(t time.Time, deal, owner, previousOwnerID string) event.Event {
	return ev(event.DealOwnerChanged, t, event.Data{DealID: deal, OwnerID: owner, PreviousOwnerID: previousOwnerID})
}

func amountChanged(t time.Time, deal string, amount float64) event.Event {
	return ev(event.DealAmountChanged, t, event.Data{DealID: deal, Amount: event.Ptr(amount)})
}

func won(t time.Time, deal string, amount ...float64) event.Event {
	return ev(event.DealClosed, t, event.Data{DealID: deal, Outcome: event.OutcomeWon, Amount: optAmount(amount)})
}

func lost(t time.Time, deal string, amount ...float64) event.Event {
	return ev(event.DealClosed, t, event.Data{DealID: deal, Outcome: event.OutcomeLost, Amount: optAmount(amount)})
}

func reopened(t time.Time, deal string) event.Event {
	return ev(event.DealReopened, t, event.Data{DealID: deal})
}

func deleted(t time.Time, deal string) event.Event {
	return ev(event.DealDeleted, t, event.Data{DealID: deal})
}

func activity(t time.Time, kind, actor string, subjects ...string) event.Event {
	return ev(event.ActivityLogged, t, event.Data{Kind: kind, ActorID: actor, SubjectUserIDs: subjects})
}

// withID gives an event an explicit id (history keeps it), for duplicates and same-millisecond ties.
func withID(e event.Event, source, id string) event.Event {
	e.Source, e.ID = source, id
	return e
}

// history numbers the events without an id e001, e002, … in the order given, so a later argument sorts after an
// earlier one at the same millisecond.
func history(evs ...event.Event) []event.Event {
	out := slices.Clone(evs)
	for i := range out {
		if out[i].ID == "" {
			out[i].ID = fmt.Sprintf("e%03d", i+1)
		}
		if out[i].Type == event.ActivityLogged && out[i].Data.ActivityID == "" {
			out[i].Data.ActivityID = "act-" + out[i].ID
		}
	}
	return out
}

func f(v float64) *float64 { return &v }

// refCase is one hand-computed history. params zero means defaultParams.
type refCase struct {
	name   string
	params Params
	events []event.Event
	want   []Row
}

// runCases checks each case against the reference model, as a subtest named after it, and records it: TestMain
// (cases_test.go) keeps testdata/hand_cases.json equal to the recorded cases, and package store runs every one of
// them against the SQL on each ClickHouse engine.
func runCases(t *testing.T, cases []refCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.params
			if p.AsOf.IsZero() {
				p = defaultParams
			}
			recordCase(t.Name(), p, c.events, c.want) // for the SQL too: cases_test.go, store/handcases_test.go
			if diff := diffRows(Reference(c.events, p), c.want); diff != "" {
				t.Errorf("Reference differs from the hand-computed rows:\n%s", diff)
			}
		})
	}
}

// fieldsOf lists a row's indicators by their DESIGN.md names.
func fieldsOf(r Row) []struct {
	name string
	v    any
} {
	return []struct {
		name string
		v    any
	}{
		{"manager_name", r.ManagerName}, {"won_deals", r.WonDeals}, {"closed_deals", r.ClosedDeals},
		{"manager_closed_share", r.ManagerClosedShare}, {"manager_closed_revenue_share", r.ManagerClosedRevenueShare},
		{"takeover_rate", r.TakeoverRate}, {"takeovers", r.Takeovers}, {"coaching_coverage", r.CoachingCoverage},
		{"reps_coached", r.RepsCoached}, {"rep_growth", r.RepGrowth}, {"team_reps", r.TeamReps},
	}
}

func show(v any) string {
	if p, ok := v.(*float64); ok {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%v", v)
}

// sameValue compares indicator values; nullable ratios are equal when both are null or both are within 1e-9.
func sameValue(a, b any) bool {
	pa, ok := a.(*float64)
	if !ok {
		return a == b
	}
	pb := b.(*float64)
	if pa == nil || pb == nil {
		return pa == nil && pb == nil
	}
	return math.Abs(*pa-*pb) <= 1e-9
}

func showRow(r Row) string {
	var b strings.Builder
	b.WriteString(r.ManagerID)
	for _, fv := range fieldsOf(r) {
		fmt.Fprintf(&b, " %s=%s", fv.name, show(fv.v))
	}
	return b.String()
}

// diffRows describes every difference between got and want, row by row (rows matched by manager_id), or "".
func diffRows(got, want []Row) string {
	var out []string
	if !slices.IsSortedFunc(got, func(a, b Row) int { return strings.Compare(a.ManagerID, b.ManagerID) }) {
		out = append(out, "rows are not ordered by manager_id")
	}
	byID := map[string]Row{}
	for _, r := range got {
		byID[r.ManagerID] = r
	}
	for _, w := range want {
		g, ok := byID[w.ManagerID]
		if !ok {
			out = append(out, fmt.Sprintf("missing row: %s", showRow(w)))
			continue
		}
		delete(byID, w.ManagerID)
		gf, wf := fieldsOf(g), fieldsOf(w)
		for i := range gf {
			if !sameValue(gf[i].v, wf[i].v) {
				out = append(out, fmt.Sprintf("manager %s: %s = %s, want %s", w.ManagerID, gf[i].name, show(gf[i].v),
					show(wf[i].v)))
			}
		}
	}
	for _, r := range got {
		if _, extra := byID[r.ManagerID]; extra {
			out = append(out, fmt.Sprintf("unexpected row: %s", showRow(r)))
		}
	}
	return strings.Join(out, "\n")
}

// TestWorkedExampleFromDocs is the worked example of docs/indicators.md, figure for figure.
func TestWorkedExampleFromDocs(t *testing.T) {
	d := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return tm
	}
	// as_of 2026-03-31T00:00Z, W = 30d: window (2026-03-01, 2026-03-31], previous window (2026-01-30, 2026-03-01].
	p := Params{AsOf: d("2026-03-31T00:00:00Z"), Window: 30 * 24 * time.Hour}
	evs := history(
		named(d("2026-01-02T09:00:00Z"), "U-1", "Maria"),
		reportsTo(d("2026-01-02T09:00:00Z"), "U-2", "U-1"), // Ana
		reportsTo(d("2026-01-02T09:00:00Z"), "U-3", "U-1"), // Ben
		reportsTo(d("2026-01-02T09:00:00Z"), "U-4", "U-1"), // Cleo
		// Previous window: Ana wins 10 000, Ben wins 8 000, both on their own.
		created(d("2026-02-02T10:00:00Z"), "D-10", "U-2", 10000),
		won(d("2026-02-10T10:00:00Z"), "D-10"),
		created(d("2026-02-03T10:00:00Z"), "D-11", "U-3", 8000),
		won(d("2026-02-12T10:00:00Z"), "D-11"),
		// Window.
		created(d("2026-03-02T10:00:00Z"), "D-1", "U-2", 12000), // Ana
		won(d("2026-03-10T10:00:00Z"), "D-1"),
		created(d("2026-03-03T10:00:00Z"), "D-2", "U-3", 20000),      // Ben
		ownerChanged(d("2026-03-12T10:00:00Z"), "D-2", "U-1", "U-3"), // Maria takes it over
		won(d("2026-03-20T10:00:00Z"), "D-2", 22000),
		created(d("2026-03-05T10:00:00Z"), "D-3", "U-4", 5000), // Cleo
		lost(d("2026-03-25T10:00:00Z"), "D-3"),
		created(d("2026-03-15T10:00:00Z"), "D-4", "U-3", 6000),       // Ben
		ownerChanged(d("2026-03-28T10:00:00Z"), "D-4", "U-1", "U-3"), // Maria takes it over; still open
		activity(d("2026-03-04T15:00:00Z"), "one_on_one", "U-1", "U-2"),
		activity(d("2026-03-06T15:00:00Z"), "call", "U-1", "U-4"), // not a coaching kind
	)
	// closed: D-1, D-2, D-3 = 3; won: D-1, D-2 = 2; Maria closed D-2: share 1/2; revenue 22000/(12000+22000) = 11/17.
	// D-2 had a takeover before its close: takeover_rate 1/3; takeovers: D-2 (03-12) and D-4 (03-28) = 2.
	// Team Ana, Ben, Cleo = 3; coached: Ana only → 1/3.
	// rep_growth: Ana 12000/10000 − 1 = 0.2; Ben 0/8000 − 1 = −1 (D-2 was closed by Maria, not self-closed);
	// Cleo has no previous amount. Median of [−1, 0.2] = −0.4.
	want := []Row{{ManagerID: "U-1", ManagerName: "Maria", WonDeals: 2, ClosedDeals: 3,
		ManagerClosedShare: f(0.5), ManagerClosedRevenueShare: f(22000.0 / 34000), TakeoverRate: f(1.0 / 3),
		Takeovers: 2, CoachingCoverage: f(1.0 / 3), RepsCoached: 1, RepGrowth: f(-0.4), TeamReps: 3}}
	runCases(t, []refCase{{name: "worked example of docs/indicators.md", params: p, events: evs, want: want}})
}

func TestRepClosedDealCountsForTheirManager(t *testing.T) {
	runCases(t, []refCase{{
		name: "won and lost deals of the reps count for their manager",
		events: history(
			named(at("day 0 09:00"), "M", "Maria"),
			reportsTo(at("day 0 09:00"), "A", "M"),
			reportsTo(at("day 0 09:00"), "B", "M"),
			created(at("day 35 10:00"), "D1", "A", 1000),
			won(at("day 40 10:00"), "D1"), // no amount on the close: 1000 from deal.created
			created(at("day 36 10:00"), "D2", "B", 500),
			lost(at("day 41 10:00"), "D2"),
		),
		// M(D1) = manager of A = M, M(D2) = manager of B = M. closed 2, won 1, C(D1) = A ≠ M: share 0/1,
		// revenue 0/1000, no takeover: 0/2. Team A, B, nobody coached: 0/2. A has no previous amount: growth null.
		want: []Row{{ManagerID: "M", ManagerName: "Maria", WonDeals: 1, ClosedDeals: 2, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 2}},
	}})
}

func TestTakeoverCountsAndManagerClosedShare(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "manager takes a deal over from a rep and wins it",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "B", "M"),
				created(at("day 32 10:00"), "D1", "A", 1000),
				ownerChanged(at("day 35 10:00"), "D1", "M", "A"), // takeover: M is A's manager, D1 open
				won(at("day 40 10:00"), "D1", 1200),              // the close's amount wins: 1200
				created(at("day 33 10:00"), "D2", "B", 500),
				won(at("day 42 10:00"), "D2"),
				created(at("day 45 10:00"), "D3", "B", 700),
				ownerChanged(at("day 50 10:00"), "D3", "M", "B"), // takeover of a deal still open at as_of
			),
			// D1: R = A, C = M, M(D1) = M. D2: R = C = B, M(D2) = M. D3 not closed.
			// won 2, closed 2; closed by M: D1 → share 1/2, revenue 1200/(1200+500) = 12/17.
			// takeover_rate: D1 of 2 closed → 1/2. takeovers: D1 (day 35) and D3 (day 50) = 2.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0.5),
				ManagerClosedRevenueShare: f(1200.0 / 1700), TakeoverRate: f(0.5), Takeovers: 2,
				CoachingCoverage: f(0), RepsCoached: 0, RepGrowth: nil, TeamReps: 2}},
		},
		{
			name: "a takeover before the window counts for takeover_rate but not for takeovers",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 20 10:00"), "D1", "A", 1000),
				ownerChanged(at("day 25 10:00"), "D1", "M", "A"), // takeover in the previous window
				won(at("day 40 10:00"), "D1"),
			),
			// closed 1, won 1 by M: share 1, revenue 1000/1000; takeover by M before t_c: rate 1/1;
			// takeovers in the window: 0.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: f(1), TakeoverRate: f(1), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
	})
}

func TestHandoffBetweenRepsIsNotATakeover(t *testing.T) {
	runCases(t, []refCase{{
		name: "a manager moving a deal from one rep to another",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M"),
			reportsTo(at("day 0 09:00"), "B", "M"),
			created(at("day 32 10:00"), "D1", "A", 800),
			ownerChanged(at("day 35 10:00"), "D1", "B", "A"), // B is not A's manager: a handoff
			won(at("day 40 10:00"), "D1"),
		),
		// R = C = B, M(D1) = M. won 1, closed 1, share 0, revenue 0/800, takeover_rate 0/1, takeovers 0.
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 2}},
	}})
}

func TestOwnerChangeToAnotherManagerIsNotATakeover(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "the skip-level manager takes a rep's deal",
			events: history(
				reportsTo(at("day 0 09:00"), "M", "H"),
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 32 10:00"), "D1", "A", 100),
				ownerChanged(at("day 35 10:00"), "D1", "H", "A"), // H is A's manager's manager, not A's manager
				won(at("day 40 10:00"), "D1"),
			),
			// R = A, C = H, M(D1) = manager of A = M. M: won 1, closed 1, C ≠ M: share 0, revenue 0/100,
			// rate 0/1, takeovers 0. H: M has reports all window, so H's team is empty: coverage null.
			want: []Row{
				{ManagerID: "H", ManagerName: "H", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: nil,
					RepsCoached: 0, RepGrowth: nil, TeamReps: 0},
				{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
					ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name: "another team's manager takes a rep's deal",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "C", "M2"),
				created(at("day 32 10:00"), "D1", "A", 100),
				ownerChanged(at("day 35 10:00"), "D1", "M2", "A"),
				won(at("day 40 10:00"), "D1"),
			),
			// R = A, C = M2, M(D1) = M: M has won 1, closed 1, share 0, revenue 0, rate 0/1. No takeover anywhere.
			// M2: team C, nothing closed.
			want: []Row{
				{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
					ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
	})
}

func TestTakeoverUsesHistoryNotStalePreviousOwnerID(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "a wrong previous_owner_id does not hide a takeover nor make a second one",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "C", "M2"),
				created(at("day 31 10:00"), "D1", "A", 100),
				ownerChanged(at("day 35 10:00"), "D1", "M", "C"), // payload says C; history says A: a takeover
				ownerChanged(at("day 36 10:00"), "D1", "M", "A"), // payload says A; history says M: no takeover
				won(at("day 40 10:00"), "D1"),
			),
			// Previous owners from history: A (manager M) at day 35, then M (manager none) at day 36.
			// One takeover. M: won 1, closed 1, C = M: share 1, revenue 1, rate 1/1, takeovers 1.
			want: []Row{
				{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
					ManagerClosedRevenueShare: f(1), TakeoverRate: f(1), Takeovers: 1, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name: "a previous_owner_id naming one of the manager's reps does not make a takeover",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "C", "M2"),
				created(at("day 31 10:00"), "D2", "C", 100),
				ownerChanged(at("day 35 10:00"), "D2", "M", "A"), // previous owner is really C (manager M2)
				won(at("day 40 10:00"), "D2"),
			),
			// Not a takeover. R = C, C(D2) = M, M(D2) = manager of C = M2: M2 won 1, closed 1, C ≠ M2: share 0,
			// revenue 0, rate 0/1. M: nothing closed, no takeovers.
			want: []Row{
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
					ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
	})
}

func TestTakeoverOnClosedDealIsIgnored(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "owner change after the close",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 31 10:00"), "D1", "A", 100),
				won(at("day 35 10:00"), "D1"),
				ownerChanged(at("day 36 10:00"), "D1", "M", "A"), // closed deal: not a takeover
			),
			// C(D1) = owner at t_c = A; R = A; M(D1) = M. won 1, closed 1, share 0, revenue 0, rate 0/1,
			// takeovers 0.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "owner change after a reopen counts again",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 31 10:00"), "D1", "A", 100),
				won(at("day 33 10:00"), "D1"),
				reopened(at("day 34 10:00"), "D1"),
				ownerChanged(at("day 35 10:00"), "D1", "M", "A"), // open again: a takeover
				won(at("day 40 10:00"), "D1"),
			),
			// Counted once, at day 40: C = M, R = A, M(D1) = M. won 1, closed 1, share 1, revenue 1, rate 1/1,
			// takeovers 1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: f(1), TakeoverRate: f(1), Takeovers: 1, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "close and owner change at the same instant: the deal is still open",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 31 10:00"), "D1", "A", 100),
				won(at("day 35 10:00"), "D1"),                    // e003
				ownerChanged(at("day 35 10:00"), "D1", "M", "A"), // e004: same millisecond, after the close by id
			),
			// Open: no close strictly before day 35 10:00, so this is a takeover (takeovers 1). C(D1) = owner at
			// t_c, i.e. the latest assignment at or before day 35 10:00 = M: share 1, revenue 1. But the takeover is
			// not before t_c, it is at t_c: takeover_rate 0/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: f(1), TakeoverRate: f(0), Takeovers: 1, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
	})
}

func TestReopenedDealCountsOnceAtLastClose(t *testing.T) {
	org := func(evs ...event.Event) []event.Event {
		return history(append([]event.Event{reportsTo(at("day 0 09:00"), "A", "M"),
			created(at("day 5 10:00"), "D1", "A", 100)}, evs...)...)
	}
	none := Row{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
		ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0), RepsCoached: 0,
		RepGrowth: nil, TeamReps: 1}
	runCases(t, []refCase{
		{
			name:   "won in the previous window, reopened and lost in the window",
			events: org(won(at("day 10 10:00"), "D1"), reopened(at("day 32 10:00"), "D1"), lost(at("day 40 10:00"), "D1")),
			// The last close is the loss at day 40: closed 1, won 0 (shares null), rate 0/1. The day-10 win is
			// gone, so A has no previous self-closed amount: growth null.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 1, ManagerClosedShare: nil,
				ManagerClosedRevenueShare: nil, TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "won twice in the window",
			events: org(won(at("day 32 10:00"), "D1"), reopened(at("day 35 10:00"), "D1"),
				won(at("day 40 10:00"), "D1", 300)),
			// Once: won 1, closed 1, share 0, revenue 0/300, rate 0/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "won in the window, then reopened before as_of: not closed",
			events: org(won(at("day 35 10:00"), "D1"), reopened(at("day 45 10:00"), "D1")),
			want:   []Row{none},
		},
		{
			name:   "reopened and closed at the same millisecond: the later by id is the latest",
			events: org(won(at("day 35 10:00"), "D1"), withID(reopened(at("day 40 10:00"), "D1"), testSource, "e2"), withID(won(at("day 40 10:00"), "D1"), testSource, "e1")),
			// At day 40 10:00, e1 (won) sorts before e2 (reopened): the latest close/reopen is the reopen.
			want: []Row{none},
		},
	})
}

func TestDeletedDealIsExcludedEverywhere(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "deleted deals count nowhere",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "B", "M"),
				created(at("day 31 10:00"), "D1", "A", 500),
				ownerChanged(at("day 33 10:00"), "D1", "M", "A"), // a takeover, but of a deal deleted later
				won(at("day 35 10:00"), "D1"),
				deleted(at("day 50 10:00"), "D1"),
				created(at("day 31 10:00"), "D2", "B", 100),
				won(at("day 36 10:00"), "D2"),
				created(at("day 5 10:00"), "D3", "B", 100),
				won(at("day 10 10:00"), "D3"),
				created(at("day 5 10:00"), "D4", "A", 200),
				won(at("day 10 10:00"), "D4"),
				deleted(at("day 55 10:00"), "D4"), // previous-window win of A, deleted in the window
			),
			// Only D2 counts in the window: won 1, closed 1, share 0, revenue 0/100, rate 0/1, takeovers 0 (D1's
			// takeover is gone with D1). Growth: A's previous amount was D4, deleted → A excluded; B 100/100 − 1 = 0.
			// Median [0] = 0.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(0), TeamReps: 2}},
		},
		{
			name: "events after the deletion do not bring a deal back",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 31 10:00"), "D1", "A", 100),
				deleted(at("day 32 10:00"), "D1"),
				created(at("day 33 10:00"), "D1", "A", 100),
				won(at("day 40 10:00"), "D1"),
			),
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
				ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
	})
}

func TestDuplicateEventCountsOnce(t *testing.T) {
	base := history(
		reportsTo(at("day 0 09:00"), "A", "M"),
		created(at("day 31 10:00"), "D1", "A", 100),
		won(at("day 40 10:00"), "D1"),
		created(at("day 31 10:00"), "D2", "A", 200),
		ownerChanged(at("day 33 10:00"), "D2", "M", "A"),
		won(at("day 41 10:00"), "D2"),
		activity(at("day 45 10:00"), "coaching_session", "M", "A"),
	)
	// Every event once, the deal events three times and the activity twice, as redeliveries would.
	dup := slices.Clone(base)
	dup = append(dup, base[1:]...)
	dup = append(dup, base[1:6]...)
	// Same ids from another source are other events: D2 goes back to A (crm/b e004) and M takes it again
	// (crm/b e005), both before the close.
	otherSource := append(slices.Clone(base),
		withID(ownerChanged(at("day 34 10:00"), "D2", "A", "M"), "crm/b", "e004"),
		withID(ownerChanged(at("day 35 10:00"), "D2", "M", "A"), "crm/b", "e005"))
	// A corrected copy of the close of D1 (same source and id), delivered later: lost, not won.
	corrected := append(slices.Clone(base), withID(lost(at("day 40 10:00"), "D1"), testSource, base[2].ID))
	// A corrected copy that moves the close of D1 after as_of: the event as corrected is not considered at all.
	movedLater := append(slices.Clone(base), withID(won(at("day 61 10:00"), "D1"), testSource, base[2].ID))
	runCases(t, []refCase{
		{
			name:   "each event once",
			events: base,
			// D1 won by A (100), D2 taken over and won by M (200). won 2, closed 2, share 1/2, revenue 200/300,
			// rate 1/2, takeovers 1, team A coached: 1/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0.5),
				ManagerClosedRevenueShare: f(200.0 / 300), TakeoverRate: f(0.5), Takeovers: 1,
				CoachingCoverage: f(1), RepsCoached: 1, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "duplicated events",
			events: dup,
			// Same as once.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0.5),
				ManagerClosedRevenueShare: f(200.0 / 300), TakeoverRate: f(0.5), Takeovers: 1,
				CoachingCoverage: f(1), RepsCoached: 1, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "the same id from another source is another event",
			events: otherSource,
			// D2 owners: A, M (day 33, takeover), A (day 34), M (day 35, takeover). takeovers 2; D2 still one deal
			// with a takeover: rate 1/2.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0.5),
				ManagerClosedRevenueShare: f(200.0 / 300), TakeoverRate: f(0.5), Takeovers: 2,
				CoachingCoverage: f(1), RepsCoached: 1, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "a later copy of the same event replaces the earlier one",
			events: corrected,
			// D1 lost: won 1 (D2 by M), closed 2, share 1/1, revenue 200/200, rate 1/2.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 2, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: f(1), TakeoverRate: f(0.5), Takeovers: 1, CoachingCoverage: f(1),
				RepsCoached: 1, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "a later copy moved after as_of removes the event",
			events: movedLater,
			// D1 not closed as of day 60: won 1 (D2 by M), closed 1, share 1, revenue 1, rate 1/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: f(1), TakeoverRate: f(1), Takeovers: 1, CoachingCoverage: f(1),
				RepsCoached: 1, RepGrowth: nil, TeamReps: 1}},
		},
	})
}

func TestLateEventGivesSameResultAsInOrder(t *testing.T) {
	inOrder := history(
		reportsTo(at("day 0 09:00"), "A", "M"),
		reportsTo(at("day 0 09:00"), "B", "M"),
		// A moves to M2 and back at the same millisecond: by id, the move back (e004) is the latest.
		reportsTo(at("day 20 09:00"), "A", "M2"),
		reportsTo(at("day 20 09:00"), "A", "M"),
		reportsTo(at("day 0 09:00"), "C", "M2"),
		created(at("day 31 10:00"), "D1", "A", 300),
		// Two assignments at the same millisecond: to B (e007), then to M (e008). The previous owner of the
		// change to M is B, whose manager is M: a takeover; the owner afterwards is M.
		ownerChanged(at("day 35 10:00"), "D1", "B", "A"),
		ownerChanged(at("day 35 10:00"), "D1", "M", "B"),
		won(at("day 40 10:00"), "D1"),
		won(at("day 5 10:00"), "D2"), // listed (and numbered) before its creation: event time decides
		created(at("day 3 10:00"), "D2", "B", 100),
		created(at("day 33 10:00"), "D3", "B", 200),
		won(at("day 44 10:00"), "D3"),
		activity(at("day 50 10:00"), "call_review", "M", "B"),
		won(at("day 61 10:00"), "D2"), // after as_of: ignored however it arrives
	)
	// M: team A, B (A's day-20 moves resolve to M). D1: R = B (last rep owner), C = M, M(D1) = M; D2 closed in the
	// previous window; D3 won by B (200). won 2, closed 2, share 1/2, revenue 300/500, rate 1/2, takeovers 1,
	// coached B: 1/2. Growth: B previous 100 (D2), current 200 (D3, D1 was closed by M) → 200/100 − 1 = 1.
	// M2: team C only; A's day-20 stint under M2 lasted zero milliseconds.
	want := []Row{
		{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0.5),
			ManagerClosedRevenueShare: f(300.0 / 500), TakeoverRate: f(0.5), Takeovers: 1, CoachingCoverage: f(0.5),
			RepsCoached: 1, RepGrowth: f(1), TeamReps: 2},
		{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
			ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0), RepsCoached: 0,
			RepGrowth: nil, TeamReps: 1},
	}
	reversed := slices.Clone(inOrder)
	slices.Reverse(reversed)
	runCases(t, []refCase{
		{name: "in order", events: inOrder, want: want},
		{name: "in reverse order", events: reversed, want: want},
	})
	for seed := range uint64(50) {
		shuffled := slices.Clone(inOrder)
		r := rand.New(rand.NewPCG(seed, 1))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if diff := diffRows(Reference(shuffled, defaultParams), want); diff != "" {
			t.Errorf("shuffled with seed %d:\n%s", seed, diff)
		}
	}
}

func TestEventsAfterAsOfAreIgnored(t *testing.T) {
	runCases(t, []refCase{{
		name: "closes, reopens, deletions, takeovers, reporting lines, activities and names after as_of",
		events: history(
			named(at("day 1 09:00"), "M", "Maria"),
			named(at("day 61 09:00"), "M", "Renamed Later"),
			reportsTo(at("day 0 09:00"), "A", "M"),
			reportsTo(at("day 61 09:00"), "B", "M"),
			created(at("day 31 10:00"), "D1", "A", 100),
			won(at("day 40 10:00"), "D1"),
			reopened(at("day 60 00:00:00.001"), "D1"), // 1 ms after as_of
			created(at("day 31 10:00"), "D2", "A", 100),
			won(at("day 60 00:00:00.001"), "D2"),
			created(at("day 31 10:00"), "D3", "A", 100),
			won(at("day 40 10:00"), "D3"),
			deleted(at("day 61 10:00"), "D3"),
			created(at("day 31 10:00"), "D4", "A", 100),
			ownerChanged(at("day 61 10:00"), "D4", "M", "A"),
			activity(at("day 62 10:00"), "coaching_session", "M", "A"),
		),
		// D1 and D3 won by A in the window; D2 not closed yet; D4 open with no takeover. won 2, closed 2, share 0,
		// revenue 0/200, rate 0/2, takeovers 0. Team A only (B joins after as_of), not coached: 0/1. Name Maria.
		want: []Row{{ManagerID: "M", ManagerName: "Maria", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
	}})
}

func TestManagerWithoutRepOwnerIsAttributedToItself(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "a deal a manager creates and wins",
			events: history(
				reportsTo(at("day 0 09:00"), "M", "H"),
				reportsTo(at("day 0 09:00"), "A", "M"),
				created(at("day 31 10:00"), "D1", "M", 400),
				won(at("day 40 10:00"), "D1"),
			),
			// No rep owner; C = M, a manager at t_c: M(D1) = M. won 1, closed 1, share 1, revenue 1, rate 0/1.
			// H: team empty (M has a report), coverage null.
			want: []Row{
				{ManagerID: "H", ManagerName: "H", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: nil,
					RepsCoached: 0, RepGrowth: nil, TeamReps: 0},
				{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
					ManagerClosedRevenueShare: f(1), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name: "a manager whose reports left before the close is attributed to their own manager",
			events: history(
				reportsTo(at("day 0 09:00"), "M", "H"),
				reportsTo(at("day 0 09:00"), "M2", "H"),
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "C", "M2"),
				reportsTo(at("day 35 09:00"), "C", "M"), // M2 has no report from day 35
				created(at("day 31 10:00"), "D1", "M2", 400),
				won(at("day 40 10:00"), "D1"),
			),
			// D1: M2 had a report when it became owner, so no rep owner. C = M2, not a manager at day 40:
			// M(D1) = manager of M2 = H. H: won 1, closed 1, C ≠ H: share 0, revenue 0/400, rate 0/1; H's team is
			// M2 (no reports from day 35), not coached: 0/1. R(D1) is none: not self-closed, no growth.
			// M: team A, C = 2. M2: team C (until day 35) = 1.
			want: []Row{
				{ManagerID: "H", ManagerName: "H", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
					ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 2},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
	})
}

func TestUnattributableDealsCountForNobody(t *testing.T) {
	runCases(t, []refCase{{
		name: "no known owner, or a rep of record without a manager at the close",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M"),
			reportsTo(at("day 0 09:00"), "B", "M"),
			won(at("day 40 10:00"), "D1", 100), // no created/owner_changed: no owner
			created(at("day 31 10:00"), "D2", "B", 100),
			noManager(at("day 38 10:00"), "B"),
			won(at("day 40 10:00"), "D2"), // R = B, who has no manager at t_c
		),
		// Neither deal counts for M. Team A, B (B reported to M until day 38).
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
			ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 2}},
	}})
}

func TestDealNeverCreatedCountsFromOwnerChanges(t *testing.T) {
	runCases(t, []refCase{{
		name: "a deal.created after an owner_changed is an assignment but never a takeover",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M"),
			ownerChanged(at("day 31 10:00"), "D1", "A", ""), // first assignment of D1
			created(at("day 33 10:00"), "D1", "M", 100),     // a later deal.created: owner M, not a takeover
			won(at("day 40 10:00"), "D1"),
		),
		// R = A, C = M (owner from the latest assignment), M(D1) = M: won 1, closed 1, share 1, revenue 1,
		// no takeover: rate 0/1, takeovers 0.
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
			ManagerClosedRevenueShare: f(1), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
	}, {
		name: "owner_changed acts as the first assignment, which is never a takeover",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M"),
			ownerChanged(at("day 31 10:00"), "D1", "A", "M"), // first assignment of D1
			ownerChanged(at("day 33 10:00"), "D1", "M", "A"), // takeover
			won(at("day 40 10:00"), "D1", 100),
			ownerChanged(at("day 31 10:00"), "D2", "M", "A"), // first assignment of D2, to M: not a takeover
		),
		// D1: R = A, C = M, M(D1) = M: won 1, closed 1, share 1, revenue 1, rate 1/1. takeovers 1 (D1 only).
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
			ManagerClosedRevenueShare: f(1), TakeoverRate: f(1), Takeovers: 1, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
	}})
}

func TestCoachingCoverageCountsOnlyCoachingKindsByTheManager(t *testing.T) {
	evs := history(
		reportsTo(at("day 0 09:00"), "A", "M"),
		reportsTo(at("day 0 09:00"), "B", "M"),
		reportsTo(at("day 0 09:00"), "C", "M"),
		reportsTo(at("day 0 09:00"), "R4", "M2"),
		activity(at("day 31 10:00"), "coaching_session", "M", "A"), // A coached
		activity(at("day 32 10:00"), "call_review", "M", "X", "C"), // C coached (one of several subjects)
		activity(at("day 33 10:00"), "call", "M", "B"),             // not a coaching kind
		activity(at("day 20 10:00"), "one_on_one", "M", "B"),       // before the window
		activity(at("day 34 10:00"), "one_on_one", "M2", "B"),      // actor is not B's manager
		activity(at("day 35 10:00"), "deal_review", "M", "R4"),     // R4 is not in M's team; actor is not M2
		activity(at("day 36 10:00"), "one_on_one", "B", "M"),       // B as actor, M as subject
	)
	runCases(t, []refCase{
		{
			name:   "default coaching kinds",
			events: evs,
			// M: team A, B, C; coached A, C → 2/3. M2: team R4, never coached by M2 → 0/1.
			want: []Row{
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(2.0 / 3),
					RepsCoached: 2, RepGrowth: nil, TeamReps: 3},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name:   "configured coaching kinds replace the defaults",
			params: Params{AsOf: defaultParams.AsOf, CoachingKinds: []string{"call"}},
			events: evs,
			// Only M's call with B counts: 1/3.
			want: []Row{
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(1.0 / 3),
					RepsCoached: 1, RepGrowth: nil, TeamReps: 3},
				{ManagerID: "M2", ManagerName: "M2", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
	})
}

func TestTeamIncludesTransferredRepInBothTeams(t *testing.T) {
	runCases(t, []refCase{{
		name: "a rep moving from M1 to M2 mid-window",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M1"),
			reportsTo(at("day 0 09:00"), "B", "M2"),
			reportsTo(at("day 45 09:00"), "A", "M2"),
			created(at("day 5 10:00"), "D0", "A", 100),
			won(at("day 10 10:00"), "D0"), // previous window, under M1
			created(at("day 31 10:00"), "D1", "A", 200),
			won(at("day 40 10:00"), "D1"), // under M1
			created(at("day 46 10:00"), "D2", "A", 300),
			won(at("day 50 10:00"), "D2"),                         // under M2
			activity(at("day 50 10:00"), "one_on_one", "M1", "A"), // after the move, still in M1's window team
			activity(at("day 51 10:00"), "one_on_one", "M2", "B"),
		),
		// M1: team A; D1 (M(D1) = manager of A at day 40 = M1): won 1, closed 1, share 0, revenue 0/200, rate 0/1;
		// A coached by M1: 1/1. M2: team A, B; D2: won 1, closed 1, share 0, revenue 0/300, rate 0/1; B coached:
		// 1/2. A's growth uses all A's self-closed wins, whichever team: (200+300)/100 − 1 = 4, in both teams;
		// B has no previous amount. Median [4] = 4 for both.
		want: []Row{
			{ManagerID: "M1", ManagerName: "M1", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(1),
				RepsCoached: 1, RepGrowth: f(4), TeamReps: 1},
			{ManagerID: "M2", ManagerName: "M2", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0.5),
				RepsCoached: 1, RepGrowth: f(4), TeamReps: 2},
		},
	}})
}

func TestRepWhoBecomesManagerLeavesTeam(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "promoted before the window",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "B", "M"),
				reportsTo(at("day 20 09:00"), "C", "A"), // A is a manager from day 20
				created(at("day 40 10:00"), "D1", "A", 100),
				won(at("day 45 10:00"), "D1"),
			),
			// M: team B only (A has a report all window). A: a manager, team C. D1: no rep owner, C = A is a manager
			// at t_c: M(D1) = A: won 1, closed 1, share 1, revenue 1, rate 0/1.
			want: []Row{
				{ManagerID: "A", ManagerName: "A", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
					ManagerClosedRevenueShare: f(1), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name: "promoted mid-window: still in the team for this window",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				reportsTo(at("day 0 09:00"), "B", "M"),
				reportsTo(at("day 45 09:00"), "C", "A"),
				created(at("day 35 10:00"), "D2", "A", 100), // A a rep when they became owner
				won(at("day 50 10:00"), "D2"),
			),
			// M: team A (a rep until day 45), B = 2. D2: R = A, C = A, M(D2) = manager of A at day 50 = M: won 1,
			// closed 1, C ≠ M: share 0, revenue 0/100, rate 0/1. A: team C, nothing closed.
			want: []Row{
				{ManagerID: "A", ManagerName: "A", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
				{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
					ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 2},
			},
		},
	})
}

func TestDeactivationEndsReportingLine(t *testing.T) {
	runCases(t, []refCase{{
		name: "deactivated reps leave the team and their later closes count for nobody",
		events: history(
			reportsTo(at("day 0 09:00"), "A", "M"),
			reportsTo(at("day 0 09:00"), "B", "M"),
			reportsTo(at("day 0 09:00"), "C", "M"),
			deactivated(at("day 20 09:00"), "B"), // before the window
			deactivated(at("day 45 09:00"), "C"), // mid-window
			created(at("day 31 10:00"), "D1", "C", 100),
			won(at("day 50 10:00"), "D1"), // C has no manager at t_c
		),
		// Team A, C (C reported to M until day 45) = 2. D1: M(D1) = manager of C at day 50 = none: not counted.
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
			ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: nil, TeamReps: 2}},
	}})
}

// selfWon is a rep's deal they create and win on their own.
func selfWon(deal, rep, createdAt, closedAt string, amount float64) []event.Event {
	return []event.Event{created(at(createdAt), deal, rep, amount), won(at(closedAt), deal)}
}

func TestRepGrowthIsMedianOfRatios(t *testing.T) {
	odd := slices.Concat(
		[]event.Event{
			reportsTo(at("day 0 09:00"), "A", "M"), reportsTo(at("day 0 09:00"), "B", "M"),
			reportsTo(at("day 0 09:00"), "C", "M"), reportsTo(at("day 0 09:00"), "E", "M"),
		},
		selfWon("A0", "A", "day 5 10:00", "day 10 10:00", 100), // previous
		selfWon("B0", "B", "day 5 10:00", "day 10 10:00", 200), // previous
		selfWon("C0", "C", "day 5 10:00", "day 10 10:00", 100), // previous
		selfWon("A1", "A", "day 31 10:00", "day 40 10:00", 300),
		selfWon("B1", "B", "day 31 10:00", "day 40 10:00", 100),
		selfWon("C1", "C", "day 31 10:00", "day 40 10:00", 150),
		selfWon("C2", "C", "day 31 10:00", "day 41 10:00", 250),
		selfWon("E1", "E", "day 31 10:00", "day 40 10:00", 500),
	)
	even := slices.Concat(odd,
		[]event.Event{reportsTo(at("day 0 09:00"), "F", "M")},
		selfWon("F0", "F", "day 5 10:00", "day 10 10:00", 100), // previous; nothing in the window
	)
	runCases(t, []refCase{
		{
			name:   "odd count",
			events: history(odd...),
			// A 300/100 − 1 = 2; B 100/200 − 1 = −0.5; C (150+250)/100 − 1 = 3; E no previous amount: excluded.
			// Sorted [−0.5, 2, 3]: median 2. Window: 5 self-closed wins, won 5, closed 5, share 0, revenue 0/1300,
			// rate 0/5; team A, B, C, E = 4.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 5, ClosedDeals: 5, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(2), TeamReps: 4}},
		},
		{
			name:   "even count",
			events: history(even...),
			// Plus F 0/100 − 1 = −1. Sorted [−1, −0.5, 2, 3]: median (−0.5 + 2)/2 = 0.75. Team 5.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 5, ClosedDeals: 5, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(0.75), TeamReps: 5}},
		},
	})
}

func TestRepGrowthCountsOnlySelfClosedWonDeals(t *testing.T) {
	runCases(t, []refCase{{
		name: "taken-over, lost and handed-off deals",
		events: history(slices.Concat(
			[]event.Event{reportsTo(at("day 0 09:00"), "A", "M"), reportsTo(at("day 0 09:00"), "B", "M")},
			selfWon("A0", "A", "day 5 10:00", "day 10 10:00", 100), // previous, self-closed
			[]event.Event{
				created(at("day 5 10:00"), "A9", "A", 1000),
				ownerChanged(at("day 6 10:00"), "A9", "M", "A"),
				won(at("day 10 10:00"), "A9"), // previous, closed by M: not A's
			},
			selfWon("A1", "A", "day 31 10:00", "day 40 10:00", 150),
			[]event.Event{
				created(at("day 31 10:00"), "A2", "A", 500),
				lost(at("day 40 10:00"), "A2"), // lost: not counted
				created(at("day 31 10:00"), "A3", "A", 300),
				ownerChanged(at("day 33 10:00"), "A3", "B", "A"),
				won(at("day 40 10:00"), "A3"), // R = C = B: B's, and B has no previous amount
			},
		)...),
		// A: 150/100 − 1 = 0.5; B excluded. Median 0.5. Window: A1 won, A2 lost, A3 won → won 2, closed 3,
		// share 0, revenue 0/450, rate 0/3, takeovers 0 (A9's was in the previous window).
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 3, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: f(0.5), TeamReps: 2}},
	}})
}

func TestRepGrowthNullWithoutPreviousWindowAmount(t *testing.T) {
	org := reportsTo(at("day 0 09:00"), "A", "M")
	current := selfWon("A1", "A", "day 31 10:00", "day 40 10:00", 500)
	// Every case: A1 won 500 in the window: won 1, closed 1, share 0, revenue 0/500, rate 0/1; no growth.
	want := []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
		ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0), RepsCoached: 0,
		RepGrowth: nil, TeamReps: 1}}
	runCases(t, []refCase{
		{name: "nothing in the previous window", events: history(slices.Concat([]event.Event{org}, current)...), want: want},
		{
			name: "previous-window win without a known amount",
			events: history(slices.Concat([]event.Event{org, created(at("day 5 10:00"), "A0", "A"),
				won(at("day 10 10:00"), "A0")}, current)...),
			want: want,
		},
		{
			name: "previous-window loss",
			events: history(slices.Concat([]event.Event{org, created(at("day 5 10:00"), "A0", "A", 100),
				lost(at("day 10 10:00"), "A0")}, current)...),
			want: want,
		},
	})
}

func TestNullRatiosWhenNothingClosed(t *testing.T) {
	runCases(t, []refCase{
		{
			name:   "no deals",
			events: history(reportsTo(at("day 0 09:00"), "A", "M")),
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
				ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "only lost deals",
			events: history(reportsTo(at("day 0 09:00"), "A", "M"), created(at("day 31 10:00"), "D1", "A", 100),
				lost(at("day 40 10:00"), "D1")),
			// won 0: both shares null; closed 1: rate 0/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 1, ManagerClosedShare: nil,
				ManagerClosedRevenueShare: nil, TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "won deals without amounts",
			events: history(reportsTo(at("day 0 09:00"), "A", "M"), created(at("day 31 10:00"), "D1", "A"),
				ownerChanged(at("day 33 10:00"), "D1", "M", "A"), won(at("day 40 10:00"), "D1")),
			// won 1 by M: share 1; won amount 0: revenue share null; rate 1/1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(1),
				ManagerClosedRevenueShare: nil, TakeoverRate: f(1), Takeovers: 1, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name: "head of sales whose reports are all managers",
			events: history(reportsTo(at("day 0 09:00"), "M", "H"), reportsTo(at("day 0 09:00"), "A", "M"),
				activity(at("day 40 10:00"), "one_on_one", "H", "M")),
			// H: team empty → coverage null even though H coached M.
			want: []Row{
				{ManagerID: "H", ManagerName: "H", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: nil,
					RepsCoached: 0, RepGrowth: nil, TeamReps: 0},
				{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
					ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
					RepsCoached: 0, RepGrowth: nil, TeamReps: 1},
			},
		},
		{
			name:   "a manager with no report in the window has no row",
			events: history(reportsTo(at("day 0 09:00"), "A", "M"), noManager(at("day 20 09:00"), "A")),
			want:   []Row{},
		},
	})
}

func TestAmountFallsBackToLatestKnownAmount(t *testing.T) {
	// A's previous-window self-closed amount is 100, so rep_growth = amount of D1 / 100 − 1 shows D1's amount.
	// D1 is A's only window deal: won 1, closed 1, share 0, rate 0/1; revenue share 0/amount (null if 0).
	prev := []event.Event{reportsTo(at("day 0 09:00"), "A", "M"), created(at("day 5 10:00"), "D0", "A", 100),
		won(at("day 10 10:00"), "D0")}
	row := func(growth float64, revenueShare *float64) []Row {
		return []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: revenueShare, TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: f(growth), TeamReps: 1}}
	}
	c := func(name string, growth float64, revenueShare *float64, evs ...event.Event) refCase {
		return refCase{name: name, events: history(slices.Concat(prev, evs)...), want: row(growth, revenueShare)}
	}
	runCases(t, []refCase{
		// 300 → 300/100 − 1 = 2.
		c("the close event's amount wins", 2, f(0),
			created(at("day 31 10:00"), "D1", "A", 100), amountChanged(at("day 35 10:00"), "D1", 200),
			won(at("day 40 10:00"), "D1", 300)),
		// 250 → 1.5.
		c("else the latest amount change before the close", 1.5, f(0),
			created(at("day 31 10:00"), "D1", "A", 100), amountChanged(at("day 35 10:00"), "D1", 250),
			won(at("day 40 10:00"), "D1")),
		// 100 → 0.
		c("else the created amount; changes after the close do not count", 0, f(0),
			created(at("day 31 10:00"), "D1", "A", 100), won(at("day 40 10:00"), "D1"),
			amountChanged(at("day 45 10:00"), "D1", 900)),
		// 400 → 3.
		c("an earlier close's amount is a known amount", 3, f(0),
			created(at("day 31 10:00"), "D1", "A"), won(at("day 32 10:00"), "D1", 400),
			reopened(at("day 33 10:00"), "D1"), won(at("day 40 10:00"), "D1")),
		// 200 → 1: "at or before t_c" is by millisecond, even for an event ordered after the close by id.
		c("an amount change at the close's millisecond counts", 1, f(0),
			created(at("day 31 10:00"), "D1", "A", 100), won(at("day 40 10:00"), "D1"),
			amountChanged(at("day 40 10:00"), "D1", 200)),
		// 0 → −1; won amount 0: revenue share null.
		c("no amount ever known: 0", -1, nil,
			created(at("day 31 10:00"), "D1", "A"), won(at("day 40 10:00"), "D1")),
	})
}

func TestWindowBoundaries(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "window (as_of − W, as_of] and previous window (as_of − 2W, as_of − W]",
			events: history(slices.Concat(
				[]event.Event{
					reportsTo(at("day 0 09:00"), "A", "M"),
					reportsTo(at("day 60 00:00"), "C", "M"), // joins exactly at as_of: in the team
					reportsTo(at("day 0 09:00"), "B", "M3"),
					noManager(at("day 30 00:00"), "B"), // M3's only report leaves exactly at as_of − W
				},
				selfWon("D1", "A", "day 31 10:00", "day 60 00:00", 100),        // at as_of: in the window
				selfWon("D2", "A", "day 20 10:00", "day 30 00:00", 200),        // at as_of − W: previous window
				selfWon("D3", "A", "day -5 10:00", "day 0 00:00", 1000),        // at as_of − 2W: in neither
				selfWon("D4", "A", "day 20 10:00", "day 30 00:00:00.001", 300), // 1 ms after as_of − W: window
				[]event.Event{
					created(at("day 20 10:00"), "D5", "A"),
					ownerChanged(at("day 30 00:00"), "D5", "M", "A"), // takeover at as_of − W: not in the window
					created(at("day 20 10:00"), "D6", "A"),
					ownerChanged(at("day 60 00:00"), "D6", "M", "A"),           // takeover at as_of: in the window
					activity(at("day 30 00:00"), "coaching_session", "M", "A"), // at as_of − W: not counted
					activity(at("day 60 00:00"), "coaching_session", "M", "C"), // at as_of: counted
				},
			)...),
			// M: won D1, D4 → 2, closed 2, share 0, revenue 0/400, rate 0/2 (D5, D6 still open), takeovers 1 (D6).
			// Team A, C = 2; coached C: 1/2. Growth A: (100+300)/200 − 1 = 1. M3: no report in the window, no row.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 1, CoachingCoverage: f(0.5),
				RepsCoached: 1, RepGrowth: f(1), TeamReps: 2}},
		},
		{
			name: "times are compared at millisecond resolution",
			events: history(slices.Concat(
				[]event.Event{reportsTo(at("day 0 09:00"), "A", "M")},
				selfWon("D1", "A", "day 31 10:00", "day 60 00:00:00.000999", 200), // same millisecond as as_of
				selfWon("D2", "A", "day 20 10:00", "day 30 00:00:00.000999", 100), // same millisecond as as_of − W
				selfWon("D3", "A", "day 31 10:00", "day 60 00:00:00.001", 5000),   // next millisecond: after as_of
			)...),
			// D1 in the window (200), D2 in the previous window (100), D3 ignored. won 1, closed 1, share 0,
			// revenue 0/200, rate 0/1; growth 200/100 − 1 = 1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(1), TeamReps: 1}},
		},
		{
			name:   "as_of below the millisecond is truncated",
			params: Params{AsOf: at("day 60 00:00:00.000999")},
			events: history(slices.Concat(
				[]event.Event{reportsTo(at("day 0 09:00"), "A", "M")},
				selfWon("D1", "A", "day 31 10:00", "day 60 00:00", 200),
				selfWon("D2", "A", "day 20 10:00", "day 30 00:00", 100),
			)...),
			// Same window as as_of = day 60 00:00: D1 in the window, D2 in the previous one. Growth 1.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(1), TeamReps: 1}},
		},
		{
			name:   "custom window",
			params: Params{AsOf: at("day 60 00:00"), Window: 10 * 24 * time.Hour},
			events: history(slices.Concat(
				[]event.Event{reportsTo(at("day 0 09:00"), "A", "M")},
				selfWon("D1", "A", "day 31 10:00", "day 55 10:00", 300), // window (day 50, day 60]
				selfWon("D2", "A", "day 31 10:00", "day 45 10:00", 100), // previous window (day 40, day 50]
				selfWon("D3", "A", "day 31 10:00", "day 35 10:00", 900), // neither
			)...),
			// won 1, closed 1; growth 300/100 − 1 = 2.
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
				ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: f(2), TeamReps: 1}},
		},
	})
}

func TestManagerNameIsLatestNonEmptyName(t *testing.T) {
	runCases(t, []refCase{
		{
			name: "latest non-empty user.upserted name",
			events: history(
				reportsTo(at("day 0 09:00"), "A", "M"),
				named(at("day 3 09:00"), "M", "Maria Lopez"),
				named(at("day 1 09:00"), "M", "Maria"),
				named(at("day 5 09:00"), "M", ""), // an upsert without a name keeps the name
			),
			want: []Row{{ManagerID: "M", ManagerName: "Maria Lopez", WonDeals: 0, ClosedDeals: 0,
				ManagerClosedShare: nil, ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0,
				CoachingCoverage: f(0), RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
		{
			name:   "no name known: the id",
			events: history(reportsTo(at("day 0 09:00"), "A", "M")),
			want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 0, ClosedDeals: 0, ManagerClosedShare: nil,
				ManagerClosedRevenueShare: nil, TakeoverRate: nil, Takeovers: 0, CoachingCoverage: f(0),
				RepsCoached: 0, RepGrowth: nil, TeamReps: 1}},
		},
	})
}

// TestCalendarMonthComparesWithThePreviousCalendarMonth: with --period month, February 2026 is the window
// (Feb 1 00:00, Mar 1 00:00] (28 days) and rep_growth compares it with January, (Jan 1 00:00, Feb 1 00:00] (31
// days), not with the 28 days before February. Closes exactly at a month's start belong to the month before.
func TestCalendarMonthComparesWithThePreviousCalendarMonth(t *testing.T) {
	runCases(t, []refCase{{
		name:   "February against January",
		params: MonthParams(at("day 40 00:00"), nil),
		events: history(slices.Concat(
			[]event.Event{reportsTo(at("day 0 09:00"), "A", "M"), reportsTo(at("day 0 09:00"), "B", "M")},
			selfWon("A0", "A", "day 1 10:00", "day 20 10:00", 100),  // January
			selfWon("A1", "A", "day 1 10:00", "day 31 00:00", 50),   // Feb 1 00:00: still January
			selfWon("A2", "A", "day 35 10:00", "day 59 00:00", 300), // Mar 1 00:00: still February
			selfWon("B0", "B", "day 1 10:00", "day 2 12:00", 200),   // Jan 3: January, not in the 28 days before Feb
			selfWon("B1", "B", "day 35 10:00", "day 40 10:00", 100), // February
		)...),
		// February: A2 and B1, both self-closed: won 2, closed 2, share 0, revenue share 0/400, rate 0/2, team A, B,
		// no coaching. rep_growth: A 300/(100+50) − 1 = 1; B 100/200 − 1 = −0.5; median (−0.5 + 1)/2 = 0.25.
		want: []Row{{ManagerID: "M", ManagerName: "M", WonDeals: 2, ClosedDeals: 2, ManagerClosedShare: f(0),
			ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0),
			RepsCoached: 0, RepGrowth: f(0.25), TeamReps: 2}},
	}})
}

func TestMonthsListsTheCalendarMonthsStartingInTheRange(t *testing.T) {
	got := Months(time.Date(2025, 11, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	want := []time.Time{time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("Months = %v, want %v (from's month included, to's month excluded when to is its first instant)",
			got, want)
	}
	p := MonthParams(time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), nil) // leap year: February has 29 days
	if p.Window != 31*24*time.Hour || p.PrevWindow != 29*24*time.Hour ||
		!p.AsOf.Equal(time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("MonthParams(March 2024) = %+v, want as-of April 1, window 31 days, previous window 29 days", p)
	}
}
