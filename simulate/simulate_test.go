package simulate

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

var testEnd = time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)

func generate(t *testing.T, cfg Config) []event.Event {
	t.Helper()
	evs, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return evs
}

// org is the reporting-line history rebuilt from the events alone, as a consumer would see it.
type org struct {
	changes map[string][]change // by user, in time order
	gone    map[string]time.Time
	synced  map[string]bool
}

type change struct {
	at  time.Time
	mgr string // "" = no manager
}

func orgOf(evs []event.Event) org {
	o := org{changes: map[string][]change{}, gone: map[string]time.Time{}, synced: map[string]bool{}}
	for _, e := range evs {
		switch e.Type {
		case event.UserUpserted:
			o.synced[e.Data.UserID] = true
		case event.UserManagerChanged:
			mgr := ""
			if e.Data.ManagerID != nil {
				mgr = *e.Data.ManagerID
			}
			o.changes[e.Data.UserID] = append(o.changes[e.Data.UserID], change{e.Time, mgr})
		case event.UserDeactivated:
			o.gone[e.Data.UserID] = e.Time
		}
	}
	return o
}

func (o org) active(u string, t time.Time) bool {
	cs := o.changes[u]
	g, gone := o.gone[u]
	return len(cs) > 0 && !cs[0].at.After(t) && (!gone || t.Before(g))
}

// managerAt follows DESIGN.md: the manager_id of u's latest user.manager_changed at or before t.
func (o org) managerAt(u string, t time.Time) string {
	mgr := ""
	for _, c := range o.changes[u] {
		if c.at.After(t) {
			break
		}
		mgr = c.mgr
	}
	return mgr
}

// hasReports tells whether u is a manager at t: someone's manager at t is u.
func (o org) hasReports(u string, t time.Time) bool {
	for r := range o.changes {
		if o.active(r, t) && o.managerAt(r, t) == u {
			return true
		}
	}
	return false
}

// teamShares counts, per manager, the deals its reps opened after since (deleted ones excluded) and how many of
// them that manager took over: an owner change on the open deal from the owner just before to that owner's manager.
// Deals opened by the star, the rep to be promoted (Config.Promotion), are left out: no manager takes them over.
func teamShares(evs []event.Event, since time.Time, star string) (team, taken map[string]int) {
	o := orgOf(evs)
	type state struct {
		owner, teamMgr string
		open, deleted  bool
		takenBy        map[string]bool
	}
	deals := map[string]*state{}
	var order []string
	for _, e := range evs {
		d := e.Data
		if e.Type == event.ActivityLogged || d.DealID == "" {
			continue
		}
		s := deals[d.DealID]
		switch e.Type {
		case event.DealCreated:
			s = &state{owner: d.OwnerID, open: true, takenBy: map[string]bool{}}
			if !o.hasReports(d.OwnerID, e.Time) && d.OwnerID != star && e.Time.After(since) {
				s.teamMgr = o.managerAt(d.OwnerID, e.Time)
			}
			deals[d.DealID] = s
			order = append(order, d.DealID)
		case event.DealOwnerChanged:
			if s.open && o.managerAt(s.owner, e.Time) == d.OwnerID {
				s.takenBy[d.OwnerID] = true
			}
			s.owner = d.OwnerID
		case event.DealClosed:
			s.open = false
		case event.DealReopened:
			s.open = true
		case event.DealDeleted:
			s.deleted = true
		}
	}
	team, taken = map[string]int{}, map[string]int{}
	for _, id := range order {
		s := deals[id]
		if s.deleted || s.teamMgr == "" {
			continue
		}
		team[s.teamMgr]++
		if s.takenBy[s.teamMgr] {
			taken[s.teamMgr]++
		}
	}
	return team, taken
}

func TestGenerateIsDeterministicPerSeed(t *testing.T) {
	base := Config{End: testEnd}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		{"default seed twice", base, base, true},
		{"seed 0 means seed 1", base, with(func(c *Config) { c.Seed = 1 }), true},
		{"same seed with duplicates and late arrivals", with(func(c *Config) { c.Seed = 7; c.DuplicateRatio = 0.1; c.ShuffleRatio = 0.2 }),
			with(func(c *Config) { c.Seed = 7; c.DuplicateRatio = 0.1; c.ShuffleRatio = 0.2 }), true},
		{"different seeds", with(func(c *Config) { c.Seed = 1 }), with(func(c *Config) { c.Seed = 2 }), false},
		{"different seeds, small org", with(func(c *Config) { c.Seed = 3; c.Managers = 1; c.RepsPerManager = 2 }),
			with(func(c *Config) { c.Seed = 4; c.Managers = 1; c.RepsPerManager = 2 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := generate(t, tt.a), generate(t, tt.b)
			if got := reflect.DeepEqual(a, b); got != tt.same {
				t.Fatalf("outputs equal = %v, want %v (%d and %d events)", got, tt.same, len(a), len(b))
			}
		})
	}
}

func TestGeneratedEventsAreValidOrderedAndRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{End: testEnd}},
		{"one manager with one rep", Config{End: testEnd, Seed: 5, Managers: 1, RepsPerManager: 1}},
		{"two teams", Config{End: testEnd, Seed: 6, Managers: 2, RepsPerManager: 3}},
		{"large org, busy reps", Config{End: testEnd, Seed: 9, Managers: 7, RepsPerManager: 8, DealsPerRepPerMonth: 12}},
		{"one week", Config{End: testEnd, Seed: 2, Days: 7}},
		{"end with sub-second part, other source", Config{End: testEnd.Add(1234567 * time.Nanosecond), Source: "sim/other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := tt.cfg.withDefaults()
			evs := generate(t, tt.cfg)
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			start := cfg.End.Add(-time.Duration(cfg.Days) * day)
			ids := map[string]bool{}
			activityIDs := map[string]bool{}
			lastOf := map[string]time.Time{} // per entity
			for i, e := range evs {
				if err := event.Validate(e); err != nil {
					t.Fatalf("event %d %s invalid: %v", i, e.ID, err)
				}
				raw, err := event.Encode(e)
				if err != nil {
					t.Fatalf("encode %s: %v", e.ID, err)
				}
				back, err := event.Decode(raw)
				if err != nil {
					t.Fatalf("decode %s: %v\n%s", e.ID, err, raw)
				}
				if !reflect.DeepEqual(back, e) {
					t.Fatalf("round trip changed %s:\n got %+v\nwant %+v", e.ID, back, e)
				}
				if e.Source != cfg.Source || ids[e.ID] {
					t.Fatalf("event %s: source %q (want %q), id seen before: %v", e.ID, e.Source, cfg.Source, ids[e.ID])
				}
				ids[e.ID] = true
				if e.Type == event.ActivityLogged {
					if activityIDs[e.Data.ActivityID] {
						t.Fatalf("activity id %s used twice", e.Data.ActivityID)
					}
					activityIDs[e.Data.ActivityID] = true
				}
				if !e.Time.After(start) || e.Time.After(cfg.End) {
					t.Fatalf("%s at %s is outside (%s, %s]", e.ID, e.Time, start, cfg.End)
				}
				if e.Time.Location() != time.UTC || !e.Time.Equal(e.Time.Truncate(time.Millisecond)) {
					t.Fatalf("%s time %s is not UTC at millisecond precision", e.ID, e.Time)
				}
				if i > 0 && e.Time.Before(evs[i-1].Time) {
					t.Fatalf("%s at %s comes after %s at %s", e.ID, e.Time, evs[i-1].ID, evs[i-1].Time)
				}
				if prev, ok := lastOf[e.Key()]; ok && !e.Time.After(prev) {
					t.Fatalf("%s (%s) of %s at %s is not after that entity's previous event at %s", e.ID, e.Type, e.Key(), e.Time, prev)
				}
				lastOf[e.Key()] = e.Time
			}
		})
	}
}

func TestDefaultEndIsNowTruncatedToTheHour(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Hour)
	evs := generate(t, Config{Days: 10, Managers: 1, RepsPerManager: 2})
	after := time.Now().UTC().Truncate(time.Hour)
	last := evs[len(evs)-1].Time
	if last.After(after) || !evs[0].Time.After(before.Add(-10*day)) {
		t.Fatalf("events span [%s, %s], want within (%s, %s]", evs[0].Time, last, before.Add(-10*day), after)
	}
}

func TestStylesCycleOverManagers(t *testing.T) {
	cfg := Config{Managers: 4}
	got := cfg.Styles()
	want := map[string]Style{"U-002": Coach, "U-003": PlayerCoach, "U-004": Balanced, "U-005": Coach}
	pr, ok := cfg.Promotion()
	if !ok {
		t.Fatal("four teams of five reps have no promotion")
	}
	want[pr.UserID] = Promoted
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Styles() = %v, want %v", got, want)
	}
	if got := (Config{}).Styles(); len(got) != DefaultManagers+1 {
		t.Fatalf("default Styles() has %d managers, want %d and the promoted rep", len(got), DefaultManagers)
	}
	if got := (Config{Managers: 2}).Styles(); len(got) != 2 {
		t.Fatalf("Styles() of two teams = %v, want the two managers (no promotion)", got)
	}
	if got := (Config{Managers: -1}).Styles(); len(got) != 0 {
		t.Fatalf("Styles() of an invalid config = %v, want empty", got)
	}
}

func TestInvalidConfigIsRejected(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative days", Config{Days: -1}},
		{"too many days", Config{Days: MaxDays + 1}},
		{"negative managers", Config{Managers: -2}},
		{"negative reps", Config{RepsPerManager: -1}},
		{"negative deal rate", Config{DealsPerRepPerMonth: -1}},
		{"NaN deal rate", Config{DealsPerRepPerMonth: math.NaN()}},
		{"duplicate ratio above 1", Config{DuplicateRatio: 1.5}},
		{"negative shuffle ratio", Config{ShuffleRatio: -0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Generate(tt.cfg); err == nil {
				t.Fatal("Generate accepted an invalid config")
			}
		})
	}
}

func TestManagersTakeOverTeamDealsAccordingToStyle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		cfg := Config{End: testEnd, Seed: seed}
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			styles := cfg.Styles()
			pr, ok := cfg.Promotion()
			if !ok {
				t.Fatal("the default organisation has no promotion")
			}
			evs := generate(t, cfg)
			team, taken := teamShares(evs, time.Time{}, pr.UserID)
			share := map[Style]float64{}
			for mgr, style := range styles {
				if style == Promoted {
					continue // a manager for the last 36 days only: below
				}
				if team[mgr] < 30 {
					t.Fatalf("%s (%s) has only %d team deals", mgr, style, team[mgr])
				}
				share[style] = float64(taken[mgr]) / float64(team[mgr])
			}
			if !(share[Coach] < 0.05 && 0.05 < share[Balanced] && share[Balanced] < share[PlayerCoach]) {
				t.Fatalf("takeover shares %v, want coach < 5%% < balanced < player-coach", share)
			}
			if share[PlayerCoach] < 0.35 || share[PlayerCoach] > 0.7 {
				t.Fatalf("player-coach takes over %.0f%% of team deals, want about half", 100*share[PlayerCoach])
			}

			// The deals opened since the promotion: the promoted manager takes over as many as the player-coach
			// does in the same weeks, or more. Those opened in the last weeks are still too young to be taken
			// over, so the shares are lower than over the whole period.
			team, taken = teamShares(evs, pr.At, pr.UserID)
			since := map[Style]float64{}
			for mgr, style := range styles {
				if team[mgr] < 10 {
					t.Fatalf("%s (%s) has only %d team deals opened since the promotion", mgr, style, team[mgr])
				}
				since[style] = float64(taken[mgr]) / float64(team[mgr])
			}
			if !(since[Promoted] >= 0.3 && since[Promoted] > 0.8*since[PlayerCoach] &&
				since[Promoted] > 2*since[Balanced] && since[Coach] < 0.05) {
				t.Fatalf("takeover shares of the deals opened since the promotion %v, want promoted ≥ 30%%, like the "+
					"player-coach and far above balanced and coach", since)
			}
		})
	}
}

func TestCoachCoachesEveryRepWhilePlayerCoachSeldomDoes(t *testing.T) {
	coaching := map[string]bool{}
	for _, k := range event.DefaultCoachingKinds {
		coaching[k] = true
	}
	for _, seed := range []uint64{1, 2, 3} {
		cfg := Config{End: testEnd, Seed: seed}
		evs := generate(t, cfg)
		o := orgOf(evs)
		styles := cfg.Styles()
		count := map[Style]int{}
		coached := map[[2]string]bool{} // (manager, rep)
		for _, e := range evs {
			if e.Type == event.ActivityLogged && coaching[e.Data.Kind] {
				count[styles[e.Data.ActorID]]++
				for _, s := range e.Data.SubjectUserIDs {
					coached[[2]string{e.Data.ActorID, s}] = true
				}
			}
		}
		for rep, cs := range o.changes {
			for _, c := range cs {
				if styles[c.mgr] == Coach && !coached[[2]string{c.mgr, rep}] {
					t.Errorf("seed %d: coach %s never coached %s", seed, c.mgr, rep)
				}
			}
		}
		if count[Coach] < 40 || count[PlayerCoach]*5 > count[Coach] || count[Promoted]*5 > count[Coach] {
			t.Errorf("seed %d: coaching activities coach %d, player-coach %d, promoted %d; want the player-coach and "+
				"the promoted manager to log few", seed, count[Coach], count[PlayerCoach], count[Promoted])
		}
	}
}

// selfClosedWon sums, per style, the won amount of deals closed by the rep who opened them, in the two 30-day
// windows before End (index 0 the earlier one), attributed to the rep's manager at close.
func selfClosedWon(evs []event.Event, styles map[string]Style, end time.Time) map[Style][2]float64 {
	o := orgOf(evs)
	creator, owner, amount := map[string]string{}, map[string]string{}, map[string]float64{}
	out := map[Style][2]float64{}
	const w = 30 * day
	for _, e := range evs {
		d := e.Data
		switch e.Type {
		case event.DealCreated:
			creator[d.DealID], owner[d.DealID], amount[d.DealID] = d.OwnerID, d.OwnerID, *d.Amount
		case event.DealOwnerChanged:
			owner[d.DealID] = d.OwnerID
		case event.DealAmountChanged:
			amount[d.DealID] = *d.Amount
		case event.DealClosed:
			if d.Amount != nil {
				amount[d.DealID] = *d.Amount
			}
			rep := owner[d.DealID]
			if d.Outcome != event.OutcomeWon || rep != creator[d.DealID] || !e.Time.After(end.Add(-2*w)) {
				continue
			}
			style, ok := styles[o.managerAt(rep, e.Time)]
			if !ok {
				continue // a manager's own deal
			}
			sums := out[style]
			if e.Time.After(end.Add(-w)) {
				sums[1] += amount[d.DealID]
			} else {
				sums[0] += amount[d.DealID]
			}
			out[style] = sums
		}
	}
	return out
}

func TestCoachedRepsGrowWhilePlayerCoachRepsDecline(t *testing.T) {
	total := map[Style][2]float64{}
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		cfg := Config{End: testEnd, Seed: seed}
		for style, sums := range selfClosedWon(generate(t, cfg), cfg.Styles(), testEnd) {
			total[style] = [2]float64{total[style][0] + sums[0], total[style][1] + sums[1]}
		}
	}
	growth := func(s Style) float64 { return total[s][1]/total[s][0] - 1 }
	if !(growth(Coach) > 0.3 && growth(Coach) > growth(Balanced) && growth(Balanced) > growth(PlayerCoach) && growth(PlayerCoach) < 0) {
		t.Fatalf("self-closed won amount growth: coach %+.2f, balanced %+.2f, player-coach %+.2f; want coach > +0.3, coach > balanced > player-coach, player-coach < 0",
			growth(Coach), growth(Balanced), growth(PlayerCoach))
	}
}

func TestEveryRepHasExactlyOneManagerWhileActive(t *testing.T) {
	tests := []struct {
		name          string
		cfg           Config
		wantTransfer  bool
		wantLeaver    bool
		wantPromotion bool
	}{
		{"defaults", Config{End: testEnd}, true, true, true},
		{"large org", Config{End: testEnd, Seed: 9, Managers: 7, RepsPerManager: 8}, true, true, true},
		{"three teams of three", Config{End: testEnd, Seed: 4, Managers: 3, RepsPerManager: 3}, true, true, true},
		{"three teams of two", Config{End: testEnd, Seed: 4, Managers: 3, RepsPerManager: 2}, true, true, false},
		{"two small teams", Config{End: testEnd, Seed: 3, Managers: 2, RepsPerManager: 3}, true, true, false},
		{"one manager, one rep", Config{End: testEnd, Managers: 1, RepsPerManager: 1}, false, false, false},
		{"one manager, two reps", Config{End: testEnd, Managers: 1, RepsPerManager: 2}, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := generate(t, tt.cfg)
			o := orgOf(evs)
			styles := tt.cfg.Styles()
			pr, promoted := tt.cfg.Promotion()
			if promoted != tt.wantPromotion || (styles[pr.UserID] == Promoted) != promoted {
				t.Fatalf("promotion %+v happened = %v (style %q), want %v", pr, promoted, styles[pr.UserID], tt.wantPromotion)
			}
			// isManager tells whether u leads a team at t: a first-line manager, or the promoted rep once promoted.
			isManager := func(u string, t time.Time) bool {
				_, ok := styles[u]
				return ok && (!promoted || u != pr.UserID || !t.Before(pr.At))
			}
			head := userID(1)
			transfers := 0
			for u, cs := range o.changes {
				if !o.synced[u] {
					t.Errorf("%s has a reporting line but no user.upserted", u)
				}
				transfers += len(cs) - 1
				for _, c := range cs {
					switch {
					case u == head && c.mgr != "":
						t.Errorf("head of sales reports to %s", c.mgr)
					case isManager(u, c.at) && c.mgr != head:
						t.Errorf("manager %s reports to %q, not the head of sales", u, c.mgr)
					case u != head && !isManager(u, c.at) && (styles[c.mgr] == "" || !isManager(c.mgr, c.at)):
						t.Errorf("rep %s reports to %q, not a first-line manager", u, c.mgr)
					}
				}
			}
			if got := transfers > 0; got != tt.wantTransfer {
				t.Errorf("transfer happened = %v, want %v", got, tt.wantTransfer)
			}
			if got := len(o.gone) > 0; got != tt.wantLeaver {
				t.Errorf("deactivation happened = %v, want %v", got, tt.wantLeaver)
			}
			if promoted {
				// The promotion's reporting lines change at At: the promoted rep's, to the head of sales, and
				// those of the reps moved to them, from a first-line manager's team.
				var moved []string
				for u, cs := range o.changes {
					for i, c := range cs {
						if c.at.Equal(pr.At) && c.mgr == pr.UserID {
							moved = append(moved, u)
							if i == 0 || !isManager(cs[i-1].mgr, pr.At) {
								t.Errorf("%s moved to %s from %q, not from a first-line manager", u, pr.UserID, cs[i-1].mgr)
							}
						}
					}
				}
				slices.Sort(moved)
				cfg, _ := tt.cfg.withDefaults()
				want := (cfg.RepsPerManager + 1) / 2
				if !slices.Equal(moved, pr.ReportIDs) || len(moved) != want {
					t.Errorf("reps moved to %s at %s: %v, want Promotion's %v, %d of them",
						pr.UserID, pr.At, moved, pr.ReportIDs, want)
				}
				before, after := o.managerAt(pr.UserID, pr.At.Add(-time.Second)), o.managerAt(pr.UserID, pr.At)
				if before != pr.FromManagerID || after != head {
					t.Errorf("%s reports to %s before %s and to %s from then on, want %s and the head of sales",
						pr.UserID, before, pr.At, after, pr.FromManagerID)
				}
			}
			// At every event time after the initial sync, every active rep has exactly one manager, itself active,
			// and every manager has at least one rep.
			var synced time.Time
			for _, cs := range o.changes {
				if cs[0].at.After(synced) {
					synced = cs[0].at
				}
			}
			for _, e := range evs {
				if e.Time.Before(synced) {
					continue
				}
				reps := map[string]int{}
				for u := range o.changes {
					if u == head || isManager(u, e.Time) || !o.active(u, e.Time) {
						continue
					}
					mgr := o.managerAt(u, e.Time)
					if !o.active(mgr, e.Time) || !isManager(mgr, e.Time) {
						t.Fatalf("at %s rep %s reports to %q, who is not an active manager", e.Time, u, mgr)
					}
					reps[mgr]++
				}
				for mgr := range styles {
					if o.active(mgr, e.Time) && isManager(mgr, e.Time) && reps[mgr] == 0 {
						t.Fatalf("at %s manager %s has no reps", e.Time, mgr)
					}
				}
			}
		})
	}
}

func TestDealsFollowTheirLifecycle(t *testing.T) {
	var deleted, reopened, openAtEnd, handoffs, won, closed, amountChanges int
	for _, seed := range []uint64{1, 2, 3} {
		cfg := Config{End: testEnd, Seed: seed}
		evs := generate(t, cfg)
		o := orgOf(evs)
		styles := cfg.Styles()
		type state struct {
			owner           string
			stage           int
			open, gone, rep bool
		}
		deals := map[string]*state{}
		for _, e := range evs {
			d := e.Data
			if e.Type == event.ActivityLogged {
				for _, u := range append([]string{d.ActorID}, d.SubjectUserIDs...) {
					if !o.active(u, e.Time) {
						t.Fatalf("%s: %s is not active at %s", e.ID, u, e.Time)
					}
				}
				continue
			}
			if d.DealID == "" {
				continue
			}
			s := deals[d.DealID]
			if (s == nil) != (e.Type == event.DealCreated) || (s != nil && s.gone) {
				t.Fatalf("%s: %s on deal %s out of lifecycle", e.ID, e.Type, d.DealID)
			}
			switch e.Type {
			case event.DealCreated:
				s = &state{owner: d.OwnerID, open: true}
				deals[d.DealID] = s
				if d.Stage != stages[0] || d.Currency != "USD" || d.Amount == nil || *d.Amount <= 0 {
					t.Fatalf("%s: deal created with stage %q, amount %v %s", e.ID, d.Stage, d.Amount, d.Currency)
				}
			case event.DealStageChanged:
				next := slices.Index(stages, d.Stage)
				if !s.open || next <= s.stage || d.PreviousStage != stages[s.stage] {
					t.Fatalf("%s: stage %s → %s (previous_stage %s) on a deal open=%v", e.ID, stages[s.stage], d.Stage, d.PreviousStage, s.open)
				}
				s.stage = next
			case event.DealOwnerChanged:
				if !s.open || d.PreviousOwnerID != s.owner || d.OwnerID == s.owner || d.ChangedBy == "" {
					t.Fatalf("%s: owner change %s → %s on a deal owned by %s, open=%v", e.ID, d.PreviousOwnerID, d.OwnerID, s.owner, s.open)
				}
				_, fromRep := styles[s.owner]
				_, toRep := styles[d.OwnerID]
				if !fromRep && !toRep {
					handoffs++
				}
				s.owner = d.OwnerID
			case event.DealAmountChanged:
				amountChanges++
			case event.DealClosed:
				if !s.open {
					t.Fatalf("%s: closing a closed deal", e.ID)
				}
				s.open = false
				closed++
				if d.Outcome == event.OutcomeWon {
					won++
				}
			case event.DealReopened:
				if s.open {
					t.Fatalf("%s: reopening an open deal", e.ID)
				}
				s.open = true
				reopened++
			case event.DealDeleted:
				s.gone = true
				deleted++
			}
			if !o.active(s.owner, e.Time) {
				t.Fatalf("%s: deal %s owned by %s, who is not active at %s", e.ID, d.DealID, s.owner, e.Time)
			}
		}
		for _, s := range deals {
			if s.open && !s.gone {
				openAtEnd++
			}
		}
	}
	rate := float64(won) / float64(closed)
	t.Logf("deleted %d, reopened %d, open at end %d, rep-to-rep handoffs %d, amount changes %d, win rate %.2f",
		deleted, reopened, openAtEnd, handoffs, amountChanges, rate)
	if deleted == 0 || reopened == 0 || openAtEnd == 0 || handoffs == 0 || amountChanges == 0 {
		t.Fatal("every kind of deal history should occur")
	}
	if rate < 0.25 || rate > 0.40 {
		t.Fatalf("win rate %.2f, want 25–40%%", rate)
	}
}

func TestDuplicateRatioReemitsEventsVerbatimLater(t *testing.T) {
	base := generate(t, Config{End: testEnd, Seed: 4})
	for _, ratio := range []float64{0.01, 0.2, 1} {
		evs := generate(t, Config{End: testEnd, Seed: 4, DuplicateRatio: ratio})
		want := int(math.Round(ratio * float64(len(base))))
		if len(evs) != len(base)+want {
			t.Fatalf("ratio %v: %d events, want %d + %d duplicates", ratio, len(evs), len(base), want)
		}
		first := map[string]event.Event{}
		var firsts []event.Event
		for _, e := range evs {
			orig, seen := first[e.ID]
			if !seen {
				first[e.ID] = e
				firsts = append(firsts, e)
				continue
			}
			if !reflect.DeepEqual(orig, e) {
				t.Fatalf("ratio %v: duplicate of %s differs:\n%+v\n%+v", ratio, e.ID, orig, e)
			}
		}
		if !reflect.DeepEqual(firsts, base) {
			t.Fatalf("ratio %v: first copies are not the undisturbed output", ratio)
		}
	}
}

func TestShuffleRatioDeliversEventsLateWithTheirOwnTime(t *testing.T) {
	base := generate(t, Config{End: testEnd, Seed: 8})
	index := map[string]int{}
	for i, e := range base {
		index[e.ID] = i
	}
	for _, ratio := range []float64{0.01, 0.3, 1} {
		evs := generate(t, Config{End: testEnd, Seed: 8, ShuffleRatio: ratio})
		if len(evs) != len(base) {
			t.Fatalf("ratio %v: %d events, want %d", ratio, len(evs), len(base))
		}
		late, highest := 0, -1
		seen := map[string]bool{}
		for _, e := range evs {
			i, ok := index[e.ID]
			if !ok || seen[e.ID] || !reflect.DeepEqual(base[i], e) {
				t.Fatalf("ratio %v: %s is not exactly one of the original events", ratio, e.ID)
			}
			seen[e.ID] = true
			if i < highest { // an event that originally came after it was delivered first
				late++
			}
			highest = max(highest, i)
		}
		want := min(int(math.Round(ratio*float64(len(base)))), len(base)-1)
		if late != want {
			t.Fatalf("ratio %v: %d events arrive late, want %d", ratio, late, want)
		}
	}
}

func TestDuplicatesOfLateEventsComeAfterThem(t *testing.T) {
	evs := generate(t, Config{End: testEnd, Seed: 2, ShuffleRatio: 0.2, DuplicateRatio: 0.2})
	base := generate(t, Config{End: testEnd, Seed: 2})
	seen := map[string]bool{}
	dups := 0
	for _, e := range evs {
		if seen[e.ID] {
			dups++
		}
		seen[e.ID] = true
	}
	if len(seen) != len(base) || dups != int(math.Round(0.2*float64(len(base)))) {
		t.Fatalf("%d distinct events and %d duplicates, want %d and 20%%", len(seen), dups, len(base))
	}
}
