package store

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// TestUserNamesAreTheLatestNonEmptyNameAsOf: a rename counts from its time, an empty name never replaces one, a name
// given after as-of is not known yet, and equal times are decided by (source, id) like every other tie.
func TestUserNamesAreTheLatestNonEmptyNameAsOf(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	at := func(days int) time.Time { return asOf.AddDate(0, 0, days) }
	named := func(id string, when time.Time, user, name string) event.Event {
		return event.Event{Source: "crm/names", ID: id, Type: event.UserUpserted, Time: when,
			Data: event.Data{UserID: user, Name: name}}
	}
	evs := []event.Event{
		named("1", at(-30), "U1", "Ana Old"),
		named("2", at(-10), "U1", "Ana New"),
		named("3", at(-5), "U1", ""), // an update without a name keeps the last one
		named("4", at(-20), "U2", "Ben"),
		named("5", at(1), "U2", "Ben Later"),   // after as-of
		named("6", at(2), "U3", "Cleo Future"), // named only after as-of: unknown
		named("8", at(-3), "U4", "Dina B"),     // same time: id "8" sorts after "7"
		named("7", at(-3), "U4", "Dina A"),
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, evs)
		got, err := s.UserNames(context.Background(), asOf)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"U1": "Ana New", "U2": "Ben", "U4": "Dina B"}
		if !maps.Equal(got, want) {
			t.Errorf("UserNames = %v, want %v", got, want)
		}
	})
}
