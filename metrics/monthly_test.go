package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadthrough/leadthrough/indicator"
)

// monthlyStore records the months asked for and saved, and fails the months listed in fail.
type monthlyStore struct {
	mu    sync.Mutex
	asked []string // "2026-03 (2026-03-01, 2026-04-01)" per MonthlyIndicators call
	saved []string // the period_start of every row saved
	fail  map[string]bool
	kinds []string
}

func (s *monthlyStore) MonthlyIndicators(_ context.Context, from, to time.Time, kinds []string) ([]indicator.PeriodRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := from.Format("2006-01")
	s.asked = append(s.asked, fmt.Sprintf("%s (%s, %s)", m, from.Format(time.DateOnly), to.Format(time.DateOnly)))
	s.kinds = kinds
	if s.fail[m] {
		return nil, errors.New("boom")
	}
	return []indicator.PeriodRow{{PeriodStart: from, PeriodEnd: to, Row: fixture[0]}}, nil
}

func (s *monthlyStore) SaveMonthly(_ context.Context, rows []indicator.PeriodRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.saved = append(s.saved, r.PeriodStart.Format("2006-01"))
	}
	return nil
}

// take returns the months asked for and saved since the last take.
func (s *monthlyStore) take() (asked, saved string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	asked, saved = strings.Join(s.asked, ", "), strings.Join(s.saved, " ")
	s.asked, s.saved = nil, nil
	return asked, saved
}

func newTestMonthly(t *testing.T, cfg MonthlyConfig, reg prometheus.Registerer) *Monthly {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	m, err := NewMonthly(cfg, reg)
	if err != nil {
		t.Fatalf("NewMonthly: %v", err)
	}
	return m
}

const monthlyMetrics = "leadthrough_monthly_indicators_last_success_timestamp_seconds leadthrough_monthly_indicators_refresh_failures_total"

// TestMonthlyBackfillsThenKeepsTheCurrentAndPreviousMonth: the first pass computes the last 12 calendar months, the
// current one included, newest first, each as its own window [start of M, start of M+1); later passes the current
// and the previous month, which moves on when the month changes.
func TestMonthlyBackfillsThenKeepsTheCurrentAndPreviousMonth(t *testing.T) {
	st := &monthlyStore{}
	c := &clock{now: time.Date(2026, 11, 30, 23, 50, 0, 0, time.UTC)}
	m := newTestMonthly(t, MonthlyConfig{Store: st, Now: c.Now, CoachingKinds: []string{"one_on_one"}}, nil)
	ctx := context.Background()

	if err := m.PassNow(ctx); err != nil {
		t.Fatal(err)
	}
	asked, saved := st.take()
	if want := "2026-11 (2026-11-01, 2026-12-01), 2026-10 (2026-10-01, 2026-11-01), 2026-09 (2026-09-01, 2026-10-01), " +
		"2026-08 (2026-08-01, 2026-09-01), 2026-07 (2026-07-01, 2026-08-01), 2026-06 (2026-06-01, 2026-07-01), " +
		"2026-05 (2026-05-01, 2026-06-01), 2026-04 (2026-04-01, 2026-05-01), 2026-03 (2026-03-01, 2026-04-01), " +
		"2026-02 (2026-02-01, 2026-03-01), 2026-01 (2026-01-01, 2026-02-01), 2025-12 (2025-12-01, 2026-01-01)"; asked != want {
		t.Errorf("first pass computed %s\nwant %s", asked, want)
	}
	if want := "2026-11 2026-10 2026-09 2026-08 2026-07 2026-06 2026-05 2026-04 2026-03 2026-02 2026-01 2025-12"; saved != want {
		t.Errorf("first pass saved %s, want %s", saved, want)
	}
	if fmt.Sprint(st.kinds) != "[one_on_one]" {
		t.Errorf("coaching kinds %v, want [one_on_one]", st.kinds)
	}

	if err := m.PassNow(ctx); err != nil {
		t.Fatal(err)
	}
	if asked, saved := st.take(); asked != "2026-11 (2026-11-01, 2026-12-01), 2026-10 (2026-10-01, 2026-11-01)" ||
		saved != "2026-11 2026-10" {
		t.Errorf("second pass computed %s and saved %s, want November and October", asked, saved)
	}

	c.Add(15 * time.Minute) // 1 December, 00:05
	if err := m.PassNow(ctx); err != nil {
		t.Fatal(err)
	}
	if asked, _ := st.take(); asked != "2026-12 (2026-12-01, 2027-01-01), 2026-11 (2026-11-01, 2026-12-01)" {
		t.Errorf("pass in December computed %s, want December and November", asked)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(fmt.Sprintf(`
# HELP leadthrough_monthly_indicators_last_success_timestamp_seconds Unix time at which the calendar months of monthly_indicators (Grafana's trend panels) were last recomputed and saved without error; 0 before the first time.
# TYPE leadthrough_monthly_indicators_last_success_timestamp_seconds gauge
leadthrough_monthly_indicators_last_success_timestamp_seconds %d
# HELP leadthrough_monthly_indicators_refresh_failures_total Passes of the monthly refresh in which a calendar month could not be computed or saved to monthly_indicators; the months saved before stay in place.
# TYPE leadthrough_monthly_indicators_refresh_failures_total counter
leadthrough_monthly_indicators_refresh_failures_total 0
`, c.Now().Unix())), strings.Fields(monthlyMetrics)...); err != nil {
		t.Error(err)
	}
}

// TestMonthlyFailureSkipsOnlyThatMonthAndRetriesTheBackfill: a month that fails is logged and counted, the other
// months are still computed and saved, and since the backfill did not complete, the next pass does it all again.
func TestMonthlyFailureSkipsOnlyThatMonthAndRetriesTheBackfill(t *testing.T) {
	st := &monthlyStore{fail: map[string]bool{"2026-02": true}}
	c := &clock{now: time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)}
	var logs strings.Builder
	m := newTestMonthly(t, MonthlyConfig{Store: st, Now: c.Now, BackfillMonths: 3,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	ctx := context.Background()

	err := m.PassNow(ctx)
	if err == nil || !strings.Contains(err.Error(), "month 2026-02: compute: boom") {
		t.Fatalf("PassNow = %v, want February's failure", err)
	}
	if _, saved := st.take(); saved != "2026-03 2026-01" {
		t.Errorf("saved %s, want March and January despite February", saved)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "month 2026-02") {
		t.Errorf("no warning for February in the log:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(collectorOf(m, "leadthrough_monthly_indicators_refresh_failures_total")); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
	if got := testutil.ToFloat64(collectorOf(m, "leadthrough_monthly_indicators_last_success_timestamp_seconds")); got != 0 {
		t.Errorf("last success %v, want 0 before a pass without failure", got)
	}

	st.fail = nil
	if err := m.PassNow(ctx); err != nil {
		t.Fatal(err)
	}
	if asked, _ := st.take(); !strings.HasPrefix(asked, "2026-03") || strings.Count(asked, "(") != 3 {
		t.Errorf("after a failed backfill, the next pass computed %s, want the 3 months again", asked)
	}
	if err := m.PassNow(ctx); err != nil {
		t.Fatal(err)
	}
	if asked, _ := st.take(); strings.Count(asked, "(") != 2 {
		t.Errorf("once backfilled, a pass computed %s, want 2 months", asked)
	}
}

func TestMonthlyCollectorPassesPedanticRegistryAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newTestMonthly(t, MonthlyConfig{Store: &monthlyStore{}}, reg)
	if err := m.PassNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if _, err := NewMonthly(MonthlyConfig{}, nil); !errors.Is(err, ErrNoMonthlyStore) {
		t.Errorf("NewMonthly without a store = %v, want ErrNoMonthlyStore", err)
	}
}

func TestMonthlyRunPassesAtOnceThenEveryIntervalUntilCancelled(t *testing.T) {
	st := &monthlyStore{}
	m := newTestMonthly(t, MonthlyConfig{Store: st, Interval: 2 * time.Millisecond, BackfillMonths: 1}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.saved)
		st.mu.Unlock()
		if n >= 5 { // the backfill (1 month), then 2 months per pass
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d months saved after 10s", n)
		}
		time.Sleep(time.Millisecond)
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
}

// collectorOf is the one metric of m named name, as a collector for testutil.ToFloat64.
func collectorOf(m *Monthly, name string) prometheus.Collector {
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 8)
		m.Collect(all)
		close(all)
		for x := range all {
			if strings.Contains(x.Desc().String(), `"`+name+`"`) {
				ch <- x
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
