// Package indicator defines leadthrough's per-manager team indicators (DESIGN.md, "Indicator definitions") and holds
// a plain-Go reference model of them. Production figures are computed in ClickHouse (package store); the reference
// model exists so tests can compare the SQL against an independent, readable implementation on random scenarios.
//
// It must never depend on Kafka, ClickHouse or Prometheus.
package indicator

import (
	"fmt"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// DefaultWindow is the indicator window W when none is given.
const DefaultWindow = 30 * 24 * time.Hour

// Params select the window (AsOf − Window, AsOf], the previous window that rep_growth compares with, and the
// activity kinds that count as coaching.
type Params struct {
	AsOf   time.Time
	Window time.Duration // default DefaultWindow
	// PrevWindow is the length of the previous window (AsOf − Window − PrevWindow, AsOf − Window]. Default: Window.
	// Calendar months set it to the length of the month before (MonthParams).
	PrevWindow    time.Duration
	CoachingKinds []string // default event.DefaultCoachingKinds
}

// WithDefaults fills unset fields and truncates AsOf to the millisecond, the resolution of stored event times.
func (p Params) WithDefaults() Params {
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.PrevWindow <= 0 {
		p.PrevWindow = p.Window
	}
	if len(p.CoachingKinds) == 0 {
		p.CoachingKinds = event.DefaultCoachingKinds
	}
	p.AsOf = p.AsOf.UTC().Truncate(time.Millisecond)
	return p
}

// Validate rejects parameters that cannot describe a window.
func (p Params) Validate() error {
	if p.AsOf.IsZero() {
		return fmt.Errorf("as-of time is required")
	}
	if p.Window < time.Millisecond {
		return fmt.Errorf("window must be at least 1ms, got %s", p.Window)
	}
	if p.PrevWindow < time.Millisecond {
		return fmt.Errorf("previous window must be at least 1ms, got %s", p.PrevWindow)
	}
	return nil
}

// Start is the exclusive start of the window, AsOf − Window.
func (p Params) Start() time.Time { return p.AsOf.Add(-p.Window) }

// PrevStart is the exclusive start of the previous window, AsOf − Window − PrevWindow.
func (p Params) PrevStart() time.Time { return p.AsOf.Add(-p.Window - p.PrevWindow) }

// MonthStart is the start (00:00 UTC on the 1st) of the calendar month holding t.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// MonthParams are the parameters of calendar month m (any instant in it): the window (start of m, start of m+1],
// compared for rep_growth with the previous calendar month, (start of m−1, start of m].
func MonthParams(m time.Time, coachingKinds []string) Params {
	start := MonthStart(m)
	next, prev := start.AddDate(0, 1, 0), start.AddDate(0, -1, 0)
	return Params{AsOf: next, Window: next.Sub(start), PrevWindow: start.Sub(prev), CoachingKinds: coachingKinds}
}

// Months lists the calendar months to report for [from, to): the start of every month that begins at or after the
// start of from's month and before to. A from in mid-month thus includes its month; a to on the 1st excludes the
// month it starts.
func Months(from, to time.Time) []time.Time {
	var out []time.Time
	for m := MonthStart(from); m.Before(to); m = m.AddDate(0, 1, 0) {
		out = append(out, m)
	}
	return out
}

// PeriodRow is a Row for one calendar period, with its window (period_start, period_end].
type PeriodRow struct {
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Row
}

// Row is one manager's indicators for one window. JSON names are exactly those of DESIGN.md; nil ratios are
// serialised as null ("null when 0").
type Row struct {
	ManagerID                 string   `json:"manager_id"`
	ManagerName               string   `json:"manager_name"`
	WonDeals                  int64    `json:"won_deals"`
	ClosedDeals               int64    `json:"closed_deals"`
	ManagerClosedShare        *float64 `json:"manager_closed_share"`
	ManagerClosedRevenueShare *float64 `json:"manager_closed_revenue_share"`
	TakeoverRate              *float64 `json:"takeover_rate"`
	Takeovers                 int64    `json:"takeovers"`
	CoachingCoverage          *float64 `json:"coaching_coverage"`
	RepsCoached               int64    `json:"reps_coached"`
	RepGrowth                 *float64 `json:"rep_growth"`
	TeamReps                  int64    `json:"team_reps"`
}

// ParseWindow parses a window such as "30d", "12h" or "90m" (Go durations plus a "d" suffix for days).
func ParseWindow(s string) (time.Duration, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		var days int
		if _, err := fmt.Sscanf(s[:n-1], "%d", &days); err != nil || days <= 0 || fmt.Sprint(days) != s[:n-1] {
			return 0, fmt.Errorf("invalid window %q: want a positive number of days like 30d, or a duration like 12h", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid window %q: want a positive number of days like 30d, or a duration like 12h", s)
	}
	return d, nil
}
