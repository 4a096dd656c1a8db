package metrics

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadthrough/leadthrough/indicator"
)

// t0 has a fractional second, so tests see the as-of truncation.
var t0 = time.Date(2026, 3, 31, 12, 0, 0, 750_000_000, time.UTC)

func f(v float64) *float64 { return &v }

// fixture has a manager with every indicator and one whose ratios are partly null.
var fixture = []indicator.Row{
	{
		ManagerID: "M-1", ManagerName: "Ada Lovelace", WonDeals: 4, ClosedDeals: 6,
		ManagerClosedShare: f(0.25), ManagerClosedRevenueShare: f(0.4), TakeoverRate: f(0.5), Takeovers: 3,
		CoachingCoverage: f(0.75), RepsCoached: 3, RepGrowth: f(-0.125), TeamReps: 4,
	},
	{
		ManagerID: "M-2", ManagerName: "Grace Hopper", WonDeals: 0, ClosedDeals: 1,
		ManagerClosedShare: nil, ManagerClosedRevenueShare: nil, TakeoverRate: f(0), Takeovers: 0,
		CoachingCoverage: f(0.5), RepsCoached: 1, RepGrowth: nil, TeamReps: 2,
	},
}

// clock is a settable Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var quiet = slog.New(slog.DiscardHandler)

func rowsSource(rows []indicator.Row) SourceFunc {
	return func(context.Context, indicator.Params) ([]indicator.Row, error) { return rows, nil }
}

func newTestRefresher(t *testing.T, cfg RefresherConfig, reg prometheus.Registerer) *Refresher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	r, err := NewRefresher(cfg, reg)
	if err != nil {
		t.Fatalf("NewRefresher: %v", err)
	}
	return r
}

const fixtureExposition = `
# HELP leadthrough_manager_won_deals Deals won in the indicator window (as_of - W, as_of] whose team manager M(d) is this manager (won_deals in DESIGN.md).
# TYPE leadthrough_manager_won_deals gauge
leadthrough_manager_won_deals{manager_id="M-1",manager_name="Ada Lovelace"} 4
leadthrough_manager_won_deals{manager_id="M-2",manager_name="Grace Hopper"} 0
# HELP leadthrough_manager_closed_deals Deals closed, won or lost, in the indicator window (as_of - W, as_of] whose team manager M(d) is this manager (closed_deals in DESIGN.md).
# TYPE leadthrough_manager_closed_deals gauge
leadthrough_manager_closed_deals{manager_id="M-1",manager_name="Ada Lovelace"} 6
leadthrough_manager_closed_deals{manager_id="M-2",manager_name="Grace Hopper"} 1
# HELP leadthrough_manager_closed_share_ratio Share (0-1) of this manager's won deals in the window that the manager closed personally, closer C(d) = M(d) (manager_closed_share in DESIGN.md). No sample when won_deals is 0.
# TYPE leadthrough_manager_closed_share_ratio gauge
leadthrough_manager_closed_share_ratio{manager_id="M-1",manager_name="Ada Lovelace"} 0.25
# HELP leadthrough_manager_closed_revenue_share_ratio Share (0-1) of the won amount of this manager's deals in the window that the manager closed personally (manager_closed_revenue_share in DESIGN.md). No sample when the won amount is 0.
# TYPE leadthrough_manager_closed_revenue_share_ratio gauge
leadthrough_manager_closed_revenue_share_ratio{manager_id="M-1",manager_name="Ada Lovelace"} 0.4
# HELP leadthrough_manager_takeover_ratio Share (0-1) of this manager's deals closed in the window that the manager took over from a direct report before the close (takeover_rate in DESIGN.md). No sample when closed_deals is 0.
# TYPE leadthrough_manager_takeover_ratio gauge
leadthrough_manager_takeover_ratio{manager_id="M-1",manager_name="Ada Lovelace"} 0.5
leadthrough_manager_takeover_ratio{manager_id="M-2",manager_name="Grace Hopper"} 0
# HELP leadthrough_manager_takeovers Takeovers by this manager in the window: owner changes of open deals from a direct report to the manager (takeovers in DESIGN.md). A count over the window, not a running total.
# TYPE leadthrough_manager_takeovers gauge
leadthrough_manager_takeovers{manager_id="M-1",manager_name="Ada Lovelace"} 3
leadthrough_manager_takeovers{manager_id="M-2",manager_name="Grace Hopper"} 0
# HELP leadthrough_manager_coaching_coverage_ratio Share (0-1) of this manager's team reps in the window who had at least one coaching activity by the manager in the window (coaching_coverage in DESIGN.md). No sample when the team is empty.
# TYPE leadthrough_manager_coaching_coverage_ratio gauge
leadthrough_manager_coaching_coverage_ratio{manager_id="M-1",manager_name="Ada Lovelace"} 0.75
leadthrough_manager_coaching_coverage_ratio{manager_id="M-2",manager_name="Grace Hopper"} 0.5
# HELP leadthrough_manager_reps_coached Reps in this manager's team in the window who had at least one coaching activity by the manager in the window (reps_coached in DESIGN.md).
# TYPE leadthrough_manager_reps_coached gauge
leadthrough_manager_reps_coached{manager_id="M-1",manager_name="Ada Lovelace"} 3
leadthrough_manager_reps_coached{manager_id="M-2",manager_name="Grace Hopper"} 1
# HELP leadthrough_manager_rep_growth Median over this manager's team reps of the relative change of their self-closed won amount, window over previous window (0.25 = +25%, negative = decline; rep_growth in DESIGN.md). No sample when no rep had a self-closed won amount in the previous window.
# TYPE leadthrough_manager_rep_growth gauge
leadthrough_manager_rep_growth{manager_id="M-1",manager_name="Ada Lovelace"} -0.125
# HELP leadthrough_manager_team_reps Reps who reported to this manager at some time in the window while having no direct reports (team_reps in DESIGN.md).
# TYPE leadthrough_manager_team_reps gauge
leadthrough_manager_team_reps{manager_id="M-1",manager_name="Ada Lovelace"} 4
leadthrough_manager_team_reps{manager_id="M-2",manager_name="Grace Hopper"} 2
# HELP leadthrough_indicators_window_seconds Length W of the indicator window (as_of - W, as_of] of every leadthrough_manager_* series.
# TYPE leadthrough_indicators_window_seconds gauge
leadthrough_indicators_window_seconds 604800
# HELP leadthrough_indicators_as_of_timestamp_seconds Unix time as_of, the end of the window of the leadthrough_manager_* series being served. No sample before the first successful refresh.
# TYPE leadthrough_indicators_as_of_timestamp_seconds gauge
leadthrough_indicators_as_of_timestamp_seconds 1.7749584e+09
# HELP leadthrough_indicators_last_success_timestamp_seconds Unix time at which the last successful indicator refresh finished; 0 before the first one. Failed refreshes leave it, and the values served, unchanged.
# TYPE leadthrough_indicators_last_success_timestamp_seconds gauge
leadthrough_indicators_last_success_timestamp_seconds 1.77495840075e+09
# HELP leadthrough_indicators_refresh_duration_seconds Duration of the last indicator refresh attempt, successful or not. No sample before the first attempt.
# TYPE leadthrough_indicators_refresh_duration_seconds gauge
leadthrough_indicators_refresh_duration_seconds 0
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total 0
# HELP leadthrough_indicators_save_failures_total Successful indicator refreshes that could not be saved to ClickHouse for Grafana (team_indicators); the leadthrough_manager_* series are updated regardless.
# TYPE leadthrough_indicators_save_failures_total counter
leadthrough_indicators_save_failures_total 0
# HELP leadthrough_indicators_managers Managers in the last successful indicator refresh, each with its own leadthrough_manager_* series; 0 before the first success.
# TYPE leadthrough_indicators_managers gauge
leadthrough_indicators_managers 2
`

func TestCollectorExposesCachedIndicatorsAndOmitsNullRatios(t *testing.T) {
	c := &clock{now: t0}
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Window: 7 * 24 * time.Hour, Now: c.Now}, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(r, strings.NewReader(fixtureExposition)); err != nil {
		t.Error(err)
	}
}

func TestCollectorBeforeFirstRefreshExposesOnlyStatus(t *testing.T) {
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture)}, nil)
	want := `
# HELP leadthrough_indicators_last_success_timestamp_seconds Unix time at which the last successful indicator refresh finished; 0 before the first one. Failed refreshes leave it, and the values served, unchanged.
# TYPE leadthrough_indicators_last_success_timestamp_seconds gauge
leadthrough_indicators_last_success_timestamp_seconds 0
# HELP leadthrough_indicators_managers Managers in the last successful indicator refresh, each with its own leadthrough_manager_* series; 0 before the first success.
# TYPE leadthrough_indicators_managers gauge
leadthrough_indicators_managers 0
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total 0
# HELP leadthrough_indicators_save_failures_total Successful indicator refreshes that could not be saved to ClickHouse for Grafana (team_indicators); the leadthrough_manager_* series are updated regardless.
# TYPE leadthrough_indicators_save_failures_total counter
leadthrough_indicators_save_failures_total 0
# HELP leadthrough_indicators_window_seconds Length W of the indicator window (as_of - W, as_of] of every leadthrough_manager_* series.
# TYPE leadthrough_indicators_window_seconds gauge
leadthrough_indicators_window_seconds 2.592e+06
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestCollectorPassesPedanticRegistryAndLint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refresh bool
	}{
		{"before first refresh", false},
		{"after refresh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture)}, reg)
			if tc.refresh {
				if err := r.RefreshNow(context.Background()); err != nil {
					t.Fatal(err)
				}
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
		})
	}
}

func TestNewRefresherRejectsMissingSourceAndDoubleRegistration(t *testing.T) {
	if _, err := NewRefresher(RefresherConfig{}, nil); !errors.Is(err, ErrNoSource) {
		t.Errorf("no source: got %v, want ErrNoSource", err)
	}
	reg := prometheus.NewRegistry()
	newTestRefresher(t, RefresherConfig{Source: rowsSource(nil)}, reg)
	if _, err := NewRefresher(RefresherConfig{Source: rowsSource(nil), Logger: quiet}, reg); err == nil {
		t.Error("second registration on the same registry: got nil error")
	}
}

func TestRefreshAsksForWindowEndingAtNow(t *testing.T) {
	for _, tc := range []struct {
		name       string
		window     time.Duration
		kinds      []string
		now        time.Time
		wantAsOf   time.Time
		wantWindow time.Duration
	}{
		{
			name: "default window, as-of truncated to the second", now: t0,
			wantAsOf: time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), wantWindow: indicator.DefaultWindow,
		},
		{
			name: "configured window and coaching kinds", window: 7 * 24 * time.Hour, kinds: []string{"one_on_one"},
			now:      time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.FixedZone("CET", 3600)),
			wantAsOf: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC), wantWindow: 7 * 24 * time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []indicator.Params
			src := SourceFunc(func(_ context.Context, p indicator.Params) ([]indicator.Row, error) {
				got = append(got, p)
				return fixture, nil
			})
			var saved []indicator.Params
			saver := SaverFunc(func(_ context.Context, p indicator.Params, rows []indicator.Row) error {
				saved = append(saved, p)
				if len(rows) != len(fixture) {
					t.Errorf("saver got %d rows, want %d", len(rows), len(fixture))
				}
				return nil
			})
			r := newTestRefresher(t, RefresherConfig{
				Source: src, Saver: saver, Window: tc.window, CoachingKinds: tc.kinds,
				Now: func() time.Time { return tc.now },
			}, nil)
			if err := r.RefreshNow(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("source called %d times, want 1", len(got))
			}
			p := got[0]
			if !p.AsOf.Equal(tc.wantAsOf) || p.AsOf.Location() != time.UTC {
				t.Errorf("as-of = %s, want %s (UTC)", p.AsOf, tc.wantAsOf)
			}
			if p.Window != tc.wantWindow {
				t.Errorf("window = %s, want %s", p.Window, tc.wantWindow)
			}
			if !slices.Equal(p.CoachingKinds, tc.kinds) {
				t.Errorf("coaching kinds = %v, want %v", p.CoachingKinds, tc.kinds)
			}
			if len(saved) != 1 || !saved[0].AsOf.Equal(p.AsOf) || saved[0].Window != p.Window {
				t.Errorf("saver got %v, want one call with the source's params %v", saved, p)
			}
			if _, asOf := r.Rows(); !asOf.Equal(tc.wantAsOf) {
				t.Errorf("Rows as-of = %s, want %s", asOf, tc.wantAsOf)
			}
		})
	}
}

func TestFailingSourceKeepsLastGoodValuesUntilHealthGivesUp(t *testing.T) {
	c := &clock{now: t0}
	fail := false
	src := SourceFunc(func(context.Context, indicator.Params) ([]indicator.Row, error) {
		if fail {
			return nil, errors.New("clickhouse: connection refused")
		}
		return fixture, nil
	})
	r := newTestRefresher(t, RefresherConfig{Source: src, Now: c.Now}, nil)
	const maxAge = 5 * time.Minute

	if err := r.Healthy(maxAge); !errors.Is(err, ErrNeverRefreshed) {
		t.Errorf("before any refresh: Healthy = %v, want ErrNeverRefreshed", err)
	}
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAsOf := t0.Truncate(time.Second)

	fail = true
	for _, step := range []struct {
		advance      time.Duration
		wantFailures string
		wantHealthy  bool
	}{
		{time.Minute, "1", true},      // 1m after the last success
		{3 * time.Minute, "2", true},  // 4m
		{2 * time.Minute, "3", false}, // 6m > maxAge
	} {
		c.Add(step.advance)
		if err := r.RefreshNow(context.Background()); err == nil {
			t.Fatal("RefreshNow with a failing source returned nil")
		}
		rows, asOf := r.Rows()
		if !slices.EqualFunc(rows, fixture, func(a, b indicator.Row) bool { return a.ManagerID == b.ManagerID }) ||
			!asOf.Equal(wantAsOf) {
			t.Errorf("after failure: Rows = %d rows as of %s, want the last good %d rows as of %s",
				len(rows), asOf, len(fixture), wantAsOf)
		}
		want := `
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total ` + step.wantFailures + `
# HELP leadthrough_indicators_as_of_timestamp_seconds Unix time as_of, the end of the window of the leadthrough_manager_* series being served. No sample before the first successful refresh.
# TYPE leadthrough_indicators_as_of_timestamp_seconds gauge
leadthrough_indicators_as_of_timestamp_seconds 1.7749584e+09
# HELP leadthrough_indicators_last_success_timestamp_seconds Unix time at which the last successful indicator refresh finished; 0 before the first one. Failed refreshes leave it, and the values served, unchanged.
# TYPE leadthrough_indicators_last_success_timestamp_seconds gauge
leadthrough_indicators_last_success_timestamp_seconds 1.77495840075e+09
# HELP leadthrough_manager_won_deals Deals won in the indicator window (as_of - W, as_of] whose team manager M(d) is this manager (won_deals in DESIGN.md).
# TYPE leadthrough_manager_won_deals gauge
leadthrough_manager_won_deals{manager_id="M-1",manager_name="Ada Lovelace"} 4
leadthrough_manager_won_deals{manager_id="M-2",manager_name="Grace Hopper"} 0
`
		if err := testutil.CollectAndCompare(r, strings.NewReader(want),
			"leadthrough_indicators_refresh_failures_total", "leadthrough_indicators_as_of_timestamp_seconds",
			"leadthrough_indicators_last_success_timestamp_seconds", "leadthrough_manager_won_deals"); err != nil {
			t.Error(err)
		}
		err := r.Healthy(maxAge)
		if step.wantHealthy && err != nil {
			t.Errorf("%s after the last success: Healthy = %v, want nil", c.Now().Sub(t0), err)
		}
		if !step.wantHealthy {
			if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("%s after the last success: Healthy = %v, want ErrStale naming the last error",
					c.Now().Sub(t0), err)
			}
		}
	}

	fail = false
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Healthy(maxAge); err != nil {
		t.Errorf("after recovery: Healthy = %v, want nil", err)
	}
}

func TestRefreshTimesOutAndCountsAFailure(t *testing.T) {
	src := SourceFunc(func(ctx context.Context, _ indicator.Params) ([]indicator.Row, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	r := newTestRefresher(t, RefresherConfig{Source: src, Timeout: 5 * time.Millisecond}, nil)
	if err := r.RefreshNow(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RefreshNow = %v, want context.DeadlineExceeded", err)
	}
	want := `
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total 1
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want), "leadthrough_indicators_refresh_failures_total"); err != nil {
		t.Error(err)
	}
	if err := r.Healthy(time.Hour); !errors.Is(err, ErrNeverRefreshed) {
		t.Errorf("Healthy = %v, want ErrNeverRefreshed", err)
	}
}

func TestFailedSaveStillServesNewValuesAndIsCounted(t *testing.T) {
	saver := SaverFunc(func(context.Context, indicator.Params, []indicator.Row) error {
		return errors.New("table team_indicators is read-only")
	})
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Saver: saver}, nil)
	if err := r.RefreshNow(context.Background()); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("RefreshNow = %v, want the save error", err)
	}
	if rows, _ := r.Rows(); len(rows) != len(fixture) {
		t.Errorf("Rows = %d rows, want %d", len(rows), len(fixture))
	}
	if err := r.Healthy(time.Hour); err != nil {
		t.Errorf("Healthy = %v, want nil: the indicators are fresh", err)
	}
	want := `
# HELP leadthrough_indicators_refresh_failures_total Indicator refreshes that failed (query error or timeout); the previous values stay served.
# TYPE leadthrough_indicators_refresh_failures_total counter
leadthrough_indicators_refresh_failures_total 0
# HELP leadthrough_indicators_save_failures_total Successful indicator refreshes that could not be saved to ClickHouse for Grafana (team_indicators); the leadthrough_manager_* series are updated regardless.
# TYPE leadthrough_indicators_save_failures_total counter
leadthrough_indicators_save_failures_total 1
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want),
		"leadthrough_indicators_refresh_failures_total", "leadthrough_indicators_save_failures_total"); err != nil {
		t.Error(err)
	}
}

func TestRunRefreshesAtOnceThenEveryIntervalUntilCancelled(t *testing.T) {
	calls := make(chan indicator.Params, 16)
	src := SourceFunc(func(_ context.Context, p indicator.Params) ([]indicator.Row, error) {
		select {
		case calls <- p:
		default:
		}
		return fixture, nil
	})
	r := newTestRefresher(t, RefresherConfig{Source: src, Interval: 2 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	for i := range 3 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("refresh %d did not happen", i+1)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := r.Healthy(time.Hour); err != nil {
		t.Errorf("Healthy = %v, want nil", err)
	}
}
