package store

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
)

// The indicator queries are composed from the named fragments below. A fragment is referenced as {{name}} and expanded
// into a parenthesised subquery: ClickHouse 18.16 has no common table expressions and allows one JOIN per SELECT,
// so each step of DESIGN.md's definitions is a subquery of the next. Every fragment reads events with FINAL (one row
// per (source, id)) and only events at or before @as_of. Times are Unix milliseconds (events.time_ms); ties at the
// same millisecond are broken by (source, id), so results never depend on arrival order.
//
// ClickHouse 18.16 quirk: a subquery column referenced only inside a lambda is not requested from the subquery
// ("Unknown identifier"). Lambdas therefore never capture such a column; it is passed as an extra array argument,
// arrayResize([x], length(arr), x), which newer releases handle just as well.
//
// Bound parameters: @as_of (window end, ms), @start (window start = as_of − W, exclusive), @prev_start (as_of − 2W),
// @kinds (coaching activity kinds).
var fragments = map[string]string{
	// One row per user: their manager changes in event order. user.deactivated ends the reporting line ('' = none).
	"user_changes": `
SELECT user_id,
       arraySort(c -> (c.1, c.2, c.3),
                 groupArray((time_ms, source, id, if(type = 'user.deactivated', '', manager_id)))) AS changes
FROM events FINAL
WHERE type IN ('user.manager_changed', 'user.deactivated') AND time_ms <= @as_of
GROUP BY user_id`,

	// One row per reporting interval [from, to) of a user under a manager; to = max Int64 while it lasts.
	"reporting_intervals": `
SELECT user_id,
       c.1 AS from_ms,
       if(i < length(changes), changes[i + 1].1, toInt64(9223372036854775807)) AS to_ms,
       c.4 AS manager_id
FROM {{user_changes}}
ARRAY JOIN changes AS c, arrayEnumerate(changes) AS i
WHERE manager_id != '' AND from_ms < to_ms`,

	// One row per user with everything point-in-time lookups need:
	//   own_t/own_m: their manager changes (the manager of U at t is the last own_m with own_t <= t);
	//   rep_f/rep_t: the intervals during which someone reported to them (U is a manager at t iff one contains t).
	"timelines": `
SELECT uid,
       groupArrayArray(own_t) AS own_t, groupArrayArray(own_m) AS own_m,
       groupArrayArray(rep_f) AS rep_f, groupArrayArray(rep_t) AS rep_t
FROM
(
    SELECT user_id AS uid, arrayMap(c -> c.1, changes) AS own_t, arrayMap(c -> c.4, changes) AS own_m,
           emptyArrayInt64() AS rep_f, emptyArrayInt64() AS rep_t
    FROM {{user_changes}}
    UNION ALL
    SELECT manager_id AS uid, emptyArrayInt64() AS own_t, emptyArrayString() AS own_m,
           [from_ms] AS rep_f, [to_ms] AS rep_t
    FROM {{reporting_intervals}}
)
GROUP BY uid`,

	// One row per deal that is not deleted: its owner assignments, close/reopen events and known amounts, each in
	// event order, and whether it is closed as of @as_of (its latest close/reopen event is a close) with that close's
	// time, outcome and amount (the close event's amount, else the latest amount known at or before it).
	"deals": `
SELECT deal_id, owners, closes,
       arrayElement(arrayMap(c -> c.4, closes), -1) AS closed,
       arrayElement(arrayMap(c -> c.1, closes), -1) AS tc,
       arrayElement(arrayMap(c -> c.5, closes), -1) AS won,
       if(arrayElement(arrayMap(c -> c.7, closes), -1) = 1,
          arrayElement(arrayMap(c -> c.6, closes), -1),
          arrayElement(arrayMap(a -> a.4, arrayFilter(a -> a.1 <= tc, amounts)), -1)) AS amount
FROM
(
    SELECT deal_id,
           arraySort(o -> (o.1, o.2, o.3), groupArrayIf((time_ms, source, id, type = 'deal.owner_changed', owner_id),
                     type IN ('deal.created', 'deal.owner_changed'))) AS owners,
           arraySort(c -> (c.1, c.2, c.3), groupArrayIf((time_ms, source, id, type = 'deal.closed', outcome = 'won',
                     amount, has_amount), type IN ('deal.closed', 'deal.reopened'))) AS closes,
           arraySort(a -> (a.1, a.2, a.3), groupArrayIf((time_ms, source, id, amount),
                     has_amount = 1 AND type IN ('deal.created', 'deal.amount_changed', 'deal.closed'))) AS amounts
    FROM events FINAL
    WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.amount_changed', 'deal.closed', 'deal.reopened',
                   'deal.deleted')
      AND time_ms <= @as_of
    GROUP BY deal_id
    HAVING countIf(type = 'deal.deleted') = 0
)`,

	// One row per owner assignment: the owner just before it (the previous assignment, not the payload's optional
	// previous_owner_id) and whether the deal was open, i.e. its latest close/reopen strictly before t was not a close.
	"assignments": `
SELECT deal_id, closed, tc, won, amount, i, o.1 AS t, o.4 AS is_change, o.5 AS owner,
       if(i = 1, '', arrayElement(arrayMap(x -> x.5, owners), greatest(i - 1, 1))) AS prev,
       arrayElement(arrayMap(c -> c.4, arrayFilter(c -> c.1 < t, closes)), -1) = 0 AS open_at
FROM {{deals}}
ARRAY JOIN owners AS o, arrayEnumerate(owners) AS i`,

	// Adds: was the new owner a rep (no direct reports) when they became owner.
	"assignments_rep": `
SELECT deal_id, closed, tc, won, amount, i, t, is_change, owner, prev, open_at,
       NOT arrayExists((f, e, tt) -> f <= tt AND tt < e, rep_f, rep_t, arrayResize([t], length(rep_f), t)) AS is_rep
FROM (SELECT *, owner AS uid FROM {{assignments}})
ALL LEFT JOIN (SELECT uid, rep_f, rep_t FROM {{timelines}}) USING uid`,

	// Adds: is it a takeover, an owner change on an open deal to the manager (at t) of the previous owner.
	"assignments_takeover": `
SELECT deal_id, closed, tc, won, amount, i, t, owner, is_rep,
       is_change AND prev != '' AND open_at AND owner != prev
         AND owner = arrayElement(arrayFilter((m, ct, tt) -> ct <= tt, own_m, own_t, arrayResize([t], length(own_t), t)),
                                  -1) AS takeover
FROM (SELECT *, prev AS uid FROM {{assignments_rep}})
ALL LEFT JOIN (SELECT uid, own_t, own_m FROM {{timelines}}) USING uid`,

	// One row per deal: closer C(d) (owner at t_c), rep of record R(d) (last owner at or before t_c who was a rep
	// when they became owner) and its takeovers as (time, manager) pairs.
	"closers": `
SELECT deal_id, closed, tc, won, amount, takeovers,
       arrayResize([tc], length(seq), tc) AS tcs,
       arrayElement(arrayMap(x -> x.3, arrayFilter((x, c) -> x.2 <= c, seq, tcs)), -1) AS closer,
       arrayElement(arrayMap(x -> x.3, arrayFilter((x, c) -> x.2 <= c AND x.4, seq, tcs)), -1) AS rep,
       if(rep != '', rep, closer) AS uid
FROM
(
    SELECT deal_id, any(closed) AS closed, any(tc) AS tc, any(won) AS won, any(amount) AS amount,
           arraySort(x -> x.1, groupArray((i, t, owner, is_rep))) AS seq,
           groupArrayIf((t, owner), takeover) AS takeovers
    FROM {{assignments_takeover}}
    GROUP BY deal_id
)`,

	// One row per deal with its team manager M(d): the manager of R(d) at t_c; without a rep owner, C(d) if C(d) is
	// a manager at t_c, else C(d)'s manager. taken: a takeover by M(d) happened before t_c.
	"attribution": `
SELECT deal_id, closed, tc, won, amount, takeovers, closer, rep,
       if(rep = '' AND arrayExists((f, e, c) -> f <= c AND c < e, rep_f, rep_t, arrayResize([tc], length(rep_f), tc)),
          closer,
          arrayElement(arrayFilter((m, ct, c) -> ct <= c, own_m, own_t, arrayResize([tc], length(own_t), tc)), -1))
         AS manager,
       arrayExists((x, m, c) -> x.2 = m AND x.1 < c, takeovers, arrayResize([manager], length(takeovers), manager),
                   arrayResize([tc], length(takeovers), tc)) AS taken
FROM {{closers}}
ALL LEFT JOIN (SELECT uid, own_t, own_m, rep_f, rep_t FROM {{timelines}}) USING uid`,

	// One row per (user, reporting interval) overlapping the window (@start, @as_of], clipped to [a, b) in ms.
	"spans": `
SELECT user_id AS rep_id, manager_id, greatest(from_ms, toInt64(@start + 1)) AS a, least(to_ms, toInt64(@as_of + 1)) AS b
FROM {{reporting_intervals}}
WHERE a < b`,

	// The team of M: users who at some instant of the window reported to M while having no direct reports. The
	// first such instant of a span, if any, is its start or the end of one of the user's own managing intervals.
	"team": `
SELECT DISTINCT manager_id, rep_id
FROM
(
    SELECT manager_id, rep_id, rep_f, rep_t, arrayConcat([a], arrayFilter((x, aa, bb) -> x >= aa AND x < bb, rep_t,
                     arrayResize([a], length(rep_t), a), arrayResize([b], length(rep_t), b))) AS candidates
    FROM (SELECT *, rep_id AS uid FROM {{spans}})
    ALL LEFT JOIN (SELECT uid, rep_f, rep_t FROM {{timelines}}) USING uid
)
ARRAY JOIN candidates AS c
WHERE NOT arrayExists((f, e) -> f <= c AND c < e, rep_f, rep_t)`,

	// (manager, rep) pairs with a coaching activity in the window whose actor is the manager and subject the rep.
	"coached": `
SELECT DISTINCT actor_id AS manager_id, subject AS rep_id, toUInt8(1) AS coached
FROM events FINAL
ARRAY JOIN subject_user_ids AS subject
WHERE type = 'activity.logged' AND time_ms > @start AND time_ms <= @as_of AND has(@kinds, kind)`,

	// Per rep, self-closed (R(d) = C(d) = rep) won amount in the window and in the previous window.
	"self_won": `
SELECT rep AS rep_id, sumIf(amount, tc > @start) AS cur, sumIf(amount, tc <= @start) AS prev
FROM {{attribution}}
WHERE closed AND won AND rep != '' AND rep = closer AND tc > @prev_start AND tc <= @as_of
GROUP BY rep`,

	// Per manager: team size, reps coached, and the sorted growth ratios of the reps with previous-window amount > 0.
	"team_stats": `
SELECT manager_id, count() AS team_reps, sum(coached) AS reps_coached,
       arraySort(groupArrayIf(cur / prev - 1, prev > 0)) AS growth
FROM
(
    SELECT manager_id, rep_id, coached, cur, prev
    FROM (SELECT manager_id, rep_id, coached FROM {{team}} ALL LEFT JOIN {{coached}} USING (manager_id, rep_id))
    ALL LEFT JOIN {{self_won}} USING rep_id
)
GROUP BY manager_id`,

	// Latest non-empty name per user.
	"names": `
SELECT user_id AS manager_id,
       arrayElement(arrayMap(x -> x.4, arraySort(x -> (x.1, x.2, x.3), groupArray((time_ms, source, id, name)))), -1)
         AS manager_name
FROM events FINAL
WHERE type = 'user.upserted' AND name != '' AND time_ms <= @as_of
GROUP BY user_id`,
}

// managersQuery lists every manager of the window (a user with at least one direct report at some instant of it)
// with name and team figures. rep_growth is the median of the growth array: the middle value, or the mean of the
// two middle values for an even count.
const managersQuery = `
SELECT manager_id, manager_name, team_reps, reps_coached, length(growth) AS growth_reps,
       if(length(growth) = 0, 0,
          if(length(growth) % 2 = 1, growth[intDiv(length(growth), 2) + 1],
             (growth[intDiv(length(growth), 2)] + growth[intDiv(length(growth), 2) + 1]) / 2)) AS rep_growth
FROM
(
    SELECT manager_id, team_reps, reps_coached, growth
    FROM (SELECT DISTINCT manager_id FROM {{spans}})
    ALL LEFT JOIN {{team_stats}} USING manager_id
)
ALL LEFT JOIN {{names}} USING manager_id
ORDER BY manager_id`

// dealsQuery aggregates the deals closed in the window per team manager M(d).
const dealsQuery = `
SELECT manager AS manager_id,
       count() AS closed_deals,
       countIf(won) AS won_deals,
       countIf(won AND closer = manager) AS manager_won_deals,
       sumIf(amount, won) AS won_amount,
       sumIf(amount, won AND closer = manager) AS manager_won_amount,
       countIf(taken) AS taken_over_deals
FROM {{attribution}}
WHERE closed AND tc > @start AND tc <= @as_of AND manager != ''
GROUP BY manager`

// takeoversQuery counts takeover events in the window per manager who took over, on any deal not deleted.
const takeoversQuery = `
SELECT manager_id, count() AS takeovers
FROM
(
    SELECT x.1 AS t, x.2 AS manager_id
    FROM {{attribution}}
    ARRAY JOIN takeovers AS x
)
WHERE t > @start AND t <= @as_of
GROUP BY manager_id`

var placeholder = regexp.MustCompile(`\{\{(\w+)\}\}`)

// expand replaces each {{name}} with the named fragment, recursively, as a parenthesised subquery.
func expand(sql string) string {
	return placeholder.ReplaceAllStringFunc(sql, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		f, ok := fragments[name]
		if !ok {
			panic("store: unknown SQL fragment " + name)
		}
		return "(" + expand(f) + "\n)"
	})
}

var (
	expandedManagers  = expand(managersQuery)
	expandedDeals     = expand(dealsQuery)
	expandedTakeovers = expand(takeoversQuery)
)

// Indicators computes every indicator of DESIGN.md for the window (p.AsOf − p.Window, p.AsOf], one row per manager,
// ordered by manager_id.
func (s *Store) Indicators(ctx context.Context, p indicator.Params) ([]indicator.Row, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	args := params(p)
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
	asOf, w := p.AsOf.UnixMilli(), p.Window.Milliseconds()
	return []any{
		clickhouse.Named("as_of", asOf), clickhouse.Named("start", asOf-w), clickhouse.Named("prev_start", asOf-2*w),
		clickhouse.Named("kinds", p.CoachingKinds),
	}
}

func ratio(num, den float64) *float64 {
	if den == 0 {
		return nil
	}
	v := num / den
	return &v
}

// SaveIndicators stores one refresh of the indicators for Grafana (table team_indicators).
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
	return nil
}
