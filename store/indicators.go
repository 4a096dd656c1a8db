package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
)

// teamFragments compute teams, coaching and names for the window (@start, @as_of]. They read user_events (small),
// activities (by an event-time range) and the run's rows of deal_attribution (@run).
var teamFragments = map[string]string{
	// One row per (user, reporting interval) overlapping the window (@start, @as_of], clipped to [a, b) in ms.
	"spans": `
SELECT user_id AS rep_id, line_manager AS manager_id,
       greatest(from_ms, toInt64(@start + 1)) AS a, least(to_ms, toInt64(@as_of + 1)) AS b
FROM {{reporting_intervals}}
WHERE a < b`,

	// The team of M: users who at some instant of the window reported to M while having no direct reports. The
	// first such instant of a span, if any, is its start or the end of one of the user's own managing intervals.
	"team": `
SELECT DISTINCT manager_id, rep_id
FROM
(
    SELECT manager_id, rep_id, rep_f, rep_t,
           arrayConcat([a], arrayFilter((x, aa, bb) -> x >= aa AND x < bb, rep_t,
                        arrayResize([a], length(rep_t), a), arrayResize([b], length(rep_t), b))) AS instants
    FROM (SELECT *, rep_id AS uid FROM {{spans}}) AS span
    ALL LEFT JOIN (SELECT uid, rep_f, rep_t FROM {{timelines}}) AS rep_timeline USING uid
)
ARRAY JOIN instants AS c
WHERE NOT arrayExists((f, e) -> f <= c AND c < e, rep_f, rep_t)`,

	// The activities with a copy in the window (a time range of activities).
	"window_activities": `
SELECT DISTINCT activity_id
FROM activities
WHERE time_ms > @start AND time_ms <= @as_of`,

	// (manager, rep) pairs with a coaching activity in the window whose actor is the manager and subject the rep.
	// Every copy of the window's activities lies in [@act_from, @act_to]; of two copies of an event (same source and
	// id) the one with the higher ingest_seq wins, so an activity moved out of the window no longer counts.
	"coached": `
SELECT DISTINCT actor AS manager_id, subject AS rep_id, toUInt8(1) AS coached
FROM
(
    SELECT argMax(time_ms, ingest_seq) AS a_ms, argMax(kind, ingest_seq) AS a_kind,
           argMax(actor_id, ingest_seq) AS actor, argMax(subject_user_ids, ingest_seq) AS subjects
    FROM activities
    WHERE time_ms >= @act_from AND time_ms <= @act_to AND activity_id IN {{window_activities}}
    GROUP BY source, id
)
ARRAY JOIN subjects AS subject
WHERE a_ms > @start AND a_ms <= @as_of AND has(@kinds, a_kind)`,

	// Per rep, self-closed (R(d) = C(d) = rep) won amount in the window and in the previous window.
	"self_won": `
SELECT rep_id, sumIf(amount, close_ms > @start) AS cur, sumIf(amount, close_ms <= @start) AS prev
FROM deal_attribution
WHERE run_id = @run AND closed = 1 AND won = 1 AND rep_id != '' AND rep_id = closer_id AND close_ms > @prev_start
GROUP BY rep_id`,

	// Per manager: team size, reps coached, and the sorted growth ratios of the reps with previous-window amount > 0.
	"team_stats": `
SELECT manager_id, count() AS team_reps, sum(coached) AS reps_coached,
       arraySort(groupArrayIf(cur / prev - 1, prev > 0)) AS growth
FROM
(
    SELECT manager_id, rep_id, coached, cur, prev
    FROM
    (
        SELECT manager_id, rep_id, coached
        FROM {{team}} AS member
        ALL LEFT JOIN {{coached}} AS coaching USING (manager_id, rep_id)
    ) AS member_coached
    ALL LEFT JOIN {{self_won}} AS rep_won USING rep_id
)
GROUP BY manager_id`,

	// Latest non-empty name per user.
	"names": `
SELECT user_id AS manager_id,
       arrayElement(arrayMap(x -> x.4, arraySort(x -> (x.1, x.2, x.3), groupArray((time_ms, source, id, name)))), -1)
         AS manager_name
FROM user_events FINAL
WHERE type = 'user.upserted' AND name != '' AND time_ms <= @as_of
GROUP BY user_id`,
}

// managersQuery lists every manager of the window (a user with at least one direct report at some instant of it)
// with name and team figures. rep_growth is the median of the growth array: the middle value, or the mean of the
// two middle values for an even count.
const managersQuery = `
SELECT manager_id, manager_name, team_reps, reps_coached, length(growth) AS growth_reps,
       if(length(growth) = 0, 0.,
          if(length(growth) % 2 = 1, growth[intDiv(length(growth), 2) + 1],
             (growth[intDiv(length(growth), 2)] + growth[intDiv(length(growth), 2) + 1]) / 2)) AS rep_growth
FROM
(
    SELECT manager_id, team_reps, reps_coached, growth
    FROM (SELECT DISTINCT manager_id FROM {{spans}}) AS window_manager
    ALL LEFT JOIN {{team_stats}} AS stats USING manager_id
) AS manager_stats
ALL LEFT JOIN {{names}} AS manager_names USING manager_id
ORDER BY manager_id`

// dealsQuery aggregates the run's deals closed in the window per team manager M(d).
const dealsQuery = `
SELECT manager_id,
       count() AS closed_deals,
       countIf(won = 1) AS won_deals,
       countIf(won = 1 AND closer_id = manager_id) AS manager_won_deals,
       sumIf(amount, won = 1) AS won_amount,
       sumIf(amount, won = 1 AND closer_id = manager_id) AS manager_won_amount,
       countIf(taken_over = 1) AS taken_over_deals
FROM deal_attribution
WHERE run_id = @run AND in_window = 1 AND manager_id != ''
GROUP BY manager_id`

// takeoversQuery counts takeover events in the window per manager who took over, on any deal not deleted.
const takeoversQuery = `
SELECT taken_by, count() AS takeovers
FROM deal_attribution
ARRAY JOIN takeover_ms AS taken_at, takeover_managers AS taken_by
WHERE run_id = @run AND taken_at > @start AND taken_at <= @as_of
GROUP BY taken_by`

var (
	expandedManagers  = compact(expand(managersQuery))
	expandedDeals     = compact(expand(dealsQuery))
	expandedTakeovers = compact(expand(takeoversQuery))
)

// Indicators computes every indicator of DESIGN.md for the window (p.AsOf − p.Window, p.AsOf], one row per manager,
// ordered by manager_id.
func (s *Store) Indicators(ctx context.Context, p indicator.Params) ([]indicator.Row, error) {
	run, err := s.Attribute(ctx, p)
	if err != nil {
		return nil, err
	}
	return s.RunIndicators(ctx, run)
}

// RunIndicators computes the indicators of a run's window from its attribution, one row per manager, ordered by
// manager_id.
func (s *Store) RunIndicators(ctx context.Context, run Run) ([]indicator.Row, error) {
	defer s.readingAttribution()()
	args := run.args()
	var out []indicator.Row
	index := map[string]int{}
	rows, err := s.conn.Query(ctx, expandedManagers, args...)
	if err != nil {
		return nil, fmt.Errorf("query managers: %w", err)
	}
	for rows.Next() {
		var r indicator.Row
		var teamReps, coached, growthReps uint64
		var growth float64
		if err := rows.Scan(&r.ManagerID, &r.ManagerName, &teamReps, &coached, &growthReps, &growth); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan managers: %w", err)
		}
		if r.ManagerName == "" {
			r.ManagerName = r.ManagerID
		}
		r.TeamReps, r.RepsCoached = int64(teamReps), int64(coached)
		r.CoachingCoverage = ratio(float64(coached), float64(teamReps))
		if growthReps > 0 {
			r.RepGrowth = &growth
		}
		index[r.ManagerID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read managers: %w", err)
	}

	rows, err = s.conn.Query(ctx, expandedDeals, args...)
	if err != nil {
		return nil, fmt.Errorf("query deal attribution: %w", err)
	}
	for rows.Next() {
		var id string
		var closed, won, managerWon, taken uint64
		var wonAmount, managerWonAmount float64
		if err := rows.Scan(&id, &closed, &won, &managerWon, &wonAmount, &managerWonAmount, &taken); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan deal attribution: %w", err)
		}
		i, ok := index[id]
		if !ok {
			continue // cannot happen: M(d) has a direct report at t_c, inside the window
		}
		r := &out[i]
		r.ClosedDeals, r.WonDeals = int64(closed), int64(won)
		r.ManagerClosedShare = ratio(float64(managerWon), float64(won))
		r.ManagerClosedRevenueShare = ratio(managerWonAmount, wonAmount)
		r.TakeoverRate = ratio(float64(taken), float64(closed))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deal attribution: %w", err)
	}

	rows, err = s.conn.Query(ctx, expandedTakeovers, args...)
	if err != nil {
		return nil, fmt.Errorf("query takeovers: %w", err)
	}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan takeovers: %w", err)
		}
		if i, ok := index[id]; ok {
			out[i].Takeovers = int64(n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read takeovers: %w", err)
	}
	return out, nil // in managersQuery's order: by manager_id
}

// params binds a window's parameters for the fragments.
func params(p indicator.Params) []any {
	return []any{
		clickhouse.Named("as_of", p.AsOf.UnixMilli()), clickhouse.Named("start", p.Start().UnixMilli()),
		clickhouse.Named("prev_start", p.PrevStart().UnixMilli()), clickhouse.Named("kinds", p.CoachingKinds),
	}
}

func ratio(num, den float64) *float64 {
	if den == 0 {
		return nil
	}
	v := num / den
	return &v
}

// HistoryRetention is how long team_indicators keeps the indicators of past refreshes: whole calendar months are
// dropped once they ended more than this before the as-of of the latest save. 13 months give a year of trend plus
// the month being compared.
const HistoryRetention = 400 * 24 * time.Hour

// SaveIndicators stores one refresh of the indicators for Grafana (table team_indicators), then drops the months of
// history older than HistoryRetention.
func (s *Store) SaveIndicators(ctx context.Context, p indicator.Params, rows []indicator.Row) error {
	p = p.WithDefaults()
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO team_indicators (as_of, window_seconds, manager_id,
		manager_name, won_deals, closed_deals, manager_closed_share, manager_closed_revenue_share, takeover_rate,
		takeovers, coaching_coverage, reps_coached, rep_growth, team_reps, computed_at)`)
	if err != nil {
		return fmt.Errorf("prepare insert into team_indicators: %w", err)
	}
	defer batch.Abort()
	now := time.Now().UTC()
	for _, r := range rows {
		if err := batch.Append(p.AsOf, uint32(p.Window.Seconds()), r.ManagerID, r.ManagerName, uint64(r.WonDeals),
			uint64(r.ClosedDeals), r.ManagerClosedShare, r.ManagerClosedRevenueShare, r.TakeoverRate,
			uint64(r.Takeovers), r.CoachingCoverage, uint64(r.RepsCoached), r.RepGrowth, uint64(r.TeamReps),
			now); err != nil {
			return fmt.Errorf("append indicators of %s: %w", r.ManagerID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into team_indicators: %w", len(rows), err)
	}
	return s.pruneHistory(ctx, p.AsOf.Add(-HistoryRetention))
}

// pruneHistory drops the monthly partitions of team_indicators whose month ended at or before cutoff.
func (s *Store) pruneHistory(ctx context.Context, cutoff time.Time) error {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = currentDatabase() AND table = 'team_indicators' AND active`)
	if err != nil {
		return fmt.Errorf("list the months of team_indicators: %w", err)
	}
	var months []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return fmt.Errorf("scan the months of team_indicators: %w", err)
		}
		months = append(months, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list the months of team_indicators: %w", err)
	}
	for _, m := range months {
		start, err := time.Parse("200601", m)
		if err != nil {
			return fmt.Errorf("unexpected partition %q of team_indicators: %w", m, err)
		}
		if start.AddDate(0, 1, 0).After(cutoff) {
			continue
		}
		// A partition cannot be a bound parameter; m was just parsed as YYYYMM.
		if err := s.conn.Exec(ctx, "ALTER TABLE team_indicators DROP PARTITION "+m); err != nil {
			return fmt.Errorf("drop month %s of team_indicators: %w", m, err)
		}
	}
	return nil
}

// MonthlyIndicators computes the indicators of every calendar month in indicator.Months(from, to): one run per
// month, each with the month as its window and the month before as the previous window (rep_growth). Rows are
// ordered by month, then manager_id.
func (s *Store) MonthlyIndicators(ctx context.Context, from, to time.Time, coachingKinds []string) ([]indicator.PeriodRow, error) {
	var out []indicator.PeriodRow
	for _, m := range indicator.Months(from, to) {
		p := indicator.MonthParams(m, coachingKinds)
		rows, err := s.Indicators(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("month %s: %w", m.Format("2006-01"), err)
		}
		for _, r := range rows {
			out = append(out, indicator.PeriodRow{PeriodStart: p.Start(), PeriodEnd: p.AsOf, Row: r})
		}
	}
	return out, nil
}
