package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
)

func showPromotions(ps []indicator.Promotion) []string {
	var out []string
	for _, p := range ps {
		rank := "null"
		if p.RepRank != nil {
			rank = fmt.Sprint(*p.RepRank)
		}
		out = append(out, fmt.Sprintf("%s(%s) promoted %s, %d months; as a rep: %d won, %g, rank %s of %d",
			p.ManagerID, p.ManagerName, p.PromotedAt.Format(time.RFC3339Nano), p.MonthsSincePromotion, p.RepWonDeals,
			p.RepWonAmount, rank, p.RepsRanked))
	}
	return out
}

// TestPromotionsMatchTheReferenceModel: on random histories (each in its own namespace, all in one database), the
// promoted managers, their promotion time, months since promotion and record as a rep (rank included, among the reps
// of all histories) equal the reference model's on all the events.
func TestPromotionsMatchTheReferenceModel(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	var all []event.Event
	for seed := range uint64(seeds) {
		all = append(all, namespace(scenario.Random(seed+900, asOf), seed)...)
	}
	want := indicator.ReferencePromotions(all, asOf)
	ranked := 0
	for _, p := range want {
		if p.RepRank != nil {
			ranked++
		}
	}
	if len(want) == 0 || ranked == 0 || ranked == len(want) {
		t.Fatalf("%d promotions, %d with a rank: the scenarios do not exercise promotions with and without a record",
			len(want), ranked)
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, all)
		got, err := s.Promotions(context.Background(), asOf)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := showPromotions(got), showPromotions(want); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("promotions differ:\nSQL       %s\nreference %s", g, w)
		}
		t.Logf("%d promotions compared", len(want))
	})
}

// TestWatchMatchesTheReferenceModel: the new-manager watch from the SQL equals the one from the reference model on
// random histories with promotions.
func TestWatchMatchesTheReferenceModel(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var all []event.Event
	for seed := range uint64(3) {
		all = append(all, namespace(scenario.Random(seed+900, asOf), seed)...)
	}
	current := indicator.Params{AsOf: asOf}
	want, err := indicator.Watch(indicator.ReferencePromotions(all, asOf), current, indicator.DefaultWatchMonths,
		func(p indicator.Params) ([]indicator.Row, error) { return indicator.Reference(all, p), nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("empty watch: the scenarios have no recent promotion")
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, all)
		got, err := s.Watch(context.Background(), current, indicator.DefaultWatchMonths)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("watch differs:\nSQL       %s\nreference %s", g, w)
		}
		t.Logf("%d watch rows compared", len(want))
	})
}
