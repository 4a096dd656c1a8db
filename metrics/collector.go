package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/indicator"
)

// managerLabels are the only labels of per-manager series: nothing per rep or per deal reaches Prometheus.
var managerLabels = []string{"manager_id", "manager_name"}

// managerMetric is one per-manager gauge and the indicator it shows; value returns nil for a null indicator,
// which emits no sample.
type managerMetric struct {
	desc  *prometheus.Desc
	value func(indicator.Row) *float64
}

type descs struct {
	managers []managerMetric

	window, asOf, lastSuccess, duration, failures, saveFailures, count *prometheus.Desc

	monthsSincePromotion *prometheus.Desc
}

// The window in every Help string is (as_of − W, as_of], W = leadthrough_indicators_window_seconds.
func newDescs() descs {
	gauge := func(name, help string, value func(indicator.Row) *float64) managerMetric {
		return managerMetric{prometheus.NewDesc(name, help, managerLabels, nil), value}
	}
	count := func(f func(indicator.Row) int64) func(indicator.Row) *float64 {
		return func(r indicator.Row) *float64 { v := float64(f(r)); return &v }
	}
	return descs{
		managers: []managerMetric{
			gauge("leadthrough_manager_won_deals",
				"Deals won in the indicator window (as_of - W, as_of] whose team manager M(d) is this manager "+
					"(won_deals in DESIGN.md).",
				count(func(r indicator.Row) int64 { return r.WonDeals })),
			gauge("leadthrough_manager_closed_deals",
				"Deals closed, won or lost, in the indicator window (as_of - W, as_of] whose team manager M(d) is "+
					"this manager (closed_deals in DESIGN.md).",
				count(func(r indicator.Row) int64 { return r.ClosedDeals })),
			gauge("leadthrough_manager_closed_share_ratio",
				"Share (0-1) of this manager's won deals in the window that the manager closed personally, "+
					"closer C(d) = M(d) (manager_closed_share in DESIGN.md). No sample when won_deals is 0.",
				func(r indicator.Row) *float64 { return r.ManagerClosedShare }),
			gauge("leadthrough_manager_closed_revenue_share_ratio",
				"Share (0-1) of the won amount of this manager's deals in the window that the manager closed "+
					"personally (manager_closed_revenue_share in DESIGN.md). No sample when the won amount is 0.",
				func(r indicator.Row) *float64 { return r.ManagerClosedRevenueShare }),
			gauge("leadthrough_manager_takeover_ratio",
				"Share (0-1) of this manager's deals closed in the window that the manager took over from a "+
					"direct report before the close (takeover_rate in DESIGN.md). No sample when closed_deals is 0.",
				func(r indicator.Row) *float64 { return r.TakeoverRate }),
			gauge("leadthrough_manager_takeovers",
				"Takeovers by this manager in the window: owner changes of open deals from a direct report to "+
					"the manager (takeovers in DESIGN.md). A count over the window, not a running total.",
				count(func(r indicator.Row) int64 { return r.Takeovers })),
			gauge("leadthrough_manager_coaching_coverage_ratio",
				"Share (0-1) of this manager's team reps in the window who had at least one coaching activity "+
					"by the manager in the window (coaching_coverage in DESIGN.md). No sample when the team is empty.",
				func(r indicator.Row) *float64 { return r.CoachingCoverage }),
			gauge("leadthrough_manager_reps_coached",
				"Reps in this manager's team in the window who had at least one coaching activity by the manager "+
					"in the window (reps_coached in DESIGN.md).",
				count(func(r indicator.Row) int64 { return r.RepsCoached })),
			gauge("leadthrough_manager_rep_growth",
				"Median over this manager's team reps of the relative change of their self-closed won amount, "+
					"window over previous window (0.25 = +25%, negative = decline; rep_growth in DESIGN.md). "+
					"No sample when no rep had a self-closed won amount in the previous window.",
				func(r indicator.Row) *float64 { return r.RepGrowth }),
			gauge("leadthrough_manager_team_reps",
				"Reps who reported to this manager at some time in the window while having no direct reports "+
					"(team_reps in DESIGN.md).",
				count(func(r indicator.Row) int64 { return r.TeamReps })),
		},
		window: prometheus.NewDesc("leadthrough_indicators_window_seconds",
			"Length W of the indicator window (as_of - W, as_of] of every leadthrough_manager_* series.", nil, nil),
		asOf: prometheus.NewDesc("leadthrough_indicators_as_of_timestamp_seconds",
			"Unix time as_of, the end of the window of the leadthrough_manager_* series being served. "+
				"No sample before the first successful refresh.", nil, nil),
		lastSuccess: prometheus.NewDesc("leadthrough_indicators_last_success_timestamp_seconds",
			"Unix time at which the last successful indicator refresh finished; 0 before the first one. "+
				"Failed refreshes leave it, and the values served, unchanged.", nil, nil),
		duration: prometheus.NewDesc("leadthrough_indicators_refresh_duration_seconds",
			"Duration of the last indicator refresh attempt, successful or not. No sample before the first attempt.",
			nil, nil),
		failures: prometheus.NewDesc("leadthrough_indicators_refresh_failures_total",
			"Indicator refreshes that failed (query error or timeout); the previous values stay served.", nil, nil),
		saveFailures: prometheus.NewDesc("leadthrough_indicators_save_failures_total",
			"Successful indicator refreshes that could not be saved to ClickHouse for Grafana (team_indicators); "+
				"the leadthrough_manager_* series are updated regardless.", nil, nil),
		count: prometheus.NewDesc("leadthrough_indicators_managers",
			"Managers in the last successful indicator refresh, each with its own leadthrough_manager_* series; "+
				"0 before the first success.", nil, nil),
		monthsSincePromotion: promotionDesc(),
	}
}

// promotionDesc describes the one per-manager gauge that is not an indicator of the window: it has a sample for
// each manager promoted from rep, whenever the promotion was.
func promotionDesc() *prometheus.Desc {
	return prometheus.NewDesc("leadthrough_manager_months_since_promotion",
		"Whole 30-day periods from this manager's promotion from rep (promoted_at, the start of their first "+
			"stretch with a direct report, after owning deals as a rep) to as_of (months_since_promotion in "+
			"DESIGN.md). Only promoted managers have a sample; 0 in the first 30 days.", managerLabels, nil)
}

// Describe implements prometheus.Collector. Every desc is sent, even those with no sample yet, so that a pedantic
// registry accepts whatever Collect emits.
func (r *Refresher) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range r.desc.managers {
		ch <- m.desc
	}
	d := r.desc
	for _, desc := range []*prometheus.Desc{d.window, d.asOf, d.lastSuccess, d.duration, d.failures, d.saveFailures, d.count} {
		ch <- desc
	}
	ch <- d.monthsSincePromotion
}

// Collect implements prometheus.Collector from the cache: it never calls the Source.
func (r *Refresher) Collect(ch chan<- prometheus.Metric) {
	r.mu.RLock()
	rows, asOf, lastSuccess, duration := r.rows, r.asOf, r.lastSuccess, r.lastDuration
	attempted, failures, saveFailures := r.attempted, r.failures, r.saveFailures
	promoted := r.promoted // the same refresh as rows
	r.mu.RUnlock()

	for _, m := range r.desc.managers {
		for _, row := range rows {
			v := m.value(row)
			if v == nil {
				continue
			}
			// Ingest rejects invalid UTF-8, but one bad name must not cost the scrape: label values must be UTF-8.
			id, name := strings.ToValidUTF8(row.ManagerID, "\uFFFD"), strings.ToValidUTF8(row.ManagerName, "\uFFFD")
			metric, err := prometheus.NewConstMetric(m.desc, prometheus.GaugeValue, *v, id, name)
			if err != nil {
				metric = prometheus.NewInvalidMetric(m.desc, err)
			}
			ch <- metric
		}
	}
	d := r.desc
	ch <- prometheus.MustNewConstMetric(d.window, prometheus.GaugeValue, r.cfg.Window.Seconds())
	if !asOf.IsZero() {
		ch <- prometheus.MustNewConstMetric(d.asOf, prometheus.GaugeValue, unixSeconds(asOf))
	}
	var last float64
	if !lastSuccess.IsZero() {
		last = unixSeconds(lastSuccess)
	}
	ch <- prometheus.MustNewConstMetric(d.lastSuccess, prometheus.GaugeValue, last)
	if attempted {
		ch <- prometheus.MustNewConstMetric(d.duration, prometheus.GaugeValue, duration.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(d.failures, prometheus.CounterValue, float64(failures))
	ch <- prometheus.MustNewConstMetric(d.saveFailures, prometheus.CounterValue, float64(saveFailures))
	ch <- prometheus.MustNewConstMetric(d.count, prometheus.GaugeValue, float64(len(rows)))
	r.collectPromotions(ch, promoted)
}

// collectPromotions emits leadthrough_manager_months_since_promotion, one sample per promoted manager.
func (r *Refresher) collectPromotions(ch chan<- prometheus.Metric, promoted []indicator.Promotion) {
	for _, p := range promoted {
		id, name := strings.ToValidUTF8(p.ManagerID, "\uFFFD"), strings.ToValidUTF8(p.ManagerName, "\uFFFD")
		metric, err := prometheus.NewConstMetric(r.desc.monthsSincePromotion, prometheus.GaugeValue,
			float64(p.MonthsSincePromotion), id, name)
		if err != nil {
			metric = prometheus.NewInvalidMetric(r.desc.monthsSincePromotion, err)
		}
		ch <- metric
	}
}

// unixSeconds avoids float64(t.UnixNano())/1e9, whose nanosecond count exceeds float64 precision.
func unixSeconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }
