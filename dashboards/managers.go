package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Data sources are variables, so one dashboard JSON works on any Grafana whatever its data sources are called.
var (
	prometheusRef = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	clickhouseRef = common.DataSourceRef{Type: cog.ToPtr(clickhousePlugin), Uid: cog.ToPtr("${clickhouse}")}
)

// managerSelector restricts per-manager series to the managers picked in the `manager` variable.
const managerSelector = `{manager_name=~"$manager"}`

// The alert thresholds of deploy/prometheus/alerts.yml, drawn on the panels.
const (
	takeoverThreshold = 0.3
	coverageThreshold = 0.5
)

// Managers is the "Leadthrough — managers" dashboard: the per-manager indicators over time and now (from
// Prometheus), their history, their trend by calendar month and the deals behind them (from ClickHouse), the
// managers promoted within a year, and the health of the indicator refresh and of ingest.
func Managers() (dashboard.Dashboard, error) {
	trends := monthlyTrends()
	d, err := dashboard.NewDashboardBuilder("Leadthrough — managers").
		Uid("leadthrough-managers").
		Description("Does each sales manager lead through their reps — coaching them and growing them — or take their deals "+
			"over? Every indicator covers a rolling window ending at the time shown (30 days by default; see the Service row). "+
			"Definitions: docs/indicators.md. Alerts and what to do: docs/runbook.md.").
		Tags([]string{"leadthrough"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-30d", "now").
		Refresh("5m").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("Runbook").
			Type(dashboard.DashboardLinkTypeLink).
			Url("https://github.com/leadthrough/leadthrough/blob/main/docs/runbook.md").
			TargetBlank(true).
			Icon("doc")).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").
			Type("prometheus")).
		WithVariable(dashboard.NewDatasourceVariableBuilder("clickhouse").
			Label("ClickHouse").
			Type(clickhousePlugin)).
		WithVariable(dashboard.NewQueryVariableBuilder("manager").
			Label("Manager").
			Description("Managers with a team in the last indicator refresh.").
			Datasource(prometheusRef).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(leadthrough_manager_team_reps, manager_name)")}).
			Definition("label_values(leadthrough_manager_team_reps, manager_name)").
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalCaseInsensitiveAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*").
			Current(all)).
		// The ClickHouse panels filter by id, which is stable when a manager is renamed in the CRM. Always "All": all
		// the ids of the managers picked above.
		WithVariable(dashboard.NewQueryVariableBuilder("manager_id").
			Label("Manager id").
			Hide(dashboard.VariableHideHideVariable).
			Datasource(prometheusRef).
			Query(dashboard.StringOrMap{String: cog.ToPtr(`label_values(leadthrough_manager_team_reps` + managerSelector + `, manager_id)`)}).
			Definition(`label_values(leadthrough_manager_team_reps` + managerSelector + `, manager_id)`).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Multi(true).
			IncludeAll(true).
			Current(all)).
		// The ClickHouse panels read the snapshots and the deal attribution of serve's own window length, which only
		// Prometheus knows. query_result gives "{} <value> <timestamp>"; the regex keeps the value.
		WithVariable(dashboard.NewQueryVariableBuilder("window_seconds").
			Label("Window (s)").
			Description("Length of the indicator window of leadthrough serve, in seconds (leadthrough_indicators_window_seconds).").
			Hide(dashboard.VariableHideHideVariable).
			Datasource(prometheusRef).
			Query(dashboard.StringOrMap{String: cog.ToPtr(windowSecondsQuery)}).
			Definition(windowSecondsQuery).
			Regex(windowSecondsRegex).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged)).
		WithRow(dashboard.NewRowBuilder("Leading through others")).
		WithPanel(ratioPanel("Takeover rate",
			"Share of the team's closed deals that the manager took over before the close (takeover_rate). "+
				"The dashed line is the alert threshold: LeadthroughManagerHighTakeoverRate fires above 30% with at least 5 closed deals.",
			"leadthrough_manager_takeover_ratio").
			Thresholds(thresholds("green", step(takeoverThreshold, "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).
		WithPanel(ratioPanel("Coaching coverage",
			"Share of the team's reps the manager coached at least once in the window (coaching_coverage). "+
				"The dashed line is the alert threshold: LeadthroughManagerLowCoachingCoverage fires below 50% for teams of 3 reps or more.",
			"leadthrough_manager_coaching_coverage_ratio").
			Thresholds(thresholds("red", step(coverageThreshold, "green"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).
		WithPanel(ratioPanel("Manager-closed share",
			"Share of the team's won deals that the manager closed personally (manager_closed_share), "+
				"and the same weighted by amount (manager_closed_revenue_share).",
			"").
			WithTarget(prom("leadthrough_manager_closed_share_ratio"+managerSelector, "{{manager_name}} — deals").RefId("A")).
			WithTarget(prom("leadthrough_manager_closed_revenue_share_ratio"+managerSelector, "{{manager_name}} — revenue").RefId("B"))).
		WithPanel(managerPanel("Rep growth",
			"Median change of the reps' self-closed won amount against the previous window (rep_growth): "+
				"+20% means the typical rep sells a fifth more than a window earlier. Below zero, the team shrinks.",
			"percentunit").
			WithTarget(prom("leadthrough_manager_rep_growth"+managerSelector, "{{manager_name}}")).
			AxisCenteredZero(true).
			Thresholds(thresholds("red", step(0, "green"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))).
		WithPanel(managerPanel("Takeovers",
			"Deals the manager took over from one of their own reps in the window (takeovers), closed or not.",
			"none").
			WithTarget(prom("leadthrough_manager_takeovers"+managerSelector, "{{manager_name}}")).
			Decimals(0).
			Min(0)).
		WithPanel(managerPanel("Team size",
			"Reps who reported to the manager at some time in the window (team_reps), and how many of them were coached (reps_coached).",
			"none").
			WithTarget(prom("leadthrough_manager_team_reps"+managerSelector, "{{manager_name}} — reps").RefId("A")).
			WithTarget(prom("leadthrough_manager_reps_coached"+managerSelector, "{{manager_name}} — coached").RefId("B")).
			Decimals(0).
			Min(0)).
		WithPanel(currentValuesTable()).
		WithPanel(indicatorHistory()).
		WithRow(dashboard.NewRowBuilder("By calendar month")).
		WithPanel(trends[0]).
		WithPanel(trends[1]).
		WithPanel(trends[2]).
		WithPanel(trends[3]).
		WithRow(dashboard.NewRowBuilder("New managers")).
		WithPanel(newManagers()).
		WithRow(dashboard.NewRowBuilder("Deals")).
		WithPanel(closedDealsOfTheTeam()).
		WithPanel(takenOverDeals()).
		WithPanel(dealsHandedToManager()).
		WithRow(dashboard.NewRowBuilder("Service")).
		WithPanel(statPanel("Indicator window", "Length W of the rolling window of every indicator above.",
			"leadthrough_indicators_window_seconds / 86400", "suffix: days")).
		WithPanel(statPanel("Last successful refresh", "Time since the indicators were last recomputed. "+
			"LeadthroughIndicatorsStale fires after 15 minutes.",
			"time() - max(leadthrough_indicators_last_success_timestamp_seconds > 0)", "s").
			Thresholds(thresholds("green", step(15*60, "red")))).
		WithPanel(statPanel("Window end age", "Time since as_of, the end of the window of the values served.",
			"time() - max(leadthrough_indicators_as_of_timestamp_seconds)", "s")).
		WithPanel(statPanel("Refresh duration", "Duration of the last indicator refresh attempt.",
			"max(leadthrough_indicators_refresh_duration_seconds)", "s")).
		WithPanel(statPanel("Failed refreshes", "Indicator refreshes that failed in the dashboard's time range.",
			"sum(increase(leadthrough_indicators_refresh_failures_total[$__range]))", "none").
			Decimals(0).
			Thresholds(thresholds("green", step(1, "orange")))).
		WithPanel(statPanel("Managers", "Managers in the last successful refresh.",
			"max(leadthrough_indicators_managers)", "none").
			Decimals(0)).
		WithRow(dashboard.NewRowBuilder("Ingest")).
		WithPanel(ingestPanel("Messages consumed", "Kafka messages consumed per second, by topic, redeliveries and dead letters included.",
			"msg/s").
			WithTarget(prom("sum by (topic) (rate(leadthrough_ingest_messages_total[$__rate_interval]))", "{{topic}}"))).
		WithPanel(ingestPanel("Dead letters", "Messages sent to <topic>.dlq per second, by topic and reason. "+
			"Any of them fires LeadthroughIngestDeadLetters.",
			"msg/s").
			WithTarget(prom("sum by (topic, reason) (rate(leadthrough_ingest_dead_letters_total[$__rate_interval]))",
				"{{reason}} ({{topic}})"))).
		WithPanel(ingestPanel("Batch write latency (p95)", "95th percentile of the duration of ClickHouse batch inserts, "+
			"successful or not; and failed writes per second (LeadthroughIngestWriteErrors fires when they persist for 10 minutes).",
			"s").
			WithTarget(prom("histogram_quantile(0.95, sum by (le) (rate(leadthrough_ingest_batch_write_duration_seconds_bucket[$__rate_interval])))",
				"p95").RefId("A")).
			WithTarget(prom("sum(rate(leadthrough_ingest_write_errors_total[$__rate_interval]))", "write errors/s").RefId("B")).
			OverrideByName("write errors/s", []dashboard.DynamicConfigValue{
				{Id: "unit", Value: "ops"},
				{Id: "custom.axisPlacement", Value: "right"},
				{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
			})).
		WithPanel(ingestPanel("Where ingest time goes", "How busy each stage of the workers' pipeline is (seconds per "+
			"second, summed over workers; decode sums its goroutines, so it can pass 100 %). Backpressure near 100 % "+
			"per worker means the fetcher waits on a full pipeline: ClickHouse (write) or the CPU (decode) is the "+
			"bottleneck, not Kafka (docs/scaling.md).",
			"percentunit").
			WithTarget(prom("sum by (stage) (rate(leadthrough_ingest_stage_seconds_total[$__rate_interval]))", "{{stage}}").RefId("A")).
			WithTarget(prom("sum(rate(leadthrough_ingest_backpressure_seconds_total[$__rate_interval]))", "backpressure").RefId("B"))).
		WithPanel(ingestPanel("Time since last commit", "Age of each worker's last successful Kafka offset commit; "+
			"it grows while a worker is idle or stuck.",
			"s").
			WithTarget(prom("time() - leadthrough_ingest_last_commit_timestamp_seconds", "{{instance}}"))).
		Build()
	if err != nil {
		return d, err
	}
	number(&d)
	return d, nil
}

// number gives every panel a stable id in dashboard order and every unnamed query a refId (A, B, …), which
// Grafana would otherwise assign on load, making the stored JSON differ from the committed one.
func number(d *dashboard.Dashboard) {
	id := uint32(0)
	for _, p := range d.Panels {
		id++
		if p.RowPanel != nil {
			p.RowPanel.Id = id
			continue
		}
		p.Panel.Id = cog.ToPtr(id)
		for i, t := range p.Panel.Targets {
			if q, ok := t.(prometheus.Dataquery); ok && q.RefId == nil {
				q.RefId = cog.ToPtr(string(rune('A' + i)))
				p.Panel.Targets[i] = q
			}
		}
	}
}

// all is the "All" option of a multi-value variable.
var all = dashboard.VariableOption{
	Selected: cog.ToPtr(true),
	Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
	Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
}

// prom is an instant-or-range PromQL query on the dashboard's Prometheus data source variable.
func prom(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(prometheusRef).Expr(expr).LegendFormat(legend)
}

// managerPanel is a half-width time series with one series per manager and their latest value in the legend.
func managerPanel(title, description, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prometheusRef).
		Unit(unit).
		Span(12).
		Height(9).
		LineWidth(2).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementRight).
			Calcs([]string{"lastNotNull"}).
			SortBy("Last *").
			SortDesc(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

// ratioPanel is a managerPanel of a 0–1 indicator shown as a percentage, with the metric's query if one is given.
func ratioPanel(title, description, metric string) *timeseries.PanelBuilder {
	p := managerPanel(title, description, "percentunit").Min(0).Max(1)
	if metric != "" {
		p.WithTarget(prom(metric+managerSelector, "{{manager_name}}"))
	}
	return p
}

// currentValuesTable shows every indicator of every selected manager now: one instant query per indicator, merged
// into one row per manager.
func currentValuesTable() *table.PanelBuilder {
	return indicatorTable("Now, per manager",
		"The indicators at the end of the time range, one row per manager. A blank cell is an indicator with "+
			"nothing to measure (no closed deals, an empty team, no rep with sales in the previous window).",
		[]tableColumn{
			{"leadthrough_manager_closed_deals", "Closed deals", false},
			{"leadthrough_manager_won_deals", "Won deals", false},
			{"leadthrough_manager_takeover_ratio", "Takeover rate", true},
			{"leadthrough_manager_takeovers", "Takeovers", false},
			{"leadthrough_manager_closed_share_ratio", "Manager-closed share", true},
			{"leadthrough_manager_closed_revenue_share_ratio", "Manager-closed revenue share", true},
			{"leadthrough_manager_team_reps", "Team reps", false},
			{"leadthrough_manager_reps_coached", "Reps coached", false},
			{"leadthrough_manager_coaching_coverage_ratio", "Coaching coverage", true},
			{"leadthrough_manager_rep_growth", "Rep growth", true},
		}, "").
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Takeover rate").Desc(true),
		})
}

// tableColumn is one per-manager gauge shown as a column of an indicatorTable; ratios show as percentages.
type tableColumn struct {
	metric, name string
	ratio        bool
}

// indicatorTable is a full-width table with one row per selected manager and one column per gauge: one instant
// query per column (the gauge of the selected managers, and filter, a PromQL suffix such as "and on (…) …", when
// given), merged into one row per manager.
func indicatorTable(title, description string, columns []tableColumn, filter string) *table.PanelBuilder {
	p := table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prometheusRef).
		Span(24).
		Height(9).
		Unit("none").
		Decimals(0).
		Footer(noFooter())
	// Instant queries in table format come out as columns Value #<refId>, joined on their labels by "merge".
	rename := map[string]string{"manager_name": "Manager", "manager_id": "Manager id"}
	index := map[string]int{"manager_name": 0}
	for i, c := range columns {
		ref := string(rune('A' + i))
		p.WithTarget(prom(c.metric+managerSelector+filter, "").RefId(ref).Instant().Format(prometheus.PromQueryFormatTable))
		rename["Value #"+ref] = c.name
		index["Value #"+ref] = i + 1
		if c.ratio {
			p.OverrideByName(c.name, []dashboard.DynamicConfigValue{{Id: "unit", Value: "percentunit"}, {Id: "decimals", Value: 1}})
		}
	}
	index["manager_id"] = len(columns) + 1
	p.WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}})
	p.WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": map[string]bool{"Time": true, "job": true, "instance": true, "__name__": true},
		"renameByName":  rename,
		"indexByName":   index,
	}})
	return p
}

// windowSecondsQuery and windowSecondsRegex make the window_seconds variable: Grafana's Prometheus data source
// lists an instant vector as "<name>{<labels>} <value> <timestamp in ms>", here "{} 2592000 1767225600000", and
// the regex's group keeps the value.
const (
	windowSecondsQuery = "query_result(max(leadthrough_indicators_window_seconds))"
	windowSecondsRegex = `/^\{\} ([0-9]+) /`
)

// closedDealsOfTheTeamSQL lists the deals closed in the window of the latest attribution run of serve's window
// length (latestServeRun; see store/migrations/0005_deal_attribution.sql) whose team manager M(d) is one of the
// selected managers, with the names of the closer and the rep of record. Names are the latest non-empty
// user.upserted name. It runs on ClickHouse 18.16 and current releases: one JOIN per SELECT, aliased joined
// subqueries, aliases that differ from the columns they are computed from.
var closedDealsOfTheTeamSQL = `SELECT
    close_time AS "Closed at",
    deal_id AS "Deal",
    if(won = 1, 'won', 'lost') AS "Outcome",
    amount AS "Amount",
    closer_id AS "Closer",
    closer_name AS "Closer name",
    rep_id AS "Rep of record",
    rep_name AS "Rep name",
    if(taken_over = 1, 'yes', 'no') AS "Taken over",
    if(taken_over = 1, toNullable(toDateTime(intDiv(taken_over_ms, 1000))), CAST(NULL AS Nullable(DateTime)))
        AS "Taken over at"
FROM
(
    SELECT deal_id, close_time, won, amount, closer_id, closer_name, rep_id, taken_over, taken_over_ms
    FROM
    (
        SELECT deal_id, close_time, won, amount, closer_id, rep_id, taken_over, taken_over_ms
        FROM deal_attribution
        WHERE ` + latestServeRun + `
          AND in_window = 1
          AND manager_id IN (${manager_id:singlequote})
    ) AS deals
    ANY LEFT JOIN
    (
        ` + latestNames("closer_id", "closer_name") + `
    ) AS closers USING closer_id
) AS closed_deals
ANY LEFT JOIN
(
    ` + latestNames("rep_id", "rep_name") + `
) AS reps USING rep_id
ORDER BY close_time DESC, deal_id
LIMIT 1000`

func closedDealsOfTheTeam() *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title("Closed deals of the team (latest refresh)").
		Description("The deals behind the indicators above: every deal closed in the window of the latest indicator "+
			"refresh whose team manager M(d) is a selected manager, as leadthrough serve attributed it (table "+
			"deal_attribution in ClickHouse; the time range does not apply). "+
			"Closed at: t_c, the deal's last close. Outcome: won or lost. Amount: the close event's amount, else the "+
			"latest known at the close. Closer: C(d), the owner at the close (a won deal the manager closed counts "+
			"in the manager-closed share). Rep of record: R(d), the last owner at or before the close who was a rep "+
			"when they became owner; empty when the deal never had a rep owner. Taken over: yes when M(d) took the "+
			"deal over from one of their reps before the close (these deals make the takeover rate); Taken over at: "+
			"the first such takeover. Names are the latest the CRM sent.").
		Datasource(clickhouseRef).
		Span(24).
		Height(10).
		WithTarget(newClickhouseTable("A", closedDealsOfTheTeamSQL)).
		Footer(noFooter()).
		Filterable(true).
		OverrideByName("Amount", []dashboard.DynamicConfigValue{{Id: "unit", Value: "none"}, {Id: "decimals", Value: 2}})
}

// indicatorHistorySQL reads takeover_rate and coaching_coverage of the selected managers from the snapshots serve
// stores at each refresh (team_indicators), for serve's window length, so the trend outlives Prometheus' retention.
// Snapshots are averaged per $__interval_s bucket; time comes first and ascends, as the plugin's time series need.
const indicatorHistorySQL = `SELECT
    toDateTime(intDiv(toUInt32(as_of), $__interval_s) * $__interval_s) AS time,
    manager_name,
    avg(takeover_rate) AS "Takeover rate",
    avg(coaching_coverage) AS "Coaching coverage"
FROM team_indicators FINAL
WHERE window_seconds = ${window_seconds}
  AND manager_id IN (${manager_id:singlequote})
  AND $__timeFilter(as_of)
GROUP BY time, manager_name
ORDER BY time, manager_name`

func indicatorHistory() *timeseries.PanelBuilder {
	return managerPanel("Indicator history (ClickHouse)",
		"Takeover rate and coaching coverage of each selected manager as stored by every indicator refresh (table "+
			"team_indicators in ClickHouse), averaged over each point's interval: the same values as the panels above, "+
			"kept for as long as ClickHouse keeps them rather than for Prometheus' retention. Gaps are refreshes with "+
			"nothing to measure (no closed deals, an empty team).",
		"percentunit").
		Datasource(clickhouseRef).
		Span(24).
		Interval("1m"). // serve refreshes every minute by default: a shorter bucket holds no snapshot
		Min(0).
		Max(1).
		DisplayName("${__field.labels.manager_name} — ${__field.name}").
		WithTarget(newClickhouseTimeSeries("A", indicatorHistorySQL))
}

// handedDealsSQL selects the deals that changed owner to a selected manager in the time range (any copy of the
// event): the deals whose events dealsHandedToManagerSQL reads.
const handedDealsSQL = `(
    SELECT deal_id
    FROM deal_events
    WHERE type = 'deal.owner_changed'
      AND owner_id IN (${manager_id:singlequote})
      AND $__timeFilter(time)
)`

// handedLatestSQL is the latest copy of each event of those deals (the highest ingest_seq of (source, id)), with
// the columns dealsHandedToManagerSQL reads.
const handedLatestSQL = `(
    SELECT deal_id,
           argMax(type, ingest_seq) AS latest_type,
           argMax(time, ingest_seq) AS changed_at,
           argMax(time_ms, ingest_seq) AS at_ms,
           argMax(owner_id, ingest_seq) AS new_owner,
           argMax(previous_owner_id, ingest_seq) AS previous_owner,
           argMax(changed_by, ingest_seq) AS changer,
           argMax(outcome, ingest_seq) AS latest_outcome
    FROM deal_events FINAL
    WHERE deal_id IN ` + handedDealsSQL + `
    GROUP BY source, id, deal_id
)`

// dealsHandedToManagerSQL lists the deals whose owner was changed to one of the selected managers in the time
// range, with the previous owner's name and the deal's status now. Such a change is a takeover (DESIGN.md) when the
// previous owner reported to the manager at that time. It reads the deals that changed owner to a selected manager
// in the range (handedDealsSQL, any copy of the event) and, of all their events, the latest copy of each
// (handedLatestSQL: the highest ingest_seq of (source, id); FINAL first, because rows stored before migration 7
// have a second copy with the same ingest_seq, and FINAL keeps the complete one). It runs on ClickHouse 18.16 and
// current releases: one JOIN per SELECT, aliased joined subqueries, aggregates aliased apart from the columns they
// read. Unqualified tables are in the data source's default database.
const dealsHandedToManagerSQL = `SELECT
    changed_at AS "Changed at",
    deal_id AS "Deal",
    new_owner AS "New owner",
    previous_owner AS "Previous owner",
    previous_owner_name AS "Previous owner name",
    changer AS "Changed by",
    if(status = '', 'open', status) AS "Status now"
FROM
(
    SELECT changed_at, deal_id, new_owner, previous_owner, previous_owner_name, changer
    FROM
    (
        SELECT changed_at, deal_id, new_owner, previous_owner, changer
        FROM ` + handedLatestSQL + ` AS latest
        WHERE latest_type = 'deal.owner_changed'
          AND new_owner IN (${manager_id:singlequote})
          AND $__timeFilter(changed_at)
    ) AS changes
    ANY LEFT JOIN
    (
        SELECT user_id AS previous_owner, argMax(name, time_ms) AS previous_owner_name
        FROM user_events FINAL
        WHERE type = 'user.upserted'
        GROUP BY user_id
    ) AS users USING previous_owner
) AS handed
ANY LEFT JOIN
(
    SELECT deal_id, argMax(multiIf(latest_type = 'deal.closed', latest_outcome, latest_type = 'deal.deleted', 'deleted', ''), at_ms) AS status
    FROM ` + handedLatestSQL + ` AS latest
    WHERE latest_type IN ('deal.closed', 'deal.reopened', 'deal.deleted')
    GROUP BY deal_id
) AS statuses USING deal_id
ORDER BY changed_at DESC
LIMIT 1000`

func dealsHandedToManager() *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title("Deals handed to the manager").
		Description("Every change of a deal's owner to the selected manager in the time range, from the events in ClickHouse. " +
			"It is a takeover when the previous owner was on the manager's team at the time; look at these deals with the " +
			"manager. The previous owner is as reported by the CRM.").
		Datasource(clickhouseRef).
		Span(24).
		Height(10).
		WithTarget(newClickhouseTable("A", dealsHandedToManagerSQL)).
		Footer(noFooter()).
		Filterable(true)
}

// noFooter spells out the hidden table footer: the SDK's default has a null reducer list.
func noFooter() *common.TableFooterOptionsBuilder {
	return common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{})
}

// statPanel is a small single-value panel of the service row. It is green unless the caller sets thresholds:
// without any, Grafana would colour it by its fallback of red from 80.
func statPanel(title, description, expr, unit string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prometheusRef).
		WithTarget(prom(expr, "").Instant()).
		Unit(unit).
		Span(4).
		Height(4).
		Thresholds(thresholds("green")).
		GraphMode(common.BigValueGraphModeNone).
		ColorMode(common.BigValueColorModeValue).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

// ingestPanel is a half-width time series of the ingest row.
func ingestPanel(title, description, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prometheusRef).
		Unit(unit).
		Min(0).
		Span(12).
		Height(8).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom))
}

// thresholds are absolute steps: base is the colour below the first step.
func thresholds(base string, steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Color: base}}, steps...))
}

func step(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: &value, Color: color}
}
