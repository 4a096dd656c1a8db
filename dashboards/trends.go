package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The panels of the new-manager story (a top rep promoted to manager who keeps selling): the indicators by calendar
// month, the managers promoted within 12 months, and the deals a manager took over.

// monthlyTrendSQL reads one indicator of the selected managers, one point per calendar month, from the table
// monthly_indicators that leadthrough serve keeps current (store/migrations/0006_monthly_indicators.sql). A month
// recomputed replaces its rows: FINAL keeps each manager's latest row of a month, and the IN keeps only the rows of
// the month's latest computation, so a manager whom a recomputation no longer finds in the month is not drawn. Each
// point sits at the first day of its month. It runs on ClickHouse 18.16 and current releases.
func monthlyTrendSQL(column, name string) string {
	return `SELECT
    period_start AS time,
    manager_name,
    ` + column + ` AS "` + name + `"
FROM monthly_indicators FINAL
WHERE manager_id IN (${manager_id:singlequote})
  AND $__timeFilter(period_start)
  AND (period_start, computed_at) IN
      (SELECT period_start, max(computed_at) FROM monthly_indicators GROUP BY period_start)
ORDER BY time, manager_name`
}

// monthlyTrends are the trend panels, by calendar month over the last year whatever the dashboard's time range.
func monthlyTrends() []*timeseries.PanelBuilder {
	const months = "Each point is one calendar month (the window from its first day to the next month's, " +
		"placed at its first day; the current month so far), as leadthrough serve stores it in the table " +
		"monthly_indicators in ClickHouse, recomputing the current and the previous month every few minutes. " +
		"A gap is a month with nothing to measure. The panel always shows the last 12 months."
	return []*timeseries.PanelBuilder{
		monthlyTrend("Takeover rate by month", "takeover_rate", "Takeover rate",
			"Share of the team's deals closed in the month that the manager took over from a rep before the "+
				"close (takeover_rate). The dashed line is the alert threshold, 30%. "+months, "percentunit").
			Min(0).Max(1).
			Thresholds(thresholds("green", step(takeoverThreshold, "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)),
		monthlyTrend("Manager-closed share by month", "manager_closed_share", "Manager-closed share",
			"Share of the team's deals won in the month that the manager closed personally "+
				"(manager_closed_share). "+months, "percentunit").
			Min(0).Max(1),
		monthlyTrend("Coaching coverage by month", "coaching_coverage", "Coaching coverage",
			"Share of the team's reps that the manager coached at least once in the month (coaching_coverage). "+
				"The dashed line is the alert threshold, 50%. "+months, "percentunit").
			Min(0).Max(1).
			Thresholds(thresholds("red", step(coverageThreshold, "green"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)),
		monthlyTrend("Rep growth by month", "rep_growth", "Rep growth",
			"Median change of the reps' self-closed won amount in the month against the month before "+
				"(rep_growth). "+months, "percentunit").
			AxisCenteredZero(true).
			Thresholds(thresholds("red", step(0, "green"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine)),
	}
}

func monthlyTrend(title, column, name, description, unit string) *timeseries.PanelBuilder {
	return managerPanel(title, description, unit).
		Datasource(clickhouseRef).
		Height(8).
		TimeFrom("1y").
		ShowPoints(common.VisibilityModeAlways).
		PointSize(6).
		DisplayName("${__field.labels.manager_name}").
		WithTarget(newClickhouseTimeSeries("A", monthlyTrendSQL(column, name)))
}

// newManagerFilter keeps the series of managers promoted from rep less than 12 months (30-day periods) ago, as the
// alert LeadthroughNewManagerHighTakeoverRate and `leadthrough indicators --new-managers` do.
const newManagerFilter = ` and on (manager_id) (leadthrough_manager_months_since_promotion < 12)`

// newManagers lists the selected managers promoted from rep within 12 months, with the indicators to watch in a new
// manager's first months.
func newManagers() *table.PanelBuilder {
	return indicatorTable("New managers (promoted within 12 months)",
		"Managers promoted from rep less than 12 months ago (months_since_promotion: whole 30-day periods since "+
			"the start of their first stretch with a direct report, after owning deals as a rep), newest first, with "+
			"the indicators of the current window. A new manager who keeps selling instead of coaching shows a high "+
			"takeover rate and manager-closed share and a low coaching coverage; LeadthroughNewManagerHighTakeoverRate "+
			"fires above a 30% takeover rate. Per tenure period: `leadthrough indicators --new-managers`.",
		[]tableColumn{
			{"leadthrough_manager_months_since_promotion", "Months since promotion", false},
			{"leadthrough_manager_takeover_ratio", "Takeover rate", true},
			{"leadthrough_manager_closed_share_ratio", "Manager-closed share", true},
			{"leadthrough_manager_coaching_coverage_ratio", "Coaching coverage", true},
			{"leadthrough_manager_closed_deals", "Closed deals", false},
			{"leadthrough_manager_takeovers", "Takeovers", false},
			{"leadthrough_manager_team_reps", "Team reps", false},
		}, newManagerFilter).
		Height(7).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Months since promotion"),
		})
}

// latestServeRun selects the attribution run behind the indicators served now: the latest, by the end of its
// window, of serve's window length (one run per refresh; a later run of `leadthrough indicators --as-of` a past time
// ends earlier). A run whose window ends in the future is skipped: the monthly refresh's run of the month under way
// ends at the start of the next month, and a month of 30 days has the length of serve's default window.
// latestNames is a subquery of every user's latest non-empty name, with its columns named for the join it serves
// (portable SQL: an alias never reuses the name of the column it is computed from).
func latestNames(idAlias, nameAlias string) string {
	return `SELECT user_id AS ` + idAlias + `, argMax(name, time_ms) AS ` + nameAlias + `
        FROM user_events FINAL
        WHERE type = 'user.upserted' AND name != ''
        GROUP BY user_id`
}

const latestServeRun = `run_id = (SELECT run_id FROM deal_attribution
                        WHERE window_seconds = ${window_seconds} AND as_of <= now()
                        ORDER BY as_of DESC, run_id DESC LIMIT 1)`

// takenOverDealsSQL lists the deals behind the takeover rate: the deals closed in the window of the latest
// attribution run of serve's window length whose team manager M(d) is a selected manager and took them over before
// the close, with when (the first such takeover), the rep of record and both names. It runs on ClickHouse 18.16
// and current releases: one JOIN per SELECT, aliased joined subqueries, aliases that differ from their columns.
var takenOverDealsSQL = `SELECT
    taken_at AS "Taken over at",
    deal_id AS "Deal",
    manager_name AS "Manager",
    rep_id AS "Rep of record",
    rep_name AS "Rep name",
    if(won = 1, 'won', 'lost') AS "Outcome",
    amount AS "Amount",
    close_time AS "Closed at"
FROM
(
    SELECT taken_at, deal_id, manager_id, rep_id, rep_name, won, amount, close_time
    FROM
    (
        SELECT toDateTime(intDiv(taken_over_ms, 1000)) AS taken_at, deal_id, manager_id, rep_id, won, amount,
               close_time
        FROM deal_attribution
        WHERE ` + latestServeRun + `
          AND in_window = 1
          AND taken_over = 1
          AND manager_id IN (${manager_id:singlequote})
    ) AS taken
    ANY LEFT JOIN
    (
        ` + latestNames("rep_id", "rep_name") + `
    ) AS reps USING rep_id
) AS taken_deals
ANY LEFT JOIN
(
    ` + latestNames("manager_id", "manager_name") + `
) AS managers USING manager_id
ORDER BY taken_at DESC, deal_id
LIMIT 1000`

func takenOverDeals() *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title("Deals the manager took over (latest refresh)").
		Description("The deals behind the takeover rate: every deal closed in the window of the latest indicator "+
			"refresh that its team manager M(d), a selected manager, took over from one of their reps before the "+
			"close (table deal_attribution in ClickHouse; the time range does not apply). Pick one manager above to "+
			"go through their deals with them. Taken over at: the first such takeover. Rep of record: R(d), the "+
			"rep who owned the deal before. Outcome and Amount: as closed. Deals taken over and still open are in "+
			"Deals handed to the manager.").
		Datasource(clickhouseRef).
		Span(24).
		Height(8).
		WithTarget(newClickhouseTable("A", takenOverDealsSQL)).
		Footer(noFooter()).
		Filterable(true).
		OverrideByName("Amount", []dashboard.DynamicConfigValue{{Id: "unit", Value: "none"}, {Id: "decimals", Value: 2}})
}
