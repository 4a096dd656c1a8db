package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
)

// Attribution is one deal closed in a window with the people DESIGN.md attributes it to.
type Attribution struct {
	DealID    string
	CloseTime time.Time // t_c, the last close
	Won       bool
	Amount    float64 // the close event's amount, else the latest known at t_c, else 0
	CloserID  string  // C(d): owner at t_c
	RepID     string  // R(d): last owner at or before t_c who was a rep when they became owner; "" if none
	ManagerID string  // M(d): team manager; "" when the deal cannot be attributed
	TakenOver bool    // M(d) took the deal over before t_c
	// TakenOverAt is the first takeover of the deal by M(d) before t_c; zero when TakenOver is false.
	TakenOverAt time.Time
}

// Run is one materialised attribution (table deal_attribution): the deals of one window, attributed once, then read
// by every indicator query of that window and by Grafana.
type Run struct {
	ID     uint64
	Params indicator.Params
	// Deals is the number of deals whose history was read: those with a close or reopen in the window or the
	// previous one, or an owner change in the window.
	Deals uint64
	// From and To span the events of those deals (every copy): what the run read of deal_events.
	From, To time.Time
	// Activities is the number of activities with a copy in the window; ActivitiesFrom and ActivitiesTo span their
	// copies.
	Activities                   uint64
	ActivitiesFrom, ActivitiesTo time.Time
}

// args binds the run's parameters for the queries that read it.
func (r Run) args() []any {
	return append(params(r.Params),
		clickhouse.Named("run", r.ID),
		clickhouse.Named("from", r.From.UnixMilli()), clickhouse.Named("to", r.To.UnixMilli()),
		clickhouse.Named("act_from", r.ActivitiesFrom.UnixMilli()),
		clickhouse.Named("act_to", r.ActivitiesTo.UnixMilli()))
}

// RunRetention is how long a run's rows stay in deal_attribution after it was computed. The latest run of each
// window length is kept regardless, for Grafana's drill-down.
const RunRetention = 15 * time.Minute

// attributionFragments attribute deals. They read deal_events (ordered by event time) for the candidate deals only:
// those with a close or reopen in (@prev_start, @as_of] or an owner change in (@start, @as_of], whose every event
// copy lies in [@from, @to] (their spans, from deal_spans). So the work of one window follows the deals closed and
// handed over in and around it, not the length of the history.
var attributionFragments = map[string]string{
	// The deals a window needs: closed or reopened in the window or the previous one (closed deals and rep_growth),
	// or changing owner in the window (takeovers). No FINAL: a duplicate cannot change a set.
	"candidates": `
SELECT DISTINCT deal_id
FROM deal_events
WHERE time_ms > @prev_start AND time_ms <= @as_of
  AND (type IN ('deal.closed', 'deal.reopened') OR (type = 'deal.owner_changed' AND time_ms > @start))`,

	// The current copy of each event of the candidate deals: all copies lie within the deals' spans
	// [@from, @to], and of two copies of an event (same source and id) the one with the higher ingest_seq wins.
	"deal_events_current": `
SELECT argMax(deal_id, ingest_seq) AS e_deal, argMax(time_ms, ingest_seq) AS e_ms, source AS e_source, id AS e_id,
       argMax(type, ingest_seq) AS e_type, argMax(owner_id, ingest_seq) AS e_owner,
       argMax(outcome, ingest_seq) AS e_outcome, argMax(amount, ingest_seq) AS e_amount,
       argMax(has_amount, ingest_seq) AS e_has_amount
FROM deal_events
WHERE time_ms >= @from AND time_ms <= @to AND deal_id IN {{candidates}}
GROUP BY source, id`,

	// One row per candidate deal that is not deleted: its owner assignments, close/reopen events and known amounts,
	// each in event order, and whether it is closed as of @as_of (its latest close/reopen event is a close) with that
	// close's time, outcome and amount (the close event's amount, else the latest amount known at or before it).
	"deal_history": `
SELECT deal_id, owners, closes,
       arrayElement(arrayMap(c -> c.4, closes), -1) AS closed,
       arrayElement(arrayMap(c -> c.1, closes), -1) AS tc,
       arrayElement(arrayMap(c -> c.5, closes), -1) AS won,
       if(arrayElement(arrayMap(c -> c.7, closes), -1) = 1,
          arrayElement(arrayMap(c -> c.6, closes), -1),
          arrayElement(arrayMap(a -> a.4, arrayFilter(a -> a.1 <= tc, amounts)), -1)) AS amount
FROM
(
    SELECT e_deal AS deal_id,
           arraySort(o -> (o.1, o.2, o.3), groupArrayIf((e_ms, e_source, e_id, e_type = 'deal.owner_changed', e_owner),
                     e_type IN ('deal.created', 'deal.owner_changed'))) AS owners,
           arraySort(c -> (c.1, c.2, c.3), groupArrayIf((e_ms, e_source, e_id, e_type = 'deal.closed',
                     e_outcome = 'won', e_amount, e_has_amount), e_type IN ('deal.closed', 'deal.reopened'))) AS closes,
           arraySort(a -> (a.1, a.2, a.3), groupArrayIf((e_ms, e_source, e_id, e_amount),
                     e_has_amount = 1 AND e_type IN ('deal.created', 'deal.amount_changed', 'deal.closed'))) AS amounts
    FROM {{deal_events_current}}
    WHERE e_ms <= @as_of
    GROUP BY e_deal
    HAVING countIf(e_type = 'deal.deleted') = 0
)`,

	// One row per owner assignment: the owner just before it (the previous assignment, not the payload's optional
	// previous_owner_id) and whether the deal was open, i.e. its latest close/reopen strictly before t was not a close.
	"assignments": `
SELECT deal_id, closed, tc, won, amount, i, o.1 AS t, o.4 AS is_change, o.5 AS owner,
       if(i = 1, '', arrayElement(arrayMap(x -> x.5, owners), greatest(i - 1, 1))) AS prev,
       arrayElement(arrayMap(c -> c.4, arrayFilter(c -> c.1 < t, closes)), -1) = 0 AS open_at
FROM {{deal_history}}
ARRAY JOIN owners AS o, arrayEnumerate(owners) AS i`,

	// Adds: was the new owner a rep (no direct reports) when they became owner.
	"assignments_rep": `
SELECT deal_id, closed, tc, won, amount, i, t, is_change, owner, prev, open_at,
       NOT arrayExists((f, e, tt) -> f <= tt AND tt < e, rep_f, rep_t, arrayResize([t], length(rep_f), t)) AS is_rep
FROM (SELECT *, owner AS uid FROM {{assignments}}) AS assignment
ALL LEFT JOIN (SELECT uid, rep_f, rep_t FROM {{timelines}}) AS owner_timeline USING uid`,

	// Adds: is it a takeover, an owner change on an open deal to the manager (at t) of the previous owner.
	"assignments_takeover": `
SELECT deal_id, closed, tc, won, amount, i, t, owner, is_rep,
       is_change AND prev != '' AND open_at AND owner != prev
         AND owner = arrayElement(arrayFilter((m, ct, tt) -> ct <= tt, own_m, own_t, arrayResize([t], length(own_t), t)),
                                  -1) AS takeover
FROM (SELECT *, prev AS uid FROM {{assignments_rep}}) AS assignment
ALL LEFT JOIN (SELECT uid, own_t, own_m FROM {{timelines}}) AS prev_timeline USING uid`,

	// One row per deal: closer C(d) (owner at t_c), rep of record R(d) (last owner at or before t_c who was a rep
	// when they became owner) and its takeovers as (time, manager) pairs in time order.
	"closers": `
SELECT deal_id, closed, tc, won, amount, takeovers,
       arrayResize([tc], length(seq), tc) AS tcs,
       arrayElement(arrayMap(x -> x.3, arrayFilter((x, c) -> x.2 <= c, seq, tcs)), -1) AS closer,
       arrayElement(arrayMap(x -> x.3, arrayFilter((x, c) -> x.2 <= c AND x.4, seq, tcs)), -1) AS rep,
       if(rep != '', rep, closer) AS uid
FROM
(
    SELECT deal_id, closed, tc, won, amount,
           arraySort(x -> x.1, groupArray((i, t, owner, is_rep))) AS seq,
           arraySort(groupArrayIf((t, owner), takeover)) AS takeovers
    FROM {{assignments_takeover}}
    GROUP BY deal_id, closed, tc, won, amount -- one value per deal
)`,

	// One row per deal with its team manager M(d): the manager of R(d) at t_c; without a rep owner, C(d) if C(d) is
	// a manager at t_c, else C(d)'s manager. taken: a takeover by M(d) happened before t_c; taken_ms: the first.
	"attribution": `
SELECT deal_id, closed, tc, won, amount, takeovers, closer, rep,
       if(rep = '' AND arrayExists((f, e, c) -> f <= c AND c < e, rep_f, rep_t, arrayResize([tc], length(rep_f), tc)),
          closer,
          arrayElement(arrayFilter((m, ct, c) -> ct <= c, own_m, own_t, arrayResize([tc], length(own_t), tc)), -1))
         AS manager,
       arrayFilter((x, m, c) -> x.2 = m AND x.1 < c, takeovers, arrayResize([manager], length(takeovers), manager),
                   arrayResize([tc], length(takeovers), tc)) AS taken_by_manager,
       notEmpty(taken_by_manager) AS taken,
       if(taken, taken_by_manager[1].1, toInt64(0)) AS taken_ms
FROM {{closers}} AS deal
ALL LEFT JOIN (SELECT uid, own_t, own_m, rep_f, rep_t FROM {{timelines}}) AS attributed_timeline USING uid`,
}

// runScopeQuery counts the candidate deals and finds the span of their events, and the same for the activities of
// the window: what the run must read so that it sees every copy of them.
const runScopeQuery = `
SELECT deals, deals_from, deals_to, activities, activities_from, activities_to
FROM
(
    SELECT 1 AS one, count() AS deals, min(first) AS deals_from, max(last) AS deals_to
    FROM
    (
        SELECT deal_id, minMerge(first_ms) AS first, maxMerge(last_ms) AS last
        FROM deal_spans
        WHERE deal_id IN {{candidates}}
        GROUP BY deal_id
    )
) AS deal_scope
ALL LEFT JOIN
(
    SELECT 1 AS one, count() AS activities, min(first) AS activities_from, max(last) AS activities_to
    FROM
    (
        SELECT activity_id, minMerge(first_ms) AS first, maxMerge(last_ms) AS last
        FROM activity_spans
        WHERE activity_id IN {{window_activities}}
        GROUP BY activity_id
    )
) AS activity_scope USING one`

// materialiseRun attributes the candidate deals and stores the ones a window's indicators read: closed in the
// window or the previous one, or taken over at some time (takeover counts are per takeover event in the window).
const materialiseRun = `
INSERT INTO deal_attribution (run_id, as_of, window_seconds, computed_at, deal_id, closed, in_window, close_time,
    close_ms, won, amount, closer_id, rep_id, manager_id, taken_over, taken_over_ms, takeover_ms, takeover_managers)
SELECT toUInt64(@run), toDateTime(@as_of_s), toUInt32(@window_s), toDateTime(@now_s), deal_id, closed,
       closed AND tc > @start, toDateTime(intDiv(if(closed, tc, toInt64(0)), 1000)), if(closed, tc, toInt64(0)),
       closed AND won, if(closed, amount, 0.), if(closed, closer, ''), if(closed, rep, ''), if(closed, manager, ''),
       closed AND taken, if(closed, taken_ms, toInt64(0)), arrayMap(x -> x.1, takeovers), arrayMap(x -> x.2, takeovers)
FROM {{attribution}}
WHERE (closed AND tc > @prev_start) OR notEmpty(takeovers)`

// runDealsQuery reads back the deals of a run closed in its window.
const runDealsQuery = `
SELECT deal_id, close_ms, won, amount, closer_id, rep_id, manager_id, taken_over, taken_over_ms
FROM deal_attribution
WHERE run_id = @run AND in_window = 1
ORDER BY close_ms, deal_id`

// runsQuery lists the runs stored, for pruning.
const runsQuery = `
SELECT run_id, any(window_seconds) AS run_window, max(computed_at) AS run_computed_at
FROM deal_attribution
GROUP BY run_id`

var (
	expandedRunScope   = compact(expand(runScopeQuery))
	expandedMaterialis = compact(expand(materialiseRun))
)

// Attribute computes the attribution of the window p once and stores it as a new run in deal_attribution. Runs
// older than RunRetention are dropped, except the latest of each window length.
func (s *Store) Attribute(ctx context.Context, p indicator.Params) (Run, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return Run{}, err
	}
	now := time.Now().UTC()
	run := Run{ID: uint64(now.UnixNano()), Params: p}
	var dealsFrom, dealsTo, actFrom, actTo int64
	if err := s.conn.QueryRow(ctx, expandedRunScope, params(p)...).Scan(&run.Deals, &dealsFrom, &dealsTo,
		&run.Activities, &actFrom, &actTo); err != nil {
		return Run{}, fmt.Errorf("find the deals of the window ending %s: %w", p.AsOf.Format(time.RFC3339), err)
	}
	run.From, run.To = time.UnixMilli(dealsFrom).UTC(), time.UnixMilli(dealsTo).UTC()
	run.ActivitiesFrom, run.ActivitiesTo = time.UnixMilli(actFrom).UTC(), time.UnixMilli(actTo).UTC()
	if run.Deals == 0 {
		return run, nil
	}
	args := append(run.args(),
		clickhouse.Named("as_of_s", p.AsOf.Unix()),
		clickhouse.Named("window_s", int64(p.Window/time.Second)),
		clickhouse.Named("now_s", now.Unix()))
	unlock := s.readingAttribution()
	err := s.conn.Exec(ctx, expandedMaterialis, args...)
	unlock()
	if err != nil {
		return Run{}, fmt.Errorf("attribute %d deals into deal_attribution: %w", run.Deals, err)
	}
	if err := s.pruneRuns(ctx, now); err != nil {
		return Run{}, err
	}
	return run, nil
}

// pruneRuns drops the runs computed more than RunRetention before now, except the latest run of each window length.
// Each run is one partition, so dropping it is cheap and leaves no deleted rows behind.
func (s *Store) pruneRuns(ctx context.Context, now time.Time) error {
	unlock := s.readingAttribution()
	rows, err := s.conn.Query(ctx, runsQuery)
	if err != nil {
		unlock()
		return fmt.Errorf("list attribution runs: %w", err)
	}
	type stored struct {
		id       uint64
		computed time.Time
	}
	latest := map[uint32]uint64{}
	var runs []stored
	for rows.Next() {
		var r stored
		var window uint32
		if err := rows.Scan(&r.id, &window, &r.computed); err != nil {
			rows.Close()
			unlock()
			return fmt.Errorf("scan attribution runs: %w", err)
		}
		runs = append(runs, r)
		latest[window] = max(latest[window], r.id)
	}
	rows.Close()
	unlock()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list attribution runs: %w", err)
	}
	keep := map[uint64]bool{}
	for _, id := range latest {
		keep[id] = true
	}
	for _, r := range runs {
		if keep[r.id] || now.Sub(r.computed) < RunRetention {
			continue
		}
		// A partition cannot be a bound parameter; the run id is a number this package generated, not input.
		unlock := s.droppingAttribution()
		err := s.conn.Exec(ctx, "ALTER TABLE deal_attribution DROP PARTITION "+strconv.FormatUint(r.id, 10))
		unlock()
		if err != nil {
			return fmt.Errorf("drop attribution run %d: %w", r.id, err)
		}
	}
	return nil
}

// DealAttribution returns every deal closed in the window (p.AsOf − p.Window, p.AsOf], ordered by close time.
func (s *Store) DealAttribution(ctx context.Context, p indicator.Params) ([]Attribution, error) {
	run, err := s.Attribute(ctx, p)
	if err != nil {
		return nil, err
	}
	return s.RunDeals(ctx, run)
}

// RunDeals returns the deals of a run closed in its window, ordered by close time.
func (s *Store) RunDeals(ctx context.Context, run Run) ([]Attribution, error) {
	if run.Deals == 0 {
		return nil, nil
	}
	defer s.readingAttribution()()
	rows, err := s.conn.Query(ctx, runDealsQuery, clickhouse.Named("run", run.ID))
	if err != nil {
		return nil, fmt.Errorf("read deal attribution: %w", err)
	}
	defer rows.Close()
	var out []Attribution
	for rows.Next() {
		var a Attribution
		var tc, takenMS int64
		var won, taken uint8
		if err := rows.Scan(&a.DealID, &tc, &won, &a.Amount, &a.CloserID, &a.RepID, &a.ManagerID, &taken,
			&takenMS); err != nil {
			return nil, fmt.Errorf("scan deal attribution: %w", err)
		}
		a.CloseTime, a.Won, a.TakenOver = time.UnixMilli(tc).UTC(), won == 1, taken == 1
		if a.TakenOver {
			a.TakenOverAt = time.UnixMilli(takenMS).UTC()
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
