// Package report is the page `leadthrough serve` shows at "/": the current window's indicators per manager, each
// manager's monthly trend per indicator, the new-manager watch and the deals each manager took over. It gives teams
// without Grafana the same picture as the dashboards.
//
// The page is rendered on the server with html/template, with inline CSS and inline SVG: it loads nothing from
// anywhere and needs no JavaScript. A request never queries ClickHouse. The current window's indicators come from
// serve's refresher (Config.Current). The rest costs a full attribution run per month and per tenure period, so Run
// recomputes it every Config.Interval and the page serves it from memory.
//
// It must never import Prometheus or Kafka: it reads the store and the indicator definitions, nothing else.
package report

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/schedule"
	"github.com/leadthrough/leadthrough/store"
)

// Source computes what the page shows besides the current window's indicators; *store.Store is one.
type Source interface {
	MonthlyIndicators(ctx context.Context, from, to time.Time, coachingKinds []string) ([]indicator.PeriodRow, error)
	Promotions(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error)
	Watch(ctx context.Context, current indicator.Params, months int) ([]indicator.WatchRow, error)
	Attribute(ctx context.Context, p indicator.Params) (store.Run, error)
	RunDeals(ctx context.Context, run store.Run) ([]store.Attribution, error)
	UserNames(ctx context.Context, asOf time.Time) (map[string]string, error)
}

// Defaults of Config.
const (
	DefaultInterval = 5 * time.Minute
	DefaultTimeout  = 5 * time.Minute
	DefaultMonths   = 12
)

var (
	// ErrNoSource is returned by New when Config.Source is nil.
	ErrNoSource = errors.New("report: no source configured")
	// ErrNoCurrent is returned by New when Config.Current is nil.
	ErrNoCurrent = errors.New("report: no current indicators configured")
)

// Config configures New. Source and Current are required.
type Config struct {
	// Source computes the monthly trends, the new-manager watch and the current window's attribution.
	//
	// Required; New returns ErrNoSource without it.
	Source Source

	// Current returns the current window's indicators and the end of that window, as serve's refresher keeps them
	// (metrics.Refresher.Rows): nil and the zero time before its first success. The page calls it on every request,
	// so it must not query anything.
	//
	// Required; New returns ErrNoCurrent without it.
	Current func() ([]indicator.Row, time.Time)

	// Health, if set, tells whether Current's values are fresh (metrics.Refresher.Healthy); its error is shown on
	// the page, above the indicators it concerns.
	//
	// Default: nil (always fresh).
	Health func() error

	// Window is the length W of the current window, the one Current's rows cover (shown in the header).
	//
	// Default: 30 days (indicator.DefaultWindow).
	Window time.Duration

	// CurrentInterval is how often Current's values are refreshed; the header says so.
	//
	// Default: 0 (not said).
	CurrentInterval time.Duration

	// CoachingKinds are the activity kinds that count as coaching.
	//
	// Default: nil, which the Source reads as event.DefaultCoachingKinds.
	CoachingKinds []string

	// Interval is the time between the starts of two refreshes of the trends, the watch and the taken-over deals
	// in Run. One refresh runs an attribution per month shown, per tenure period of each promoted manager and for
	// the current window, so it should stay a matter of minutes.
	//
	// Default: 5m (DefaultInterval).
	Interval time.Duration

	// Timeout bounds one refresh.
	//
	// Default: 5m (DefaultTimeout).
	Timeout time.Duration

	// Months is the number of calendar months of the trend sparklines, the month under way included.
	//
	// Default: 12 (DefaultMonths).
	Months int

	// WatchMonths is how recent a promotion must be for the new-manager watch.
	//
	// Default: 12 (indicator.DefaultWatchMonths).
	WatchMonths int

	// Now tells the time: the end of the trends' last month and of the watch. Tests replace it.
	//
	// Default: time.Now.
	Now func() time.Time

	// Logger receives a WARN per failed part of a refresh, INFO on the first success, DEBUG otherwise.
	//
	// Default: slog.Default().
	Logger *slog.Logger
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Source == nil {
		return cfg, ErrNoSource
	}
	if cfg.Current == nil {
		return cfg, ErrNoCurrent
	}
	if cfg.Window <= 0 {
		cfg.Window = indicator.DefaultWindow
	}
	cfg.CoachingKinds = slices.Clone(cfg.CoachingKinds)
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Months <= 0 {
		cfg.Months = DefaultMonths
	}
	if cfg.WatchMonths <= 0 {
		cfg.WatchMonths = indicator.DefaultWatchMonths
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// Report keeps the slow parts of the page in memory, refreshes them (Run, RefreshNow) and serves the page
// (ServeHTTP). A part whose refresh fails keeps its previous values, and the page says so with the error.
type Report struct {
	cfg  Config
	page *template.Template

	refreshing sync.Mutex // serialises refreshes, so an older result never replaces a newer one

	mu     sync.RWMutex
	trends part[trends]
	watch  part[watch]
	deals  part[deals]
}

// part is one independently refreshed section of the page: its last good value and the last error since.
type part[T any] struct {
	value T
	at    time.Time // when value was computed; zero until the first success
	err   error     // the last refresh's error, nil once one succeeds
	errAt time.Time
}

// trends are the indicators of each calendar month.
type trends struct {
	months []time.Time // the months shown, oldest first
	rows   []indicator.PeriodRow
}

// watch is the new-manager watch and the promotions it lists.
type watch struct {
	asOf       time.Time
	rows       []indicator.WatchRow
	promotions []indicator.Promotion
}

// deals are the current window's attributed deals.
type deals struct {
	params indicator.Params
	deals  []store.Attribution
	names  map[string]string // user id → name, for reps of record
}

// New creates a Report. It does not refresh: call Run or RefreshNow. Until then the page shows the current window's
// indicators and says that the rest is being computed.
func New(cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Report{cfg: cfg, page: pageTemplate}, nil
}

// Run refreshes at once and then every Interval until ctx is done, and returns nil then. Failures are logged and
// shown on the page, never returned: the next tick tries again.
func (r *Report) Run(ctx context.Context) error {
	return schedule.Every(ctx, r.cfg.Interval, func(ctx context.Context) { _ = r.RefreshNow(ctx) })
}

// RefreshNow recomputes the monthly trends, the new-manager watch and the taken-over deals, each on its own: a part
// that fails keeps its previous values and records the error, which the page shows. It returns the parts' errors
// joined.
func (r *Report) RefreshNow(ctx context.Context) error {
	r.refreshing.Lock()
	defer r.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()

	now := r.cfg.Now().UTC().Truncate(time.Second)
	errTrends := refreshPart(r, &r.trends, "monthly trends", func() (trends, error) { return r.computeTrends(ctx, now) })
	errWatch := refreshPart(r, &r.watch, "new-manager watch", func() (watch, error) { return r.computeWatch(ctx, now) })
	errDeals := refreshPart(r, &r.deals, "taken-over deals", func() (deals, error) { return r.computeDeals(ctx, now) })
	return errors.Join(errTrends, errWatch, errDeals)
}

// refreshPart computes one part and stores its value, or its error next to the previous value.
func refreshPart[T any](r *Report, p *part[T], what string, compute func() (T, error)) error {
	start := r.cfg.Now()
	v, err := compute()
	end := r.cfg.Now()
	log := r.cfg.Logger.With("part", what, "duration", end.Sub(start))
	r.mu.Lock()
	first := p.at.IsZero()
	if err == nil {
		p.value, p.at, p.err = v, end, nil
	} else {
		p.err, p.errAt = err, end
	}
	r.mu.Unlock()
	switch {
	case err != nil:
		err = fmt.Errorf("report: %s: %w", what, err)
		if !errors.Is(err, context.Canceled) {
			log.Warn("report refresh failed; the page shows the previous values and the error", "err", err)
		}
		return err
	case first:
		log.Info("report refreshed")
	default:
		log.Debug("report refreshed")
	}
	return nil
}

// computeTrends computes the indicators of the last Months calendar months, the month under way included.
func (r *Report) computeTrends(ctx context.Context, now time.Time) (trends, error) {
	next := indicator.MonthStart(now).AddDate(0, 1, 0)
	from := next.AddDate(0, -r.cfg.Months, 0)
	rows, err := r.cfg.Source.MonthlyIndicators(ctx, from, next, r.cfg.CoachingKinds)
	if err != nil {
		return trends{}, err
	}
	return trends{months: indicator.Months(from, next), rows: rows}, nil
}

// computeWatch computes the new-manager watch of the window ending now, and the promotions for the records as reps.
func (r *Report) computeWatch(ctx context.Context, now time.Time) (watch, error) {
	p := indicator.Params{AsOf: now, Window: r.cfg.Window, CoachingKinds: r.cfg.CoachingKinds}
	rows, err := r.cfg.Source.Watch(ctx, p, r.cfg.WatchMonths)
	if err != nil {
		return watch{}, err
	}
	var promotions []indicator.Promotion
	if len(rows) > 0 {
		if promotions, err = r.cfg.Source.Promotions(ctx, now); err != nil {
			return watch{}, err
		}
	}
	return watch{asOf: now, rows: rows, promotions: promotions}, nil
}

// computeDeals attributes the current window's deals: the window of Current's rows when there are any, so the deals
// match the table, else the window ending now.
func (r *Report) computeDeals(ctx context.Context, now time.Time) (deals, error) {
	asOf := now
	if _, current := r.cfg.Current(); !current.IsZero() {
		asOf = current
	}
	p := indicator.Params{AsOf: asOf, Window: r.cfg.Window, CoachingKinds: r.cfg.CoachingKinds}.WithDefaults()
	run, err := r.cfg.Source.Attribute(ctx, p)
	if err != nil {
		return deals{}, err
	}
	ds, err := r.cfg.Source.RunDeals(ctx, run)
	if err != nil {
		return deals{}, err
	}
	names, err := r.cfg.Source.UserNames(ctx, asOf)
	if err != nil {
		return deals{}, err
	}
	return deals{params: p, deals: ds, names: names}, nil
}
