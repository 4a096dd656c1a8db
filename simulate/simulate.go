// Package simulate generates a synthetic sales organisation as canonical events (package event): a head of sales,
// managers with distinct leadership styles, their reps, the reps' deals and everyone's activities. `leadthrough
// simulate` and `leadthrough demo` send its output to Kafka, and tests use it as a realistic scenario whose
// indicators are known to differ by style.
//
// It also plays the story leadthrough exists for: the top rep promoted to manager, who keeps selling instead of
// leading. In an organisation of at least three teams of at least three reps, the best-selling rep of the second
// team (the player-coach's) is promoted when 60% of the period has passed (day 54 of the default 90, about 36 days
// before End): from then on they report to the head of sales, reps from the first two teams report to them, and
// they take over more than half of their new team's deals and seldom coach, like a player-coach. Config.Promotion
// tells who, when and with which reps; indicator.ReferencePromotions finds them promoted on a record as the
// best-selling rep, and indicator.Watch follows their first months as a manager.
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
	"math/rand/v2"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// Style is how a manager leads, and so which indicators their team shows.
type Style string

// Leadership styles. Managers are assigned them in this order, cycling: the first manager is a coach, the second a
// player-coach, the third balanced, the fourth a coach again, and so on. The rep promoted during the period is a
// manager of the Promoted style from the promotion on.
const (
	// Coach takes over almost no deals (about 1% of the team's deals), holds a coaching activity with every rep
	// nearly every week, and its reps' win rate and deal size grow over the period.
	Coach Style = "coach"
	// PlayerCoach takes over about half of the team's deals, typically in negotiation, and closes them personally
	// at a high win rate; it also sells a few deals of its own, seldom coaches, and its reps' results decline.
	PlayerCoach Style = "player-coach"
	// Balanced takes over some deals (about 15%) and coaches each rep every other week; its reps grow slowly.
	Balanced Style = "balanced"
	// Promoted is the top rep promoted to manager during the period (see Config.Promotion). Until the promotion
	// they are a rep, the best-selling one: whatever their manager does, they win 60% of their deals (the most any
	// rep does), open half as many again as other reps, twice as large as a new rep's, and no manager takes their
	// deals over. From it on they lead like a player-coach, only more so: they take over more than half of their
	// team's deals (marking 80% of them at creation, against the player-coach's 68%), keep opening a few of their
	// own, seldom coach, and their reps' results decline.
	Promoted Style = "promoted"
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
	// Managers is the number of first-line sales managers reporting to the head of sales at the start; their styles
	// cycle coach, player-coach, balanced. With at least 3 managers (and RepsPerManager at least 3), one rep is
	// promoted to a further manager during the period: see Promotion. Default: 3.
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
// explain the indicators they see: the first-line managers, and the promoted rep (Promoted) when the period has a
// promotion. The head of sales is not in it. It is empty when the Config is invalid.
func (c Config) Styles() map[string]Style {
	o, err := c.org()
	if err != nil {
		return map[string]Style{}
	}
	out := make(map[string]Style, len(o.managers)+1)
	for _, m := range o.managersAt(o.end) {
		out[m.id] = m.style
	}
	return out
}

// Promotion is the promotion of the period: the best-selling rep of the second team, the first player-coach's,
// becomes a manager (style Promoted). It happens in every organisation with at least 3 managers and 3 reps per
// manager, when 60% of the period has passed (or, outside working hours, early on the next working morning), if
// that is before End. From then on the promoted manager reports to the head of sales and ⌈RepsPerManager/2⌉ reps
// report to them (3 by default), the last reps of the first team (the coach's) and of the promoted rep's own team,
// alternately, as long as each team keeps a rep. The user.manager_changed events of the moved reps and of the
// promoted manager all have time At; a user.upserted with the title "Sales Manager" follows a second later. The
// promoted rep's deals still open at At go to teammates an hour before; a moved rep's open deals that have not yet
// reached proposal or negotiation are the promoted manager's to take over.
type Promotion struct {
	UserID        string    // the promoted rep
	At            time.Time // when they became a manager: became_manager_at and promoted_at in DESIGN.md's terms
	FromManagerID string    // their manager until then
	ReportIDs     []string  // the reps who report to them from At, in the order of the organisation (by user_id)
}

// Promotion returns the period's promotion (defaults applied as in Generate), and false when there is none: the
// organisation is too small, the promotion would fall after End, or the Config is invalid.
func (c Config) Promotion() (Promotion, bool) {
	o, err := c.org()
	if err != nil || o.star == nil {
		return Promotion{}, false
	}
	s := o.star
	p := Promotion{UserID: s.id, At: s.promoted, FromManagerID: s.managerAt(s.promoted.Add(-time.Nanosecond)).id}
	for _, r := range o.reps {
		if r.managerAt(s.promoted) == s {
			p.ReportIDs = append(p.ReportIDs, r.id)
		}
	}
	return p, true
}

// org builds the organisation of c, with its reporting lines and promotion, without generating anything else.
func (c Config) org() (*company, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	o := &company{cfg: c, start: c.End.Add(-time.Duration(c.Days) * day), end: c.End}
	newGen(o, rand.NewPCG(c.Seed, setupStream), 0, nil).buildOrg()
	return o, nil
}

// User ids are assigned in a fixed order: the head of sales is U-001, then the managers, then the reps team by team.
func userID(n int) string     { return fmt.Sprintf("U-%03d", n) }
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
// the period, one rep of the third team (or the last team) leaves at 60%, their open deals handed to a teammate
// just before, and the top rep of the second team is promoted to manager at 60% (see Promotion). Deals still open
// at End simply have no close event.
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
