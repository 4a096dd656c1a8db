package simulate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
)

// TestTopRepIsPromotedAndTakesDealsOver checks the story as the indicators tell it: the reference model finds
// exactly one promoted manager (not the managers of the start, whose history begins with reports), the rep
// Promotion names, promoted when 60% of the period has passed on a record as the best-selling rep; in the last 30
// days that manager takes over a large share of the team's closed deals, like a player-coach, and hardly coaches,
// while the coach takes none over.
func TestTopRepIsPromotedAndTakesDealsOver(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			cfg := Config{End: testEnd, Seed: seed, Days: 90}
			pr, ok := cfg.Promotion()
			if !ok {
				t.Fatal("no promotion in the default organisation")
			}
			styles := cfg.Styles()
			mark := testEnd.Add(-90 * day).Add(54 * day) // 60% of the period
			if styles[pr.UserID] != Promoted || styles[pr.FromManagerID] != PlayerCoach || pr.At.Before(mark) ||
				!pr.At.Before(mark.Add(3*day)) {
				t.Fatalf("promotion %+v (styles %v), want the player-coach's rep promoted within 3 days of %s", pr, styles, mark)
			}
			evs := generate(t, cfg)

			promotions := indicator.ReferencePromotions(evs, testEnd)
			if len(promotions) != 1 {
				t.Fatalf("ReferencePromotions = %+v, want only %s", promotions, pr.UserID)
			}
			got := promotions[0]
			if got.ManagerID != pr.UserID || !got.PromotedAt.Equal(pr.At) || got.MonthsSincePromotion != 1 ||
				got.RepRank == nil || *got.RepRank != 1 || got.RepWonDeals == 0 || got.RepsRanked < 5 {
				t.Fatalf("ReferencePromotions found %+v (rank %v), want %s promoted at %s, 1 month ago, the best of the "+
					"reps ranked by won amount", got, deref(got.RepRank), pr.UserID, pr.At)
			}

			rows := map[string]indicator.Row{}
			for _, r := range indicator.Reference(evs, indicator.Params{AsOf: testEnd}) {
				rows[r.ManagerID] = r
			}
			p, coach, balanced := rows[pr.UserID], rows[userID(2)], rows[userID(4)]
			if p.TeamReps != int64(len(pr.ReportIDs)) || deref(p.TakeoverRate) < 0.4 ||
				deref(p.TakeoverRate) < 2*deref(balanced.TakeoverRate) || deref(p.ManagerClosedShare) < 0.5 ||
				deref(p.CoachingCoverage) > 0.34 {
				t.Fatalf("promoted manager's last 30 days: %s, want %d reps, takeover rate ≥ 40%% and twice the balanced "+
					"manager's (%.2f), manager-closed share ≥ 50%%, coaching coverage ≤ 1/3", show(p), len(pr.ReportIDs),
					deref(balanced.TakeoverRate))
			}
			if coach.TakeoverRate == nil || *coach.TakeoverRate > 0.05 || deref(coach.CoachingCoverage) < 1 {
				t.Fatalf("coach's last 30 days: %s, want takeover rate ≤ 5%% and every rep coached", show(coach))
			}

			// The new-manager watch lists the promoted manager's two tenure periods so far, the first already with
			// takeovers.
			watch, err := indicator.Watch(promotions, indicator.Params{AsOf: testEnd}, indicator.DefaultWatchMonths,
				func(p indicator.Params) ([]indicator.Row, error) { return indicator.Reference(evs, p), nil })
			if err != nil {
				t.Fatal(err)
			}
			var periods []int64
			for _, w := range watch {
				if w.ManagerID != pr.UserID {
					t.Fatalf("watch lists %s, who was not promoted", w.ManagerID)
				}
				periods = append(periods, w.Period)
			}
			if !slices.Equal(periods, []int64{1, 2}) || watch[0].Takeovers < 5 {
				t.Fatalf("watch periods %v, the first with %d takeovers, want tenure periods 1 and 2, the first with "+
					"at least 5", periods, watch[0].Takeovers)
			}
		})
	}
}

// TestPromotionNeedsThreeTeamsOfThree checks when an organisation has a promotion: at least 3 managers and 3 reps
// per manager, and a promotion time within the period.
func TestPromotionNeedsThreeTeamsOfThree(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"defaults", Config{End: testEnd}, true},
		{"three teams of three", Config{End: testEnd, Managers: 3, RepsPerManager: 3}, true},
		{"busy org, 400 days", Config{End: testEnd, Managers: 12, RepsPerManager: 10, Days: 400}, true},
		{"two teams", Config{End: testEnd, Managers: 2}, false},
		{"three teams of two", Config{End: testEnd, Managers: 3, RepsPerManager: 2}, false},
		{"one manager, one rep", Config{End: testEnd, Managers: 1, RepsPerManager: 1}, false},
		{"one day whose 60% falls on a Saturday", Config{End: time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), Days: 1}, false},
		{"invalid", Config{Days: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, ok := tt.cfg.Promotion()
			if ok != tt.want {
				t.Fatalf("Promotion() = %+v, %v, want %v", pr, ok, tt.want)
			}
			if !ok {
				return
			}
			var manager, title bool
			for _, e := range generate(t, tt.cfg) {
				switch {
				case e.Type == event.UserManagerChanged && e.Data.UserID == pr.UserID && e.Time.Equal(pr.At):
					manager = *e.Data.ManagerID == userID(1)
				case e.Type == event.UserUpserted && e.Data.UserID == pr.UserID && e.Time.After(pr.At):
					title = e.Data.Title == "Sales Manager"
				}
			}
			if !manager || !title {
				t.Fatalf("%s: reports to the head of sales at %s: %v; upserted as Sales Manager after: %v",
					pr.UserID, pr.At, manager, title)
			}
		})
	}
}

// deref is *p, or -1 for nil, so that a missing value fails a check for a minimum.
func deref[T int64 | float64](p *T) float64 {
	if p == nil {
		return -1
	}
	return float64(*p)
}

func show(r indicator.Row) string {
	return fmt.Sprintf("team_reps %d, closed %d, takeover_rate %.2f, takeovers %d, manager_closed_share %.2f, "+
		"coaching_coverage %.2f", r.TeamReps, r.ClosedDeals, deref(r.TakeoverRate), r.Takeovers, deref(r.ManagerClosedShare), deref(r.CoachingCoverage))
}
