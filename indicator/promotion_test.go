package indicator

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

func showPromotions(ps []Promotion) string {
	var out []string
	for _, p := range ps {
		rank := "null"
		if p.RepRank != nil {
			rank = fmt.Sprint(*p.RepRank)
		}
		out = append(out, fmt.Sprintf("%s(%s) promoted %s, %d months; as a rep: %d won, %g, rank %s of %d",
			p.ManagerID, p.ManagerName, p.PromotedAt.Format(time.RFC3339), p.MonthsSincePromotion, p.RepWonDeals,
			p.RepWonAmount, rank, p.RepsRanked))
	}
	return fmt.Sprint(out)
}

// TestPromotedRepIsFoundWithTheirRecordAsARep follows DESIGN.md ("Promotions"). P sells as a rep, then R3 starts
// reporting to P at day 40 00:00: P is promoted then. Managers whose history starts with reports, who first owned a
// deal at the very instant they became managers, or who owned only a deleted deal, are not promoted.
func TestPromotedRepIsFoundWithTheirRecordAsARep(t *testing.T) {
	evs := history(slices.Concat(
		[]event.Event{
			reportsTo(at("day 0 09:00"), "P", "H"), reportsTo(at("day 0 09:00"), "R2", "H"),
			reportsTo(at("day 0 09:00"), "R3", "H"),
			reportsTo(at("day 0 09:00"), "X", "C"),        // C starts with a report: a CSV-import manager
			created(at("day 5 10:00"), "D5", "C", 1000),   // … who sells afterwards: not promoted
			won(at("day 6 10:00"), "D5"),                  //
			created(at("day 50 00:00"), "D6", "Q", 10),    // Q owns a deal at the instant …
			reportsTo(at("day 50 00:00"), "Y", "Q"),       // … Q becomes a manager: not before, not promoted
			created(at("day 1 10:00"), "D7", "S", 10),     // S owned only a deal …
			deleted(at("day 2 10:00"), "D7"),              // … that is deleted: not promoted
			reportsTo(at("day 20 00:00"), "Z", "S"),       //
			reportsTo(at("day 40 00:00"), "R3", "P"),      // P's first report: promoted at day 40 00:00
			named(at("day 0 09:00"), "P", "Pat Promoted"), //
		},
		selfWon("D1", "P", "day 1 10:00", "day 10 10:00", 500),
		selfWon("D2", "R2", "day 2 10:00", "day 11 10:00", 800),
		selfWon("D3", "R3", "day 3 10:00", "day 12 10:00", 200),
		selfWon("D4", "R3", "day 3 10:00", "day 40 00:00", 100),  // at promoted_at: inside (p − 180d, p]
		selfWon("D8", "R2", "day 41 10:00", "day 45 10:00", 900), // after promotion: not in the record
	)...)
	got := ReferencePromotions(evs, at("day 100 00:00"))
	// P: 60 days since promotion = 2 whole 30-day periods. Record: D1, 500. Amounts in the period: R2 800, P 500,
	// R3 300 (D3 + D4): P ranks 2nd of 3.
	rank := int64(2)
	want := []Promotion{{ManagerID: "P", ManagerName: "Pat Promoted", PromotedAt: at("day 40 00:00"),
		MonthsSincePromotion: 2, RepWonDeals: 1, RepWonAmount: 500, RepRank: &rank, RepsRanked: 3}}
	if showPromotions(got) != showPromotions(want) {
		t.Fatalf("promotions:\n%s\nwant:\n%s", showPromotions(got), showPromotions(want))
	}
	// The first whole 30-day period ends at day 70 00:00; one millisecond before, none has.
	if got := ReferencePromotions(evs, at("day 70 00:00")); len(got) != 1 || got[0].MonthsSincePromotion != 1 {
		t.Fatalf("as of day 70 00:00: %s, want 1 month since promotion", showPromotions(got))
	}
	if got := ReferencePromotions(evs, at("day 69 23:59:59.999")); len(got) != 1 || got[0].MonthsSincePromotion != 0 {
		t.Fatalf("as of day 69 23:59:59.999: %s, want 0 months since promotion", showPromotions(got))
	}
	if got := ReferencePromotions(evs, at("day 40 00:00")); len(got) != 1 || got[0].MonthsSincePromotion != 0 {
		t.Fatalf("as of day 40 00:00: %s, want P promoted 0 months ago", showPromotions(got))
	}
	if got := ReferencePromotions(evs, at("day 39 23:59")); len(got) != 0 {
		t.Fatalf("before day 40 nobody is promoted yet, got %s", showPromotions(got))
	}
}

// TestPromotedRepWithoutSelfClosedWinsHasNoRank: a rep whose deals were lost or taken over is still promoted (they
// owned a deal), with an empty record and a null rank.
func TestPromotedRepWithoutSelfClosedWinsHasNoRank(t *testing.T) {
	evs := history(
		reportsTo(at("day 0 09:00"), "P", "H"), reportsTo(at("day 0 09:00"), "R", "H"),
		created(at("day 1 10:00"), "D1", "P", 100), lost(at("day 5 10:00"), "D1"),
		created(at("day 1 10:00"), "D2", "P", 100), ownerChanged(at("day 2 10:00"), "D2", "H", "P"),
		won(at("day 6 10:00"), "D2"), // closed by H: not self-closed by P
		created(at("day 1 10:00"), "D3", "R", 300), won(at("day 7 10:00"), "D3"),
		reportsTo(at("day 10 00:00"), "R", "P"),
	)
	got := ReferencePromotions(evs, at("day 10 00:00"))
	want := []Promotion{{ManagerID: "P", ManagerName: "P", PromotedAt: at("day 10 00:00"), RepsRanked: 1}}
	if showPromotions(got) != showPromotions(want) {
		t.Fatalf("promotions:\n%s\nwant:\n%s", showPromotions(got), showPromotions(want))
	}
}

// TestWatchShowsEachTenurePeriodNextToTheCurrentMedians: P, promoted at day 40 00:00, takes over R3's deal D9 at day
// 50 and wins it at day 55. As of day 100 00:00 the watch has tenure periods 1 (day 40, day 70] and 2 (day 70,
// day 100], the latter ending at as_of.
func TestWatchShowsEachTenurePeriodNextToTheCurrentMedians(t *testing.T) {
	evs := history(slices.Concat(
		[]event.Event{
			reportsTo(at("day 0 09:00"), "P", "H"), reportsTo(at("day 0 09:00"), "R2", "H"),
			reportsTo(at("day 0 09:00"), "R3", "H"), reportsTo(at("day 40 00:00"), "R3", "P"),
			created(at("day 45 10:00"), "D9", "R3", 700), ownerChanged(at("day 50 10:00"), "D9", "P", "R3"),
			won(at("day 55 10:00"), "D9"),
		},
		selfWon("D1", "P", "day 1 10:00", "day 10 10:00", 500),
	)...)
	asOf := at("day 100 00:00")
	got, err := Watch(ReferencePromotions(evs, asOf), Params{AsOf: asOf}, DefaultWatchMonths,
		func(p Params) ([]Row, error) { return Reference(evs, p), nil })
	if err != nil {
		t.Fatal(err)
	}
	show := func(ws []WatchRow) string {
		var out []string
		for _, w := range ws {
			out = append(out, fmt.Sprintf("%s k=%d (%s, %s] takeover=%s share=%s coverage=%s closed=%d takeovers=%d "+
				"team=%d | medians %s %s %s", w.ManagerID, w.Period, w.PeriodStart.Format(time.RFC3339),
				w.PeriodEnd.Format(time.RFC3339), show(w.TakeoverRate), show(w.ManagerClosedShare),
				show(w.CoachingCoverage), w.ClosedDeals, w.Takeovers, w.TeamReps, show(w.MedianTakeoverRate),
				show(w.MedianManagerClosedShare), show(w.MedianCoachingCoverage)))
		}
		return strings.Join(out, "\n")
	}
	// Period 1: D9 (R(d) = R3, whose manager at the close is P) closed by P after a takeover: 1 closed, 1 won,
	// share 1, rate 1, 1 takeover; team R3, not coached. Period 2: no deal; team R3. Current window (day 70,
	// day 100]: no manager closed a deal (rates null); H (team R2) and P (team R3) coached nobody: median 0.
	want := strings.Join([]string{
		"P k=1 (2026-02-10T00:00:00Z, 2026-03-12T00:00:00Z] takeover=1 share=1 coverage=0 closed=1 takeovers=1 team=1 | medians null null 0",
		"P k=2 (2026-03-12T00:00:00Z, 2026-04-11T00:00:00Z] takeover=null share=null coverage=0 closed=0 takeovers=0 team=1 | medians null null 0",
	}, "\n")
	if got := show(got); got != want {
		t.Fatalf("watch:\n%s\nwant:\n%s", got, want)
	}
}
