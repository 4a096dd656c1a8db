package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
)

// promotionFragments find the managers promoted from rep (DESIGN.md, "Promotions"): a manager's became_manager_at is
// the start of their first stretch with a direct report; they are promoted when they owned a deal (not deleted)
// before it. Ownership is read from the current copies of the events of the deals that any manager owned before the
// latest became_manager_at (@became_max), reusing the attribution's deal fragments with these deals as candidates.
var promotionFragments = map[string]string{
	// Every user with a direct report at some time up to @as_of, and when the first such stretch began.
	"became_managers": `
SELECT uid AS manager_id, arrayReduce('min', rep_f) AS became_ms
FROM {{timelines}}
WHERE notEmpty(rep_f)`,

	// The deals that one of @managers owned (any copy) before @became_max.
	"owned_candidates": `
SELECT DISTINCT deal_id
FROM deal_events
WHERE time_ms < @became_max AND type IN ('deal.created', 'deal.owner_changed') AND has(@managers, owner_id)`,
}

// becameManagersQuery lists the managers with became_manager_at and name.
const becameManagersQuery = `
SELECT manager_id, became_ms, manager_name
FROM {{became_managers}} AS became
ALL LEFT JOIN {{names}} AS manager_names USING manager_id
ORDER BY manager_id`

// ownedScopeQuery spans the events of the owned candidates, as runScopeQuery does for a window's deals.
const ownedScopeQuery = `
SELECT count() AS deals, min(first) AS deals_from, max(last) AS deals_to
FROM
(
    SELECT deal_id, minMerge(first_ms) AS first, maxMerge(last_ms) AS last
    FROM deal_spans
    WHERE deal_id IN {{owned_candidates}}
    GROUP BY deal_id
)`

// firstOwnedQuery is, per manager of @managers, the earliest time they became owner of a deal that is not deleted.
const firstOwnedQuery = `
SELECT o.5 AS owner, min(o.1) AS first_owned_ms
FROM {{deal_history}}
ARRAY JOIN owners AS o
WHERE has(@managers, owner)
GROUP BY owner`

// recordQuery sums a record run's self-closed won deals per rep.
const recordQuery = `
SELECT rep_id, count() AS deals, sum(amount) AS won_amount
FROM deal_attribution
WHERE run_id = @run AND in_window = 1 AND won = 1 AND rep_id != '' AND rep_id = closer_id
GROUP BY rep_id`

var (
	expandedBecame     = compact(expand(becameManagersQuery))
	expandedOwnedScope = compact(expand(ownedScopeQuery))
	expandedFirstOwned = compact(expandWith(firstOwnedQuery, map[string]string{"candidates": "owned_candidates"}))
)

// Promotions lists the managers promoted from rep as of asOf, ordered by manager_id, with their record as a rep: the
// self-closed won deals of the 180 days before promotion as the events up to then attribute them (one attribution
// run per promotion), and their rank among every rep of that period.
func (s *Store) Promotions(ctx context.Context, asOf time.Time) ([]indicator.Promotion, error) {
	p := indicator.Params{AsOf: asOf}.WithDefaults()
	args := params(p)
	type manager struct {
		id, name string
		became   int64
	}
	var managers []manager
	var ids []string
	var becameMax int64
	rows, err := s.conn.Query(ctx, expandedBecame, args...)
	if err != nil {
		return nil, fmt.Errorf("query managers' first reports: %w", err)
	}
	for rows.Next() {
		var m manager
		if err := rows.Scan(&m.id, &m.became, &m.name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan managers' first reports: %w", err)
		}
		managers, ids, becameMax = append(managers, m), append(ids, m.id), max(becameMax, m.became)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(managers) == 0 {
		return nil, err
	}
	args = append(args, clickhouse.Named("managers", ids), clickhouse.Named("became_max", becameMax))
	var deals uint64
	var from, to int64
	if err := s.conn.QueryRow(ctx, expandedOwnedScope, args...).Scan(&deals, &from, &to); err != nil {
		return nil, fmt.Errorf("find the deals managers owned before their first report: %w", err)
	}
	firstOwned := map[string]int64{}
	if deals > 0 {
		args = append(args, clickhouse.Named("from", from), clickhouse.Named("to", to))
		rows, err := s.conn.Query(ctx, expandedFirstOwned, args...)
		if err != nil {
			return nil, fmt.Errorf("query managers' first deals: %w", err)
		}
		for rows.Next() {
			var id string
			var t int64
			if err := rows.Scan(&id, &t); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan managers' first deals: %w", err)
			}
			firstOwned[id] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("query managers' first deals: %w", err)
		}
	}
	var out []indicator.Promotion
	for _, m := range managers {
		if t, ok := firstOwned[m.id]; !ok || t >= m.became {
			continue
		}
		pr := indicator.Promotion{ManagerID: m.id, ManagerName: m.name, PromotedAt: time.UnixMilli(m.became).UTC(),
			MonthsSincePromotion: (p.AsOf.UnixMilli() - m.became) / indicator.TenurePeriod.Milliseconds()}
		if pr.ManagerName == "" {
			pr.ManagerName = m.id
		}
		amounts, wins, err := s.repRecord(ctx, pr.PromotedAt)
		if err != nil {
			return nil, fmt.Errorf("record as a rep of %s: %w", m.id, err)
		}
		pr.RepWonDeals, pr.RepWonAmount = wins[m.id], amounts[m.id]
		pr.RepsRanked, pr.RepRank = indicator.Rank(amounts, m.id)
		out = append(out, pr)
	}
	return out, nil
}

// repRecord attributes the 180 days before promotedAt and returns each rep's self-closed won amount and deals.
func (s *Store) repRecord(ctx context.Context, promotedAt time.Time) (map[string]float64, map[string]int64, error) {
	run, err := s.Attribute(ctx, indicator.RepRecordParams(promotedAt))
	if err != nil || run.Deals == 0 {
		return nil, nil, err
	}
	defer s.readingAttribution()()
	rows, err := s.conn.Query(ctx, recordQuery, clickhouse.Named("run", run.ID))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	amounts, wins := map[string]float64{}, map[string]int64{}
	for rows.Next() {
		var rep string
		var n uint64
		var amount float64
		if err := rows.Scan(&rep, &n, &amount); err != nil {
			return nil, nil, err
		}
		amounts[rep], wins[rep] = amount, int64(n)
	}
	return amounts, wins, rows.Err()
}

// Watch is the new-manager watch as of current.AsOf (indicator.Watch over Promotions): one row per tenure period of
// every manager promoted within the last `months` months, each period computed like any window.
func (s *Store) Watch(ctx context.Context, current indicator.Params, months int) ([]indicator.WatchRow, error) {
	current = current.WithDefaults()
	promotions, err := s.Promotions(ctx, current.AsOf)
	if err != nil {
		return nil, err
	}
	return indicator.Watch(promotions, current, months, func(p indicator.Params) ([]indicator.Row, error) {
		return s.Indicators(ctx, p)
	})
}
