package indicator

import (
	"fmt"
	"slices"
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
