// Package metrics is the Prometheus side of `leadthrough serve`: a Refresher recomputes the per-manager indicators on
// a schedule and keeps the last good result in memory, and a Server exposes that cache on /metrics and its age on
// /healthz.
//
// A scrape must never query ClickHouse: it is served from the cache, so Prometheus' scrape timeout and the cost of
// the indicator SQL are unrelated. Nothing per rep or per deal may be exported here (that lives in ClickHouse and
// Grafana); per-manager series carry exactly the labels manager_id and manager_name.
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

// Source computes the indicators of one window; *store.Store is one.
type Source interface {
	Indicators(ctx context.Context, p indicator.Params) ([]indicator.Row, error)
}

// Saver stores one refresh's indicators, for Grafana; *store.Store is one.
type Saver interface {
	SaveIndicators(ctx context.Context, p indicator.Params, rows []indicator.Row) error
}

// PromotionSource lists the managers promoted from rep as of a time (DESIGN.md, "Promotions"); *store.Store is one.
type PromotionSource interface {
	Promotions(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error)
}

// PromotionSourceFunc adapts a function to PromotionSource.
type PromotionSourceFunc func(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error)

// Promotions calls f.
func (f PromotionSourceFunc) Promotions(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error) {
	return f(ctx, asOf)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, p indicator.Params) ([]indicator.Row, error)

// Indicators calls f.
func (f SourceFunc) Indicators(ctx context.Context, p indicator.Params) ([]indicator.Row, error) {
	return f(ctx, p)
}

// SaverFunc adapts a function to Saver.
type SaverFunc func(ctx context.Context, p indicator.Params, rows []indicator.Row) error

// SaveIndicators calls f.
func (f SaverFunc) SaveIndicators(ctx context.Context, p indicator.Params, rows []indicator.Row) error {
	return f(ctx, p, rows)
}

// Defaults of RefresherConfig.
const (
	DefaultInterval = time.Minute
	DefaultTimeout  = 2 * time.Minute
)

var (
	// ErrNoSource is returned by NewRefresher when RefresherConfig.Source is nil.
	ErrNoSource = errors.New("metrics: no indicator source configured")
	// ErrNeverRefreshed is returned by Healthy before the first successful refresh.
	ErrNeverRefreshed = errors.New("metrics: indicators not refreshed successfully yet")
	// ErrStale is returned (wrapped) by Healthy when the last successful refresh is too old.
	ErrStale = errors.New("metrics: indicators are stale")
)

// RefresherConfig configures NewRefresher. Only Source is required.
type RefresherConfig struct {
	// Source computes the indicators on each refresh.
	//
	// Required; NewRefresher returns ErrNoSource without it.
	Source Source

	// Saver, if set, receives the rows of each successful refresh (table team_indicators, for Grafana). A failed
	// save is logged and counted (leadthrough_indicators_save_failures_total) but does not undo the refresh:
	// /metrics serves the new values all the same.
	//
	// Default: nil (nothing is saved).
	Saver Saver

	// Promotions, if set, is asked on each refresh, after Source, for the managers promoted from rep as of the
	// refresh's as_of: each gets a leadthrough_manager_months_since_promotion sample. A refresh succeeds only if
	// both answer, so every series served refers to the same as_of.
	//
	// Default: nil (no promotion samples).
	Promotions PromotionSource

	// Window is the length W of the rolling window (now − W, now] of each refresh.
	//
	// Default: 30 days (indicator.DefaultWindow).
	Window time.Duration

	// CoachingKinds are the activity kinds that count as coaching.
	//
	// Default: nil, which the Source reads as event.DefaultCoachingKinds (see indicator.Params.WithDefaults).
	CoachingKinds []string

	// Interval is the time between the starts of two scheduled refreshes in Run. A refresh that outlasts it
	// delays the next one rather than overlapping it.
	//
	// Default: 1m (DefaultInterval).
	Interval time.Duration

	// Timeout bounds one refresh: the Source query, Promotions and the Saver together.
	//
	// Default: 2m (DefaultTimeout).
	Timeout time.Duration

	// Now tells the time: the window of a refresh ends at Now() truncated to the second, and the age checked by
	// Healthy is measured with it. Tests replace it.
	//
	// Default: time.Now.
	Now func() time.Time

	// Logger receives a WARN per failed refresh or save, INFO on the first success and on recovery, DEBUG
	// otherwise.
	//
	// Default: slog.Default().
	Logger *slog.Logger
}

func (cfg RefresherConfig) withDefaults() (RefresherConfig, error) {
	if cfg.Source == nil {
		return cfg, ErrNoSource
	}
	if cfg.Window <= 0 {
		cfg.Window = indicator.DefaultWindow
	}
	if cfg.Window < time.Second {
		return cfg, fmt.Errorf("metrics: window must be at least 1s, got %s", cfg.Window)
	}
	cfg.CoachingKinds = slices.Clone(cfg.CoachingKinds) // never share the caller's slice with the Source
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// Refresher keeps the indicators of a rolling window in memory and refreshes them on a schedule (Run) or on demand
// (RefreshNow). A failed refresh keeps the previous values: they are stale but honest, since
// leadthrough_indicators_as_of_timestamp_seconds and leadthrough_indicators_last_success_timestamp_seconds show
// their age. Refresher is a prometheus.Collector of the cached values; collecting never calls the Source.
type Refresher struct {
	cfg  RefresherConfig
	desc descs

	refreshing sync.Mutex // serialises refreshes, so an older result never replaces a newer one

	mu                  sync.RWMutex
	rows                []indicator.Row // never mutated after it is stored: replaced as a whole
	asOf                time.Time       // zero until the first success
	lastSuccess         time.Time       // zero until the first success
	lastDuration        time.Duration
	attempted           bool
	failures            uint64
	consecutiveFailures uint64
	saveFailures        uint64
	lastErr             error

	promoted []indicator.Promotion // from the same refresh as rows, replaced with them; guarded by mu
}

// NewRefresher creates a Refresher and registers it on reg; a nil reg leaves it unregistered. It does not refresh:
// call Run or RefreshNow.
func NewRefresher(cfg RefresherConfig, reg prometheus.Registerer) (*Refresher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Refresher{cfg: cfg, desc: newDescs()}
	if reg != nil {
		if err := reg.Register(r); err != nil {
			return nil, fmt.Errorf("metrics: register indicator collector: %w", err)
		}
	}
	return r, nil
}

// Run refreshes at once and then every Interval until ctx is done, and returns nil then. Failures are logged and
// counted, never returned: the next tick tries again.
func (r *Refresher) Run(ctx context.Context) error {
	return schedule.Every(ctx, r.cfg.Interval, func(ctx context.Context) { _ = r.RefreshNow(ctx) })
}

// RefreshNow computes the indicators of the window ending now and, on success, replaces the cache and calls the
// Saver. On a Source error it keeps the previous cache and returns the error. On a Saver error the cache has
// already been replaced; the error is returned all the same.
func (r *Refresher) RefreshNow(ctx context.Context) error {
	r.refreshing.Lock()
	defer r.refreshing.Unlock()

	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := r.cfg.Now()
	// Whole seconds: the as-of sample and team_indicators rows line up with Prometheus' own resolution, and two
	// replicas refreshing in the same second ask for the same window.
	p := indicator.Params{AsOf: start.UTC().Truncate(time.Second), Window: r.cfg.Window, CoachingKinds: r.cfg.CoachingKinds}
	log := r.cfg.Logger.With("as_of", p.AsOf, "window", r.cfg.Window)

	rows, err := r.cfg.Source.Indicators(ctx, p)
	var promoted []indicator.Promotion
	if err == nil {
		promoted, err = r.promotions(ctx, p.AsOf)
	}
	end := r.cfg.Now()
	if err != nil {
		err = fmt.Errorf("compute indicators as of %s: %w", p.AsOf.Format(time.RFC3339), err)
		r.mu.Lock()
		r.attempted, r.lastDuration, r.lastErr = true, end.Sub(start), err
		r.failures++
		r.consecutiveFailures++
		n, served := r.consecutiveFailures, r.asOf
		r.mu.Unlock()
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err // the caller is stopping: not worth a warning
		}
		log.Warn("indicator refresh failed; serving the previous values", "err", err,
			"consecutive_failures", n, "serving_as_of", served)
		return err
	}

	rows = slices.Clone(rows) // the Source's slice is its own
	r.mu.Lock()
	recovered, first := r.consecutiveFailures > 0, r.lastSuccess.IsZero()
	r.rows, r.asOf, r.lastSuccess = rows, p.AsOf, end
	r.promoted = promoted
	r.attempted, r.lastDuration, r.lastErr, r.consecutiveFailures = true, end.Sub(start), nil, 0
	r.mu.Unlock()
	switch {
	case recovered:
		log.Info("indicator refresh recovered", "managers", len(rows), "duration", end.Sub(start))
	case first:
		log.Info("indicators refreshed", "managers", len(rows), "duration", end.Sub(start))
	default:
		log.Debug("indicators refreshed", "managers", len(rows), "duration", end.Sub(start))
	}

	if r.cfg.Saver == nil {
		return nil
	}
	if err := r.cfg.Saver.SaveIndicators(ctx, p, rows); err != nil {
		r.mu.Lock()
		r.saveFailures++
		r.mu.Unlock()
		err = fmt.Errorf("save %d indicator rows as of %s: %w", len(rows), p.AsOf.Format(time.RFC3339), err)
		log.Warn("saving indicators failed; /metrics serves them anyway", "err", err)
		return err
	}
	return nil
}

// promotions asks the PromotionSource, if any, for the promotions as of asOf.
func (r *Refresher) promotions(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error) {
	if r.cfg.Promotions == nil {
		return nil, nil
	}
	promoted, err := r.cfg.Promotions.Promotions(ctx, asOf)
	if err != nil {
		return nil, fmt.Errorf("promotions: %w", err)
	}
	return slices.Clone(promoted), nil // the source's slice is its own
}

// Promotions returns the cached promotions and the as_of they were computed at, from the same refresh as Rows; nil
// and the zero time before the first successful refresh, and nil without a PromotionSource. The slice is shared:
// do not modify it.
func (r *Refresher) Promotions() ([]indicator.Promotion, time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clip(r.promoted), r.asOf
}

// Rows returns the cached indicators and the end of their window; nil and the zero time before the first
// successful refresh. The rows are shared: do not modify them.
func (r *Refresher) Rows() ([]indicator.Row, time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clip(r.rows), r.asOf
}

// Healthy returns nil when the last successful refresh finished at most maxAge ago (by Now). It returns
// ErrNeverRefreshed before the first success, and an error wrapping ErrStale, with the last refresh error, when the
// values are older than maxAge. A maxAge ≤ 0 only checks that some refresh has succeeded.
func (r *Refresher) Healthy(maxAge time.Duration) error {
	r.mu.RLock()
	last, lastErr := r.lastSuccess, r.lastErr
	r.mu.RUnlock()
	if last.IsZero() {
		if lastErr != nil {
			return fmt.Errorf("%w: %v", ErrNeverRefreshed, lastErr)
		}
		return ErrNeverRefreshed
	}
	if maxAge <= 0 {
		return nil
	}
	if age := r.cfg.Now().Sub(last); age > maxAge {
		err := fmt.Errorf("%w: last successful refresh %s ago at %s, more than %s", ErrStale,
			age.Round(time.Second), last.UTC().Format(time.RFC3339), maxAge)
		if lastErr != nil {
			err = fmt.Errorf("%w; last error: %v", err, lastErr)
		}
		return err
	}
	return nil
}
