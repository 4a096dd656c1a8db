// Package simulate generates a synthetic sales organisation as canonical events (package event): a head of sales,
// managers with distinct leadership styles, their reps, the reps' deals and everyone's activities. `leadthrough
// simulate` and `leadthrough demo` send its output to Kafka, and tests use it as a realistic scenario whose
// indicators are known to differ by style.
//
// Output depends only on the Config: the same Config always yields the same events, byte for byte, in the same
// order. Generate returns them all at once; Stream hands them to a function one by one as they are generated, with
// memory bounded by the events in flight rather than by the size of the run. The package must never know about
// Kafka, ClickHouse or Prometheus; it only produces events.
package simulate

import (
	"context"
	"errors"
	"fmt"
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

// ErrInvalidConfig is wrapped by the error Generate and Stream return for a Config that cannot describe an
// organisation.
var ErrInvalidConfig = errors.New("simulate: invalid config")

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
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
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
// when set, then add redelivered copies and late arrivals, so the output is no longer sorted. It collects what
// Stream emits, so it holds every event in memory: large runs should use Stream.
//
// The period (End − Days, End] begins with the organisation's initial sync (user.upserted and user.manager_changed
// for everyone); when the organisation is large enough, one rep moves from the second team to the first at 45% of
// the period and one rep of the third team (or the last team) leaves at 60%, their open deals handed to a teammate
// just before. Deals still open at End simply have no close event.
func Generate(cfg Config) ([]event.Event, error) {
	var evs []event.Event
	if _, err := Stream(context.Background(), cfg, func(ev event.Event) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		return nil, err
	}
	return evs, nil
}
