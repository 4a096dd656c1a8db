package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/indicator"
)

// insertMonthly names every column: ClickHouse 18.16 rejects a batch insert without a column list.
const insertMonthly = `INSERT INTO monthly_indicators (period_start, period_end, manager_id, manager_name, won_deals,
	closed_deals, manager_closed_share, manager_closed_revenue_share, takeover_rate, takeovers, coaching_coverage,
	reps_coached, rep_growth, team_reps, computed_at)`

// savedMonthlyQuery reads the stored months that start in [@from_s, @to_s): FINAL keeps each manager's latest row
// of a month, and the IN keeps only the rows of the month's latest computation, so a manager whom a recomputation
// no longer finds in the month is left out.
const savedMonthlyQuery = `
SELECT period_start, period_end, manager_id, manager_name, won_deals, closed_deals, manager_closed_share,
       manager_closed_revenue_share, takeover_rate, takeovers, coaching_coverage, reps_coached, rep_growth, team_reps
FROM monthly_indicators FINAL
WHERE period_start >= toDateTime(@from_s) AND period_start < toDateTime(@to_s)
  AND (period_start, computed_at) IN
      (SELECT period_start, max(computed_at)
       FROM monthly_indicators
       WHERE period_start >= toDateTime(@from_s) AND period_start < toDateTime(@to_s)
       GROUP BY period_start)
ORDER BY period_start, manager_id`

// lastMonthlySave is the computed_at (Unix seconds) of this process's latest SaveMonthly.
var lastMonthlySave atomic.Int64

// nextComputedAt returns the computed_at of a new save: now in whole seconds, but always after the previous save of
// this process, so that two computations of a month never share a computed_at (the column has second resolution).
func nextComputedAt() time.Time {
	for {
		last := lastMonthlySave.Load()
		next := max(time.Now().Unix(), last+1)
		if lastMonthlySave.CompareAndSwap(last, next) {
			return time.Unix(next, 0).UTC()
		}
	}
}

// SaveMonthly stores computed months (MonthlyIndicators) in monthly_indicators, for Grafana's trend panels. Every
// row of one call gets the same computed_at, later than any earlier save's of this process: a month saved again
// replaces its earlier rows (see SavedMonthly).
func (s *Store) SaveMonthly(ctx context.Context, rows []indicator.PeriodRow) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertMonthly)
	if err != nil {
		return fmt.Errorf("prepare insert into monthly_indicators: %w", err)
	}
	defer batch.Abort()
	now := nextComputedAt()
	for _, r := range rows {
		if err := batch.Append(r.PeriodStart.UTC(), r.PeriodEnd.UTC(), r.ManagerID, r.ManagerName, uint64(r.WonDeals),
			uint64(r.ClosedDeals), r.ManagerClosedShare, r.ManagerClosedRevenueShare, r.TakeoverRate,
			uint64(r.Takeovers), r.CoachingCoverage, uint64(r.RepsCoached), r.RepGrowth, uint64(r.TeamReps),
			now); err != nil {
			return fmt.Errorf("append %s of %s: %w", r.PeriodStart.Format("2006-01"), r.ManagerID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into monthly_indicators: %w", len(rows), err)
	}
	return nil
}

// SavedMonthly reads back what SaveMonthly stored for the months that start in [start of from's month, to): the
// latest computation of each month, ordered by month, then manager_id.
func (s *Store) SavedMonthly(ctx context.Context, from, to time.Time) ([]indicator.PeriodRow, error) {
	rows, err := s.conn.Query(ctx, compact(savedMonthlyQuery),
		clickhouse.Named("from_s", indicator.MonthStart(from).Unix()), clickhouse.Named("to_s", to.Unix()))
	if err != nil {
		return nil, fmt.Errorf("read monthly_indicators: %w", err)
	}
	defer rows.Close()
	var out []indicator.PeriodRow
	for rows.Next() {
		var r indicator.PeriodRow
		var won, closed, takeovers, coached, reps uint64
		if err := rows.Scan(&r.PeriodStart, &r.PeriodEnd, &r.ManagerID, &r.ManagerName, &won, &closed,
			&r.ManagerClosedShare, &r.ManagerClosedRevenueShare, &r.TakeoverRate, &takeovers, &r.CoachingCoverage,
			&coached, &r.RepGrowth, &reps); err != nil {
			return nil, fmt.Errorf("scan monthly_indicators: %w", err)
		}
		r.PeriodStart, r.PeriodEnd = r.PeriodStart.UTC(), r.PeriodEnd.UTC()
		r.WonDeals, r.ClosedDeals, r.Takeovers = int64(won), int64(closed), int64(takeovers)
		r.RepsCoached, r.TeamReps = int64(coached), int64(reps)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read monthly_indicators: %w", err)
	}
	return out, nil
}
