// Package simulate generates a synthetic sales organisation as canonical events (package event): a head of sales,
// managers with distinct leadership styles, their reps, the reps' deals and everyone's activities. `leadthrough
// simulate` and `leadthrough demo` send its output to Kafka, and tests use it as a realistic scenario whose
// indicators are known to differ by style.
//
// Output depends only on the Config: the same Config always yields the same events, byte for byte. The package
// must never know about Kafka, ClickHouse or Prometheus; it only produces []event.Event.
package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// Style is how a manager leads, and so which indicators their team shows.
type Style string

// Leadership styles. Managers are assigned them in this order, cycling: the first manager is a coach, the second a
// player-coach, the third balanced, the fourth a coach again, and so on.
const (
	// Coach takes over almost no deals (about 1% of the team's deals), holds a coaching activity with every rep
	// nearly every week, and its reps' win rate and deal size grow over the period.
	Coach Style = "coach"
	// PlayerCoach takes over about half of the team's deals, typically in negotiation, and closes them personally
	// at a high win rate; it also sells a few deals of its own, seldom coaches, and its reps' results decline.
	PlayerCoach Style = "player-coach"
	// Balanced takes over some deals (about 15%) and coaches each rep every other week; its reps grow slowly.
	Balanced Style = "balanced"
)

var styleCycle = []Style{Coach, PlayerCoach, Balanced}

// Defaults of Config's fields.
const (
	DefaultSeed                uint64  = 1
	DefaultSource                      = "sim/acme-crm"
	DefaultDays                        = 90
	DefaultManagers                    = 3
	DefaultRepsPerManager              = 5
	DefaultDealsPerRepPerMonth float64 = 6
)

// MaxDays bounds Config.Days, so a typo cannot ask for millions of events.
const MaxDays = 3660

// Config describes the organisation and period to simulate. The zero value is valid: every zero field takes its
// documented default.
type Config struct {
	// Seed selects the scenario. Default (0): 1.
	Seed uint64
	// Source is the CloudEvents source of every event. Default: "sim/acme-crm".
	Source string
	// End is the end of the simulated period; events lie in (End − Days, End]. Default (zero): the current time in
	// UTC truncated to the hour, so a run is reproducible within the hour. Set it to make output fully reproducible.
	End time.Time
	// Days is the length of the period in days (at most MaxDays). Default: 90.
	Days int
	// Managers is the number of first-line sales managers reporting to the head of sales; their styles cycle
	// coach, player-coach, balanced. Default: 3.
	Managers int
	// RepsPerManager is the number of reps in each manager's team at the start. Default: 5.
	RepsPerManager int
	// DealsPerRepPerMonth is the average number of deals a rep opens per 30 days. Default: 6.
	DealsPerRepPerMonth float64

	// DuplicateRatio re-emits that share (0–1) of the events a second time, verbatim (same source and id), later in
	// the output, as a redelivering producer would. Default: 0, no duplicates.
	DuplicateRatio float64
	// ShuffleRatio moves that share (0–1) of the events later in the output order, past at least one event that
	// originally followed them, to simulate late arrival; their event time is unchanged. The last event never moves.
	// Default: 0, output sorted by time.
	ShuffleRatio float64
}

// withDefaults fills zero fields and rejects values that cannot describe an organisation.
func (c Config) withDefaults() (Config, error) {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(time.Hour)
	}
	c.End = c.End.UTC()
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Managers == 0 {
		c.Managers = DefaultManagers
	}
	if c.RepsPerManager == 0 {
		c.RepsPerManager = DefaultRepsPerManager
	}
	if c.DealsPerRepPerMonth == 0 {
		c.DealsPerRepPerMonth = DefaultDealsPerRepPerMonth
	}
	var errs []error
	if c.Days < 0 || c.Days > MaxDays {
		errs = append(errs, fmt.Errorf("days must be between 1 and %d, got %d", MaxDays, c.Days))
	}
	if c.Managers < 0 {
		errs = append(errs, fmt.Errorf("managers must be positive, got %d", c.Managers))
	}
	if c.RepsPerManager < 0 {
		errs = append(errs, fmt.Errorf("reps per manager must be positive, got %d", c.RepsPerManager))
	}
	if !(c.DealsPerRepPerMonth > 0 && c.DealsPerRepPerMonth <= 1000) {
		errs = append(errs, fmt.Errorf("deals per rep per month must be in (0, 1000], got %v", c.DealsPerRepPerMonth))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"duplicate ratio", c.DuplicateRatio}, {"shuffle ratio", c.ShuffleRatio}} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("%s must be in [0, 1], got %v", r.name, r.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("simulate: invalid config: %w", err)
	}
	return c, nil
}

// Styles maps each manager's user_id to its style (defaults applied as in Generate), so tests and the demo can
// explain the indicators they see. The head of sales is not in it. It is empty when the Config is invalid.
func (c Config) Styles() map[string]Style {
	c, err := c.withDefaults()
	if err != nil {
		return map[string]Style{}
	}
	out := make(map[string]Style, c.Managers)
	for i := range c.Managers {
		out[userID(managerIndex(i))] = styleCycle[i%len(styleCycle)]
	}
	return out
}

// User ids are assigned in a fixed order: the head of sales is U-001, then the managers, then the reps team by team.
func userID(n int) string     { return fmt.Sprintf("U-%03d", n) }
func managerIndex(i int) int  { return 2 + i }
func dealID(n int) string     { return fmt.Sprintf("D-%05d", n) }
func activityID(n int) string { return fmt.Sprintf("A-%06d", n) }
func eventID(n int) string    { return fmt.Sprintf("evt-%06d", n) }

// Generate simulates the organisation described by cfg and returns its events sorted by time (ties in a fixed
// order), each with a unique id within cfg.Source and each passing event.Validate. DuplicateRatio and ShuffleRatio,
// when set, then add redelivered copies and late arrivals, so the output is no longer sorted.
//
// The period (End − Days, End] begins with the organisation's initial sync (user.upserted and user.manager_changed
// for everyone); when the organisation is large enough, one rep moves from the second team to the first at 45% of
// the period and one rep of the third team (or the last team) leaves at 60%, their open deals handed to a teammate
// just before. Deals still open at End simply have no close event.
func Generate(cfg Config) ([]event.Event, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := newGen(cfg)
	g.buildOrg()
	g.simulateDeals()
	g.managerRoutines()
	events, err := g.finish()
	if err != nil {
		return nil, err
	}
	// A second stream keeps the delivery extras from changing the scenario itself.
	extras := rand.New(rand.NewPCG(cfg.Seed, 0xde11_7e47))
	events = shuffleLate(events, cfg.ShuffleRatio, extras)
	events = duplicate(events, cfg.DuplicateRatio, extras)
	return events, nil
}

// item is an event being built; seq breaks ties between equal times so the order never depends on sorting details.
type item struct {
	seq int
	ev  event.Event
}

func (g *gen) finish() ([]event.Event, error) {
	slices.SortFunc(g.items, func(a, b item) int {
		return cmp.Or(a.ev.Time.Compare(b.ev.Time), cmp.Compare(a.seq, b.seq))
	})
	out := make([]event.Event, len(g.items))
	activities := 0
	for i, it := range g.items {
		ev := it.ev
		ev.ID = eventID(i + 1)
		if ev.Type == event.ActivityLogged {
			activities++
			ev.Data.ActivityID = activityID(activities)
		}
		if err := event.Validate(ev); err != nil {
			return nil, fmt.Errorf("simulate: generated an invalid %s event %s: %w", ev.Type, ev.ID, err)
		}
		out[i] = ev
	}
	return out, nil
}

// shuffleLate moves round(ratio·n) events, never the last, to a later position: each lands after at least one of
// the events that stayed in place and originally followed it, at most max(10, n/20) of them later. Events that stay
// keep their relative order.
func shuffleLate(events []event.Event, ratio float64, rng *rand.Rand) []event.Event {
	n := len(events)
	k := min(int(math.Round(ratio*float64(n))), n-1)
	if k <= 0 {
		return events
	}
	moved := make([]bool, n)
	for _, i := range rng.Perm(n - 1)[:k] {
		moved[i] = true
	}
	maxShift := max(10, n/20)
	kept := make([]event.Event, 0, n-k)
	after := make(map[int][]event.Event) // position in kept → moved events inserted right after it
	for i, ev := range events {
		if !moved[i] {
			kept = append(kept, ev)
			continue
		}
		// kept[len(kept)] will be the first kept event that originally followed ev; land after it or a later one.
		first := len(kept)
		remaining := n - k - first // kept events still to come; ≥ 1 because the last event is kept
		pos := first + rng.IntN(min(maxShift, remaining))
		after[pos] = append(after[pos], ev)
	}
	out := make([]event.Event, 0, n)
	for j, ev := range kept {
		out = append(out, ev)
		out = append(out, after[j]...)
	}
	return out
}

// duplicate re-emits round(ratio·n) distinct events verbatim, each copy somewhere after its original (at most
// max(10, n/20) events later).
func duplicate(events []event.Event, ratio float64, rng *rand.Rand) []event.Event {
	n := len(events)
	k := int(math.Round(ratio * float64(n)))
	if k <= 0 {
		return events
	}
	maxShift := max(10, n/20)
	copies := make(map[int][]event.Event) // index in events → copies emitted right after it
	for _, i := range rng.Perm(n)[:k] {
		at := min(n-1, i+rng.IntN(maxShift))
		copies[at] = append(copies[at], clone(events[i]))
	}
	out := make([]event.Event, 0, n+k)
	for i, ev := range events {
		out = append(out, ev)
		out = append(out, copies[i]...)
	}
	return out
}

// clone copies ev deeply, so a duplicate shares no memory with its original.
func clone(ev event.Event) event.Event {
	d := &ev.Data
	if d.ManagerID != nil {
		d.ManagerID = event.Ptr(*d.ManagerID)
	}
	if d.Amount != nil {
		d.Amount = event.Ptr(*d.Amount)
	}
	if d.DurationMinutes != nil {
		d.DurationMinutes = event.Ptr(*d.DurationMinutes)
	}
	d.SubjectUserIDs = slices.Clone(d.SubjectUserIDs)
	return ev
}
