package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
)

// day returns 2026-MM-DD hh:00 UTC.
func day(month time.Month, d, hour int) time.Time {
	return time.Date(2026, month, d, hour, 0, 0, 0, time.UTC)
}

// handScenario is a small org whose indicators are computed by hand below. Window: (2026-03-01, 2026-03-31].
//
//	M1 "Maria" manages R1 and R2; M2 "Omar" manages R3 (all from Jan 1).
//	D0: R1 creates (500), wins on Feb 10            → previous window, R1 self-closed 500
//	D1: R1 creates (1000), wins on Mar 10           → rep-closed deal; the close is delivered twice
//	D2: R2 creates (5000), M1 takes it over Mar 8, M1 wins Mar 12 → takeover then manager close
//	D3: R1 creates (2000), hands it to R2 Mar 9, R2 loses Mar 15  → handoff between reps: no takeover
//	D4: R3 creates (3000) Mar 3, wins Mar 20; its deal.created is delivered after its close (late)
//	A1: M1 coaches R1 on Mar 15 (coaching_session)
//
// By hand, for M1: won_deals 2 (D1, D2); closed_deals 3 (D1, D2, D3); manager_closed_share 1/2 (D2 closed by M1);
// manager_closed_revenue_share 5000/6000; takeover_rate 1/3 (D2); takeovers 1; team_reps 2 (R1, R2);
// reps_coached 1 (R1), coaching_coverage 1/2; rep_growth: R1 1000/500 − 1 = 1 (R2 had nothing before) → 1.
// For M2: won 1, closed 1, both shares 0, takeover_rate 0, takeovers 0, team 1, coverage 0, rep_growth null.
func handScenario() []event.Event {
	src := "crm/e2e"
	n := 0
	ev := func(typ string, t time.Time, d event.Data) event.Event {
		n++
		return event.Event{Source: src, ID: fmt.Sprintf("evt-%02d", n), Type: typ, Time: t, Data: d}
	}
	amt := func(v float64) *float64 { return &v }
	jan1 := day(time.January, 1, 9)
	var evs []event.Event
	for _, u := range []struct{ id, name, manager string }{{"M1", "Maria", ""}, {"M2", "Omar", ""},
		{"R1", "Rita", "M1"}, {"R2", "Raj", "M1"}, {"R3", "Rosa", "M2"}} {
		evs = append(evs, ev(event.UserUpserted, jan1, event.Data{UserID: u.id, Name: u.name}))
		if u.manager != "" {
			evs = append(evs, ev(event.UserManagerChanged, jan1, event.Data{UserID: u.id, ManagerID: event.Ptr(u.manager)}))
		}
	}
	won := event.Data{Outcome: event.OutcomeWon}
	withDeal := func(d event.Data, id string) event.Data { d.DealID = id; return d }
	evs = append(evs,
		ev(event.DealCreated, day(time.February, 1, 10), event.Data{DealID: "D0", OwnerID: "R1", Amount: amt(500)}),
		ev(event.DealClosed, day(time.February, 10, 10), withDeal(won, "D0")),
		ev(event.DealCreated, day(time.March, 5, 10), event.Data{DealID: "D1", OwnerID: "R1", Amount: amt(1000)}),
	)
	d1Close := ev(event.DealClosed, day(time.March, 10, 10), withDeal(won, "D1"))
	evs = append(evs, d1Close, d1Close, // duplicated delivery
		ev(event.DealCreated, day(time.March, 6, 10), event.Data{DealID: "D2", OwnerID: "R2", Amount: amt(5000)}),
		ev(event.DealOwnerChanged, day(time.March, 8, 10), event.Data{DealID: "D2", OwnerID: "M1", PreviousOwnerID: "R2", ChangedBy: "M1"}),
		ev(event.DealClosed, day(time.March, 12, 10), event.Data{DealID: "D2", Outcome: event.OutcomeWon, Amount: amt(5000)}),
		ev(event.DealCreated, day(time.March, 7, 10), event.Data{DealID: "D3", OwnerID: "R1", Amount: amt(2000)}),
		ev(event.DealOwnerChanged, day(time.March, 9, 10), event.Data{DealID: "D3", OwnerID: "R2", PreviousOwnerID: "R1", ChangedBy: "R1"}),
		ev(event.DealClosed, day(time.March, 15, 10), event.Data{DealID: "D3", Outcome: event.OutcomeLost}),
		ev(event.ActivityLogged, day(time.March, 15, 11), event.Data{ActivityID: "A1", Kind: "coaching_session", ActorID: "M1", SubjectUserIDs: []string{"R1"}}),
	)
	d4Created := ev(event.DealCreated, day(time.March, 3, 10), event.Data{DealID: "D4", OwnerID: "R3", Amount: amt(3000)})
	evs = append(evs, ev(event.DealClosed, day(time.March, 20, 10), withDeal(won, "D4")), d4Created) // late arrival
	return evs
}

func f(v float64) *float64 { return &v }

var handExpected = []indicator.Row{
	{ManagerID: "M1", ManagerName: "Maria", WonDeals: 2, ClosedDeals: 3, ManagerClosedShare: f(0.5),
		ManagerClosedRevenueShare: f(5000.0 / 6000.0), TakeoverRate: f(1.0 / 3.0), Takeovers: 1,
		CoachingCoverage: f(0.5), RepsCoached: 1, RepGrowth: f(1), TeamReps: 2},
	{ManagerID: "M2", ManagerName: "Omar", WonDeals: 1, ClosedDeals: 1, ManagerClosedShare: f(0),
		ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), Takeovers: 0, CoachingCoverage: f(0), RepsCoached: 0,
		RepGrowth: nil, TeamReps: 1},
}

// TestEndToEndThroughKafkaAndClickHouse produces the hand-written scenario and two bad messages to the real Kafka,
// runs `leadthrough migrate`, `ingest` and `indicators --format json` against the real ClickHouse, and checks the
// figures computed by hand and the dead letters.
func TestEndToEndThroughKafkaAndClickHouse(t *testing.T) {
	env := pipelinetest.Reserve(t, "e2e") // leadthrough migrate creates the database
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kafkaAddr, topic := env.Kafka, env.Name("e2e.events.")
	chFlags := []string{"--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database}

	if err := runMigrate(ctx, chFlags, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	evs := handScenario()
	var msgs []kafka.Message
	for _, e := range evs {
		v, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.Key()), Value: v})
	}
	msgs = append(msgs[:5:5], append([]kafka.Message{
		{Key: []byte("bad-1"), Value: []byte(`{"specversion":"1.0","id":"x1",`)},
		{Key: []byte("bad-2"), Value: []byte(`{"specversion":"1.0","id":"x2","source":"crm/e2e","type":"deal.amount_changed",` +
			`"time":"2026-03-04T10:00:00Z","data":{"deal_id":"D1","amount":-5}}`)},
	}, msgs[5:]...)...)
	env.PublishRaw(ctx, t, topic, msgs)

	worker := env.Start(ctx, t, func(ctx context.Context) error {
		return runIngest(ctx, append(chFlags, "--brokers", kafkaAddr, "--topic", topic, "--group", env.Name("e2e-"),
			"--listen", "", "--flush-interval", "200ms", "--log-level", "warn"), io.Discard, io.Discard)
	})
	env.Open(t)
	want := uint64(len(evs) - 1) // one duplicate
	worker.WaitStored(ctx, t, want)
	worker.Stop(t)

	var out bytes.Buffer
	if err := runIndicators(ctx, append(chFlags, "--as-of", "2026-03-31T00:00:00Z", "--window", "30d", "--format", "json"),
		&out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var got []indicator.Row
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("indicators JSON: %v\n%s", err, out.String())
	}
	if diff := diffRows(got, handExpected); diff != "" {
		t.Errorf("indicators differ from the hand computation:\n%s\nJSON:\n%s", diff, out.String())
	}
	// JSON names and nulls exactly as in DESIGN.md.
	for _, name := range []string{`"manager_id"`, `"manager_name"`, `"won_deals"`, `"closed_deals"`, `"manager_closed_share"`,
		`"manager_closed_revenue_share"`, `"takeover_rate"`, `"takeovers"`, `"coaching_coverage"`, `"reps_coached"`,
		`"rep_growth": null`, `"team_reps"`} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("indicators JSON lacks %s", name)
		}
	}

	// --period month: one row per manager and calendar month, each equal to the reference model's for that month.
	out.Reset()
	if err := runIndicators(ctx, append(chFlags, "--period", "month", "--from", "2026-02-10T00:00:00Z",
		"--to", "2026-04-01T00:00:00Z", "--format", "json"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var months []indicator.PeriodRow
	if err := json.Unmarshal(out.Bytes(), &months); err != nil || !strings.Contains(out.String(), `"period_start": "2026-02-01T00:00:00Z"`) {
		t.Fatalf("monthly JSON (%v) lacks period_start as RFC 3339:\n%s", err, out.String())
	}
	for _, m := range indicator.Months(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		p := indicator.MonthParams(m, nil)
		var gotMonth []indicator.Row
		for _, r := range months {
			if r.PeriodStart.Equal(p.Start()) && r.PeriodEnd.Equal(p.AsOf) {
				gotMonth = append(gotMonth, r.Row)
			}
		}
		want := indicator.Reference(evs, p)
		if len(want) == 0 {
			t.Fatalf("the hand scenario has no manager in %s", m.Format("2006-01"))
		}
		if diff := diffRows(gotMonth, want); diff != "" {
			t.Errorf("%s differs from the reference model:\n%s", m.Format("January 2006"), diff)
		}
	}

	dead := pipelinetest.ReadMessages(t, ctx, kafkaAddr, topic+".dlq", 2)
	reasons := map[string]bool{}
	for _, m := range dead {
		h := pipelinetest.Headers(m)
		reasons[h["leadthrough-reason"]] = true
		if h["leadthrough-original-topic"] != topic || h["leadthrough-error"] == "" || h["leadthrough-original-offset"] == "" {
			t.Errorf("dead letter %q lacks provenance headers: %v", m.Value, h)
		}
	}
	if !reasons["malformed_json"] || !reasons["negative_amount"] {
		t.Errorf("dead-letter reasons %v, want malformed_json and negative_amount", reasons)
	}
}

func diffRows(got, want []indicator.Row) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "%d rows, want %d\n", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if !rowsEqual(got[i], want[i]) {
			fmt.Fprintf(&b, "got  %s\nwant %s\n", g, w)
		}
	}
	return b.String()
}

func rowsEqual(a, b indicator.Row) bool {
	eq := func(x, y *float64) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return math.Abs(*x-*y) < 1e-9
	}
	return a.ManagerID == b.ManagerID && a.ManagerName == b.ManagerName && a.WonDeals == b.WonDeals &&
		a.ClosedDeals == b.ClosedDeals && eq(a.ManagerClosedShare, b.ManagerClosedShare) &&
		eq(a.ManagerClosedRevenueShare, b.ManagerClosedRevenueShare) && eq(a.TakeoverRate, b.TakeoverRate) &&
		a.Takeovers == b.Takeovers && eq(a.CoachingCoverage, b.CoachingCoverage) && a.RepsCoached == b.RepsCoached &&
		eq(a.RepGrowth, b.RepGrowth) && a.TeamReps == b.TeamReps
}
