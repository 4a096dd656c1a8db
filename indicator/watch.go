package indicator

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// DefaultWatchMonths is how recent a promotion must be for the new-manager watch: promoted within this many calendar
// months before as_of.
const DefaultWatchMonths = 12

// WatchRow is one recently promoted manager in one tenure period: the period's takeover rate, manager-closed share
// and coaching coverage (with their counts), next to the median of the same indicator over all managers in the
// current window.
type WatchRow struct {
	ManagerID            string    `json:"manager_id"`
	ManagerName          string    `json:"manager_name"`
	PromotedAt           time.Time `json:"promoted_at"`
	MonthsSincePromotion int64     `json:"months_since_promotion"`
	// Period is the tenure period k = 1, 2, …: (PeriodStart, PeriodEnd] = (promoted_at + (k−1)·30d,
	// promoted_at + k·30d], cut at as_of for the period under way.
	Period             int64     `json:"period"`
	PeriodStart        time.Time `json:"period_start"`
	PeriodEnd          time.Time `json:"period_end"`
	TakeoverRate       *float64  `json:"takeover_rate"`
	ManagerClosedShare *float64  `json:"manager_closed_share"`
	CoachingCoverage   *float64  `json:"coaching_coverage"`
	ClosedDeals        int64     `json:"closed_deals"`
	WonDeals           int64     `json:"won_deals"`
	Takeovers          int64     `json:"takeovers"`
	TeamReps           int64     `json:"team_reps"`
	// The medians over all managers of the current window (as_of − W, as_of], among those with a value.
	MedianTakeoverRate       *float64 `json:"median_takeover_rate"`
	MedianManagerClosedShare *float64 `json:"median_manager_closed_share"`
	MedianCoachingCoverage   *float64 `json:"median_coaching_coverage"`
}

// Watch builds the new-manager watch as of current.AsOf: for every promotion within the last `months` calendar
// months, a row per tenure period up to as_of, computed by compute (Reference, or the store's SQL), with the medians
// of the current window (current) over all managers. Rows are ordered by manager_id, then period.
func Watch(promotions []Promotion, current Params, months int, compute func(Params) ([]Row, error)) ([]WatchRow, error) {
	current = current.WithDefaults()
	now, err := compute(current)
	if err != nil {
		return nil, fmt.Errorf("current window: %w", err)
	}
	medians := [3]*float64{
		medianOf(now, func(r Row) *float64 { return r.TakeoverRate }),
		medianOf(now, func(r Row) *float64 { return r.ManagerClosedShare }),
		medianOf(now, func(r Row) *float64 { return r.CoachingCoverage }),
	}
	since := current.AsOf.AddDate(0, -months, 0)
	var out []WatchRow
	for _, pr := range promotions {
		if !pr.PromotedAt.After(since) || pr.PromotedAt.After(current.AsOf) {
			continue
		}
		for k := int64(1); ; k++ {
			start := pr.PromotedAt.Add(time.Duration(k-1) * TenurePeriod)
			if !start.Before(current.AsOf) {
				break
			}
			end := pr.PromotedAt.Add(time.Duration(k) * TenurePeriod)
			if end.After(current.AsOf) {
				end = current.AsOf // the period under way
			}
			p := Params{AsOf: end, Window: end.Sub(start), CoachingKinds: current.CoachingKinds}
			rows, err := compute(p)
			if err != nil {
				return nil, fmt.Errorf("%s, tenure period %d: %w", pr.ManagerID, k, err)
			}
			w := WatchRow{ManagerID: pr.ManagerID, ManagerName: pr.ManagerName, PromotedAt: pr.PromotedAt,
				MonthsSincePromotion: pr.MonthsSincePromotion, Period: k, PeriodStart: start, PeriodEnd: end,
				MedianTakeoverRate: medians[0], MedianManagerClosedShare: medians[1], MedianCoachingCoverage: medians[2]}
			if i := slices.IndexFunc(rows, func(r Row) bool { return r.ManagerID == pr.ManagerID }); i >= 0 {
				r := rows[i]
				w.TakeoverRate, w.ManagerClosedShare, w.CoachingCoverage = r.TakeoverRate, r.ManagerClosedShare,
					r.CoachingCoverage
				w.ClosedDeals, w.WonDeals, w.Takeovers, w.TeamReps = r.ClosedDeals, r.WonDeals, r.Takeovers, r.TeamReps
			}
			out = append(out, w)
		}
	}
	slices.SortStableFunc(out, func(a, b WatchRow) int {
		return cmp.Or(cmp.Compare(a.ManagerID, b.ManagerID), cmp.Compare(a.Period, b.Period))
	})
	return out, nil
}

// medianOf is the median of an indicator over the rows where it is not null.
func medianOf(rows []Row, get func(Row) *float64) *float64 {
	var xs []float64
	for _, r := range rows {
		if v := get(r); v != nil {
			xs = append(xs, *v)
		}
	}
	return median(xs)
}
