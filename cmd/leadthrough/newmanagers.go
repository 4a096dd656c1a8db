package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/store"
)

// watchOutput is the JSON of `indicators --new-managers`: the watched managers' promotions and their tenure periods.
type watchOutput struct {
	Promotions []indicator.Promotion `json:"promotions"`
	Watch      []indicator.WatchRow  `json:"watch"`
}

// newManagerWatch prints the new-manager watch as of current.AsOf (store.Watch) with the record of each watched
// manager as a rep (store.Promotions). The promotions are computed once, and the watch from them as store.Watch does,
// so that both halves of the output come from the same data even while events are being ingested.
func newManagerWatch(ctx context.Context, s *store.Store, current indicator.Params, months int, format string,
	out io.Writer) error {
	promotions, err := s.Promotions(ctx, current.AsOf)
	if err != nil {
		return err
	}
	rows, err := indicator.Watch(promotions, current, months, func(p indicator.Params) ([]indicator.Row, error) {
		return s.Indicators(ctx, p)
	})
	if err != nil {
		return err
	}
	// Only the watched promotions: those with at least one tenure period in the watch.
	watched := []indicator.Promotion{}
	for _, pr := range promotions {
		if slices.ContainsFunc(rows, func(r indicator.WatchRow) bool { return r.ManagerID == pr.ManagerID }) {
			watched = append(watched, pr)
		}
	}
	if format == "json" {
		if rows == nil {
			rows = []indicator.WatchRow{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(watchOutput{Promotions: watched, Watch: rows})
	}
	printWatch(out, current, months, watched, rows)
	return nil
}

// printWatch renders the watch for people: per manager, the promotion and the record as a rep, then a table of the
// tenure periods with each indicator next to the median of all managers in the current window.
func printWatch(out io.Writer, current indicator.Params, months int, promotions []indicator.Promotion,
	rows []indicator.WatchRow) {
	fmt.Fprintf(out, "New-manager watch as of %s: managers promoted from rep in the last %d months.\n",
		current.AsOf.Format(time.RFC3339), months)
	fmt.Fprintf(out, "Tenure period k is the 30 days (promoted_at + (k-1)*30d, promoted_at + k*30d]; each median is "+
		"over all managers in (%s, %s].\n", current.AsOf.Add(-current.Window).Format(time.RFC3339),
		current.AsOf.Format(time.RFC3339))
	if len(promotions) == 0 {
		fmt.Fprintf(out, "\n(no manager was promoted from rep in the %d months before %s)\n", months,
			current.AsOf.Format(time.RFC3339))
		return
	}
	for _, pr := range promotions {
		fmt.Fprintf(out, "\n%s %s: promoted %s, months_since_promotion %d\n", pr.ManagerID,
			pr.ManagerName, pr.PromotedAt.Format(time.RFC3339), pr.MonthsSincePromotion)
		rank := "not ranked (no won amount)"
		if pr.RepRank != nil {
			rank = fmt.Sprintf("rank %d of %d reps by won amount", *pr.RepRank, pr.RepsRanked)
		}
		fmt.Fprintf(out, "as a rep, in the 180 days before: self-closed won deals %d, won amount %s, %s\n\n",
			pr.RepWonDeals, strconv.FormatFloat(pr.RepWonAmount, 'f', -1, 64), rank)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "period\tperiod_start\tperiod_end\tclosed_deals\ttakeover_rate\tmedian\twon_deals\t"+
			"manager_closed_share\tmedian\tteam_reps\tcoaching_coverage\tmedian\t")
		for _, r := range rows {
			if r.ManagerID != pr.ManagerID {
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t\n", r.Period,
				r.PeriodStart.Format(time.RFC3339), r.PeriodEnd.Format(time.RFC3339), r.ClosedDeals,
				pct(r.TakeoverRate), pct(r.MedianTakeoverRate), r.WonDeals, pct(r.ManagerClosedShare),
				pct(r.MedianManagerClosedShare), r.TeamReps, pct(r.CoachingCoverage), pct(r.MedianCoachingCoverage))
		}
		tw.Flush()
	}
}
