package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadthrough/leadthrough/indicator"
)

// promotedFixture is one manager promoted from rep 75 days before t0, so 2 whole 30-day periods ago.
var promotedFixture = []indicator.Promotion{{
	ManagerID: "M-1", ManagerName: "Ada Lovelace", PromotedAt: t0.Add(-75 * 24 * time.Hour), MonthsSincePromotion: 2,
	RepWonDeals: 9, RepWonAmount: 120_000, RepRank: new(int64(1)), RepsRanked: 12,
}}

// promotionsAt returns the fixture and records the as_of it was asked for.
func promotionsAt(asked *time.Time, ps []indicator.Promotion) PromotionSourceFunc {
	return func(_ context.Context, asOf time.Time) ([]indicator.Promotion, error) {
		*asked = asOf
		return ps, nil
	}
}

const promotionExposition = `
# HELP leadthrough_manager_months_since_promotion Whole 30-day periods from this manager's promotion from rep (promoted_at, the start of their first stretch with a direct report, after owning deals as a rep) to as_of (months_since_promotion in DESIGN.md). Only promoted managers have a sample; 0 in the first 30 days.
# TYPE leadthrough_manager_months_since_promotion gauge
leadthrough_manager_months_since_promotion{manager_id="M-1",manager_name="Ada Lovelace"} 2
`

func TestMonthsSincePromotionHasOneSamplePerPromotedManagerAtTheRefreshAsOf(t *testing.T) {
	c := &clock{now: t0}
	var asked time.Time
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Promotions: promotionsAt(&asked, promotedFixture),
		Now: c.Now}, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := t0.Truncate(time.Second); !asked.Equal(want) {
		t.Errorf("promotions asked as of %s, want the refresh's as_of %s", asked, want)
	}
	if err := testutil.CollectAndCompare(r, strings.NewReader(promotionExposition),
		"leadthrough_manager_months_since_promotion"); err != nil {
		t.Error(err)
	}
	// Only the months since promotion reach Prometheus: the record as a rep stays out, and nothing else changes.
	if n := testutil.CollectAndCount(r); n != testutil.CollectAndCount(newRefreshed(t, nil))+1 {
		t.Errorf("%d samples, want one more than without promotions", n)
	}
	if got, asOf := r.Promotions(); len(got) != 1 || got[0].ManagerID != "M-1" || !asOf.Equal(t0.Truncate(time.Second)) {
		t.Errorf("Promotions() = %v as of %s", got, asOf)
	}
}

// newRefreshed is a refresher of the fixture, refreshed once at t0, with the given promotions source.
func newRefreshed(t *testing.T, ps PromotionSource) *Refresher {
	t.Helper()
	c := &clock{now: t0}
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Promotions: ps, Now: c.Now}, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNoPromotionSourceAndNoPromotionsExposeNoMonthsSincePromotion(t *testing.T) {
	for name, ps := range map[string]PromotionSource{
		"no source":     nil,
		"no promotions": PromotionSourceFunc(func(context.Context, time.Time) ([]indicator.Promotion, error) { return nil, nil }),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRefreshed(t, ps)
			if n := testutil.CollectAndCount(r, "leadthrough_manager_months_since_promotion"); n != 0 {
				t.Errorf("%d months_since_promotion samples, want none", n)
			}
		})
	}
}

func TestCollectorWithPromotionsPassesPedanticRegistryAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var asked time.Time
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Promotions: promotionsAt(&asked, promotedFixture)},
		reg)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	problems, err := testutil.CollectAndLint(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestFailingPromotionsFailTheRefreshAndKeepEverythingServed: a refresh is all or nothing, so the indicators and the
// months since promotion served always come from the same as_of.
func TestFailingPromotionsFailTheRefreshAndKeepEverythingServed(t *testing.T) {
	c := &clock{now: t0}
	fail := false
	source := PromotionSourceFunc(func(context.Context, time.Time) ([]indicator.Promotion, error) {
		if fail {
			return nil, errors.New("ClickHouse is away")
		}
		return promotedFixture, nil
	})
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Promotions: source, Now: c.Now}, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	fail = true
	c.Add(time.Minute)
	err := r.RefreshNow(context.Background())
	if err == nil || !strings.Contains(err.Error(), "promotions: ClickHouse is away") {
		t.Fatalf("RefreshNow = %v, want the promotions error", err)
	}
	if err := testutil.CollectAndCompare(r, strings.NewReader(promotionExposition+`
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total 1
`), "leadthrough_manager_months_since_promotion", "leadthrough_indicators_refresh_failures_total"); err != nil {
		t.Error(err)
	}
	if rows, asOf := r.Rows(); len(rows) != len(fixture) || !asOf.Equal(t0.Truncate(time.Second)) {
		t.Errorf("after the failure, serving %d rows as of %s, want the first refresh's", len(rows), asOf)
	}
}
