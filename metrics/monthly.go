package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/schedule"
)

// MonthlyStore computes calendar months and keeps them for Grafana (table monthly_indicators); *store.Store is one.
type MonthlyStore interface {
	MonthlyIndicators(ctx context.Context, from, to time.Time, coachingKinds []string) ([]indicator.PeriodRow, error)
	SaveMonthly(ctx context.Context, rows []indicator.PeriodRow) error
}

// Defaults of MonthlyConfig.
const (
	DefaultMonthlyInterval = 15 * time.Minute
	DefaultMonthlyTimeout  = 5 * time.Minute
	DefaultBackfillMonths  = 12
)

// ErrNoMonthlyStore is returned by NewMonthly when MonthlyConfig.Store is nil.
var ErrNoMonthlyStore = errors.New("metrics: no monthly store configured")

// MonthlyConfig configures NewMonthly. Only Store is required.
type MonthlyConfig struct {
	// Store computes each month (one attribution run over the whole month) and saves its rows.
	//
	// Required; NewMonthly returns ErrNoMonthlyStore without it.
	Store MonthlyStore

	// Interval is the time between the starts of two passes in Run. Each pass recomputes the current month and the
	// previous one (late events can still change it), each a full attribution run of a month: far more work than
	// a refresh of the rolling window, and a trend by month needs no minute-by-minute freshness.
	//
	// Default: 15m (DefaultMonthlyInterval).
	Interval time.Duration

	// BackfillMonths is how many calendar months, the current one included, the first pass computes. Until a
	// pass has computed and saved all of them, every pass tries them all again.
	//
	// Default: 12 (DefaultBackfillMonths).
	BackfillMonths int

	// CoachingKinds are the activity kinds that count as coaching.
	//
	// Default: nil, which the Store reads as event.DefaultCoachingKinds.
	CoachingKinds []string

	// Timeout bounds the computation and save of one month.
	//
	// Default: 5m (DefaultMonthlyTimeout).
	Timeout time.Duration

	// Now tells the time: it picks the current month. Tests replace it.
	//
	// Default: time.Now.
	Now func() time.Time

	// Logger receives a WARN per month that failed, INFO when the backfill is done and on recovery, DEBUG
	// otherwise.
	//
	// Default: slog.Default().
	Logger *slog.Logger
}

func (cfg MonthlyConfig) withDefaults() (MonthlyConfig, error) {
	if cfg.Store == nil {
		return cfg, ErrNoMonthlyStore
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultMonthlyInterval
	}
	if cfg.BackfillMonths <= 0 {
		cfg.BackfillMonths = DefaultBackfillMonths
	}
	cfg.CoachingKinds = slices.Clone(cfg.CoachingKinds)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultMonthlyTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// Monthly keeps the indicators of calendar months current in ClickHouse for Grafana's trend panels: on its first
// pass it computes the last BackfillMonths months, then on each pass the current and the previous month. It is a
// prometheus.Collector of its own health; nothing per manager goes to Prometheus from here.
type Monthly struct {
	cfg MonthlyConfig

	lastSuccessDesc, failuresDesc *prometheus.Desc

	passing sync.Mutex // serialises passes

	mu          sync.Mutex
	backfilled  bool
	lastSuccess time.Time // zero until a pass computed and saved every month it tried
	failures    uint64
	failing     bool // the last pass failed
}

// NewMonthly creates a Monthly and registers it on reg; a nil reg leaves it unregistered. It computes nothing: call
// Run or PassNow.
func NewMonthly(cfg MonthlyConfig, reg prometheus.Registerer) (*Monthly, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Monthly{cfg: cfg,
		lastSuccessDesc: prometheus.NewDesc("leadthrough_monthly_indicators_last_success_timestamp_seconds",
			"Unix time at which the calendar months of monthly_indicators (Grafana's trend panels) were last "+
				"recomputed and saved without error; 0 before the first time.", nil, nil),
		failuresDesc: prometheus.NewDesc("leadthrough_monthly_indicators_refresh_failures_total",
			"Passes of the monthly refresh in which a calendar month could not be computed or saved to "+
				"monthly_indicators; the months saved before stay in place.", nil, nil),
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("metrics: register monthly collector: %w", err)
		}
	}
	return m, nil
}

// Run passes at once and then every Interval until ctx is done, and returns nil then. Failures are logged and
// counted, never returned: the next pass tries again.
func (m *Monthly) Run(ctx context.Context) error {
	return schedule.Every(ctx, m.cfg.Interval, func(ctx context.Context) { _ = m.PassNow(ctx) })
}

// PassNow computes and saves the months due now: the last BackfillMonths until they have all been saved once, then
// the current and the previous month. Each month is computed and saved on its own, newest first, so one that fails
// does not hold back the others. It returns the first error.
func (m *Monthly) PassNow(ctx context.Context) error {
	m.passing.Lock()
	defer m.passing.Unlock()

	m.mu.Lock()
	backfilled := m.backfilled
	m.mu.Unlock()
	now := m.cfg.Now().UTC()
	back := 2
	if !backfilled {
		back = m.cfg.BackfillMonths
	}
	months := indicator.Months(indicator.MonthStart(now).AddDate(0, -(back-1), 0), now)
	slices.Reverse(months)

	var first error
	saved := 0
	for _, month := range months {
		rows, err := m.month(ctx, month)
		if err != nil {
			if ctx.Err() != nil {
				return err // stopping: not a failure worth counting
			}
			err = fmt.Errorf("month %s: %w", month.Format("2006-01"), err)
			m.cfg.Logger.Warn("monthly indicators not refreshed; the month keeps its previous rows", "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		saved += rows
	}
	end := m.cfg.Now()
	m.mu.Lock()
	recovered := m.failing && first == nil
	m.failing = first != nil
	if first != nil {
		m.failures++
	} else {
		m.lastSuccess = end
		m.backfilled = true
	}
	m.mu.Unlock()
	log := m.cfg.Logger.With("months", len(months), "rows", saved, "duration", end.Sub(now))
	switch {
	case first != nil:
	case !backfilled:
		log.Info("monthly indicators backfilled", "from", months[len(months)-1].Format("2006-01"))
	case recovered:
		log.Info("monthly indicators refresh recovered")
	default:
		log.Debug("monthly indicators refreshed")
	}
	return first
}

// month computes and saves one calendar month within Timeout and returns the number of rows saved.
func (m *Monthly) month(ctx context.Context, month time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	rows, err := m.cfg.Store.MonthlyIndicators(ctx, month, month.AddDate(0, 1, 0), m.cfg.CoachingKinds)
	if err != nil {
		return 0, fmt.Errorf("compute: %w", err)
	}
	if err := m.cfg.Store.SaveMonthly(ctx, rows); err != nil {
		return 0, fmt.Errorf("save %d rows: %w", len(rows), err)
	}
	return len(rows), nil
}

// Describe implements prometheus.Collector.
func (m *Monthly) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.lastSuccessDesc
	ch <- m.failuresDesc
}

// Collect implements prometheus.Collector; it never calls the Store.
func (m *Monthly) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	last, failures := m.lastSuccess, m.failures
	m.mu.Unlock()
	var v float64
	if !last.IsZero() {
		v = unixSeconds(last)
	}
	ch <- prometheus.MustNewConstMetric(m.lastSuccessDesc, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(m.failuresDesc, prometheus.CounterValue, float64(failures))
}
