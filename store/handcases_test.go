package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
)

// handCasesFile holds the hand-computed cases of package indicator's tests (indicator/cases_test.go writes it, and
// fails when it is stale): tiny histories whose rows were computed by hand from the indicator definitions.
const handCasesFile = "../indicator/testdata/hand_cases.json"

// handCase is the shape of one case in handCasesFile (indicator/cases_test.go).
type handCase struct {
	Name          string          `json:"name"`
	AsOf          string          `json:"as_of"`                    // RFC 3339
	WindowMS      int64           `json:"window_ms"`                // the window W in milliseconds
	PrevWindowMS  int64           `json:"prev_window_ms,omitempty"` // the previous window's, when not W
	CoachingKinds []string        `json:"coaching_kinds"`
	Events        []event.Event   `json:"events"`
	Want          []indicator.Row `json:"want"`
}

func readHandCases(t *testing.T) []handCase {
	t.Helper()
	raw, err := os.ReadFile(handCasesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []handCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("%s: %v", handCasesFile, err)
	}
	// The indicator tests hold about 60 cases; a file with few of them would let this test pass on nothing.
	if len(cases) <= 30 {
		t.Fatalf("%s has %d cases, want more than 30 (go test ./indicator -update-cases rewrites it)",
			handCasesFile, len(cases))
	}
	return cases
}

// TestHandComputedCasesOnEveryEngine runs every hand-computed case of package indicator against the SQL on each
// ClickHouse engine: the rows computed by hand from the definitions must come out of the SQL too, not only out of
// the reference model. All cases share one database, each namespaced with its own prefix.
func TestHandComputedCasesOnEveryEngine(t *testing.T) {
	cases := readHandCases(t)
	type prepared struct {
		name   string
		prefix string
		params indicator.Params
		events []event.Event
		want   []indicator.Row
	}
	all := make([]prepared, len(cases))
	for i, c := range cases {
		asOf, err := time.Parse(time.RFC3339Nano, c.AsOf)
		if err != nil {
			t.Fatalf("%s: as_of: %v", c.Name, err)
		}
		if c.WindowMS <= 0 {
			t.Fatalf("%s: window_ms %d", c.Name, c.WindowMS)
		}
		p := prefix(uint64(i))
		want := make([]indicator.Row, len(c.Want))
		for j, w := range c.Want {
			if w.ManagerName == w.ManagerID { // no name known: the name defaults to the (prefixed) id
				w.ManagerName = p + w.ManagerName
			}
			w.ManagerID = p + w.ManagerID
			want[j] = w
		}
		slices.SortFunc(want, func(a, b indicator.Row) int { return strings.Compare(a.ManagerID, b.ManagerID) })
		all[i] = prepared{
			name:   c.Name,
			prefix: p,
			params: indicator.Params{AsOf: asOf, Window: time.Duration(c.WindowMS) * time.Millisecond,
				PrevWindow: time.Duration(c.PrevWindowMS) * time.Millisecond, CoachingKinds: c.CoachingKinds},
			events: namespace(c.Events, uint64(i)),
			want:   want,
		}
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		start := time.Now()
		var evs []event.Event // one batch, each case's events in its order: a later copy replaces an earlier one
		for _, c := range all {
			evs = append(evs, c.events...)
		}
		insert(t, s, evs)
		inserted := time.Since(start)
		// Most cases share their parameters: compute each distinct window once, over every case's events.
		type result struct {
			rows []indicator.Row
			err  error
		}
		results := map[string]result{}
		for _, c := range all {
			t.Run(c.name, func(t *testing.T) {
				key := fmt.Sprint(c.params.AsOf.UnixNano(), c.params.Window, c.params.PrevWindow, c.params.CoachingKinds)
				r, ok := results[key]
				if !ok {
					r.rows, r.err = s.Indicators(ctx, c.params)
					results[key] = r
				}
				got, err := r.rows, r.err
				if err != nil {
					t.Fatal(err)
				}
				if diff := compareRows(filterPrefix(got, c.prefix), c.want); diff != "" {
					t.Errorf("SQL differs from the hand-computed rows (as of %s, window %s):\n%s",
						c.params.AsOf.Format(time.RFC3339Nano), c.params.Window, diff)
				}
			})
		}
		t.Logf("%d hand-computed cases, %d distinct windows: inserted in %s, computed and compared in %s", len(all),
			len(results), inserted.Round(time.Millisecond), (time.Since(start) - inserted).Round(time.Millisecond))
	})
}
