package indicator

import (
	"cmp"
	"slices"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// TenurePeriod is the length of a tenure period after a promotion, and the unit of months_since_promotion.
const TenurePeriod = 30 * 24 * time.Hour

// RepRecordPeriod is how far before promoted_at a promoted manager's record as a rep is taken.
const RepRecordPeriod = 180 * 24 * time.Hour

// Promotion is a manager promoted from rep (DESIGN.md, "Promotions"): they owned a deal while having no direct
// reports, before became_manager_at, the start of their first stretch with at least one direct report.
type Promotion struct {
	ManagerID   string    `json:"manager_id"`
	ManagerName string    `json:"manager_name"`
	PromotedAt  time.Time `json:"promoted_at"` // = became_manager_at
	// MonthsSincePromotion is the number of whole 30-day periods from PromotedAt to as_of.
	MonthsSincePromotion int64 `json:"months_since_promotion"`
	// RepWonDeals and RepWonAmount are the manager's self-closed won deals (R(d) = C(d) = the manager) closed in
	// the 180 days before promotion, (PromotedAt − 180d, PromotedAt], as the events up to PromotedAt attribute them:
	// the record the manager was promoted on.
	RepWonDeals  int64   `json:"rep_won_deals"`
	RepWonAmount float64 `json:"rep_won_amount"`
	// RepRank is the manager's rank by RepWonAmount among every user with a self-closed won amount > 0 in the same
	// period (1 = best; equal amounts share a rank); null when the manager had none.
	RepRank *int64 `json:"rep_rank"`
	// RepsRanked is the number of users ranked in that period.
	RepsRanked int64 `json:"reps_ranked"`
}

// ReferencePromotions is the plain-Go reference for the promotions known at asOf, ordered by manager_id. Only events
// at or before asOf are considered; deleted deals are excluded, as everywhere.
func ReferencePromotions(events []event.Event, asOf time.Time) []Promotion {
	p := Params{AsOf: asOf}.WithDefaults()
	m := newModel(events, p)
	firstOwned := map[string]int64{}
	for _, d := range m.deals {
		if d.deleted {
			continue
		}
		for _, o := range d.owners {
			if t, ok := firstOwned[o.owner]; !ok || o.at.ms < t {
				firstOwned[o.owner] = o.at.ms
			}
		}
	}
	var out []Promotion
	for mgr, ivs := range m.reportsOf {
		became := slices.MinFunc(ivs, func(a, b interval) int { return cmp.Compare(a.from, b.from) }).from
		if t, ok := firstOwned[mgr]; !ok || t >= became {
			continue
		}
		pr := Promotion{ManagerID: mgr, ManagerName: cmp.Or(m.names[mgr], mgr), PromotedAt: time.UnixMilli(became).UTC(),
			MonthsSincePromotion: (m.end - became) / TenurePeriod.Milliseconds()}
		record := RepRecordParams(pr.PromotedAt)
		rm := newModel(events, record.WithDefaults())
		amounts := map[string]float64{}
		for _, d := range rm.deals {
			if d.deleted {
				continue
			}
			a, closed := rm.attribute(d)
			if !closed || !a.won || a.rep == "" || a.rep != a.closer || a.closeMS <= rm.start {
				continue
			}
			amounts[a.rep] += a.amount
			if a.rep == mgr {
				pr.RepWonDeals++
			}
		}
		pr.RepWonAmount = amounts[mgr]
		pr.RepsRanked, pr.RepRank = Rank(amounts, mgr)
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b Promotion) int { return cmp.Compare(a.ManagerID, b.ManagerID) })
	return out
}

// RepRecordParams is the window of a record as a rep: the 180 days before promotedAt, (promotedAt − 180d,
// promotedAt], seen with the events up to promotedAt. It has no use for a previous window, which is kept minimal.
func RepRecordParams(promotedAt time.Time) Params {
	return Params{AsOf: promotedAt, Window: RepRecordPeriod, PrevWindow: time.Millisecond}
}

// Rank ranks who among the users with an amount > 0: 1 + the number of users with a larger amount, so equal amounts
// share a rank. It returns how many users were ranked, and nil when who has no amount > 0.
func Rank(amounts map[string]float64, who string) (ranked int64, rank *int64) {
	mine := amounts[who]
	r := int64(1)
	for _, a := range amounts {
		if a > 0 {
			ranked++
		}
		if a > mine {
			r++
		}
	}
	if mine <= 0 {
		return ranked, nil
	}
	return ranked, &r
}
