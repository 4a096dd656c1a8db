package simulate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// styleParams are the behaviours that make a style show in the indicators.
type styleParams struct {
	takeover     float64 // probability that a team deal is marked for takeover when it is created
	takeoverWin  float64 // win probability of a deal the manager took over
	ownPerMonth  float64 // deals the manager opens personally per 30 days
	learnPerDay  float64 // change of a team rep's win probability per day spent in the team
	coachingWeek float64 // probability of a coaching activity with a rep in a week it is due
	otherWeek    float64 // probability of a non-coaching activity (call, email, joint call) with a rep per week
}

var styles = map[Style]styleParams{
	Coach:       {takeover: 0.01, takeoverWin: 0.5, ownPerMonth: 0, learnPerDay: 0.005, coachingWeek: 0.95, otherWeek: 0.15},
	PlayerCoach: {takeover: 0.68, takeoverWin: 0.65, ownPerMonth: 1.5, learnPerDay: -0.002, coachingWeek: 0.025, otherWeek: 0.45},
	Balanced:    {takeover: 0.17, takeoverWin: 0.55, ownPerMonth: 0.5, learnPerDay: 0.002, coachingWeek: 0.9, otherWeek: 0.2},
	Promoted:    {takeover: 0.8, takeoverWin: 0.65, ownPerMonth: 1.5, learnPerDay: -0.002, coachingWeek: 0.025, otherWeek: 0.45},
}

const (
	day            = 24 * time.Hour
	ownDealWin     = 0.5 // win probability of a manager's own deals
	minWin, maxWin = 0.05, 0.6
	deleteRatio    = 0.02   // deals deleted soon after creation (duplicates, junk)
	handoffRatio   = 0.05   // deals handed from one rep to a teammate in qualification
	amountChange   = 0.12   // chance per late stage of an amount change
	reopenRatio    = 0.04   // closed deals reopened and closed again
	takeAtProposal = 0.3    // takeovers that happen in proposal rather than negotiation
	transferAt     = 0.45   // share of the period after which one rep changes teams
	deactivateAt   = 0.60   // share of the period after which one rep leaves
	promoteAt      = 0.60   // share of the period after which the star is promoted to manager
	starWin        = maxWin // the star's win probability, from start to promotion
	starSize       = 2.0    // the star's deals are as large as those of the best-grown rep
	starDeals      = 1.5    // the star opens this many times as many deals as a rep
	emailDomain    = "acme.example"
)

var (
	stages        = []string{"prospecting", "qualification", "proposal", "negotiation"}
	coachingKinds = event.DefaultCoachingKinds
)

type user struct {
	id, name, email, title string
	idx                    int // position in gen.users
	style                  Style
	rep                    bool      // a rep at the start (see repAt)
	star                   bool      // the rep to be promoted: a top seller whose deals no manager takes over
	base                   float64   // reps: win probability at the start
	lines                  []line    // reporting-line history, ascending
	gone                   time.Time // deactivation time; zero while active
	promoted               time.Time // the star's promotion to manager; zero for everyone else
	spans                  []span    // deals owned, for deal reviews
}

type line struct {
	from time.Time
	mgr  *user // nil: no manager
}

type span struct {
	deal     string
	from, to time.Time // [from, to)
}

// managerAt is u's manager at t: from the latest reporting-line change at or before t; nil once u has left.
func (u *user) managerAt(t time.Time) *user {
	if !u.gone.IsZero() && !t.Before(u.gone) {
		return nil
	}
	var m *user
	for _, l := range u.lines {
		if l.from.After(t) {
			break
		}
		m = l.mgr
	}
	return m
}

// repAt tells whether u is a rep at t: one from the start, and not yet promoted.
func (u *user) repAt(t time.Time) bool { return u.rep && (u.promoted.IsZero() || t.Before(u.promoted)) }

// leavesTeam is when u stops selling as a member of a team, by leaving the company or by being promoted; zero when
// u does neither.
func (u *user) leavesTeam() time.Time {
	if !u.gone.IsZero() {
		return u.gone
	}
	return u.promoted
}

// activeAt tells whether u is on the books at t: synced and not yet deactivated.
func (u *user) activeAt(t time.Time) bool {
	return len(u.lines) > 0 && !u.lines[0].from.After(t) && (u.gone.IsZero() || t.Before(u.gone))
}

// openDealAt returns a deal u owns that is open at t, or "".
func (u *user) openDealAt(t time.Time) string {
	for _, s := range slices.Backward(u.spans) {
		if !s.from.After(t) && t.Before(s.to) {
			return s.deal
		}
	}
	return ""
}

// company is the organisation shared by the generators of a run: its users and their reporting lines are settled by
// buildOrg before any deal is played; deals then record their owners' spans, which the manager routines read.
type company struct {
	cfg        Config
	start, end time.Time
	synced     time.Time // the initial sync's last event
	users      []*user
	head       *user
	managers   []*user // the first-line managers of the start, in order
	star       *user   // the rep promoted to manager during the period; nil when there is none
	reps       []*user // everyone who starts as a rep, the star included
}

// managersAt lists the first-line managers at t: those of the start, and the star once promoted.
func (o *company) managersAt(t time.Time) []*user {
	if o.star != nil && !t.Before(o.star.promoted) {
		return append(slices.Clip(o.managers), o.star)
	}
	return o.managers
}

// gen is one generator of events: the organisation's set-up, its deals or its manager routines. Each has its own
// random stream and diffusion accumulators, so the three can be interleaved in time while drawing exactly what
// one stream drew when they ran one after the other (see run).
type gen struct {
	*company
	rng   *rand.Rand
	acc   map[string]float64 // error-diffusion accumulators, by series
	deals int
	phase int        // orders events of equal time: set-up, then deals, then routines
	added int        // events added so far; an event's seq
	push  func(item) // receives each event; nil counts them only
	spans bool       // record the spans of deal owners, for deal reviews
}

func newGen(o *company, src *rand.PCG, phase int, push func(item)) *gen {
	return &gen{company: o, rng: rand.New(src), acc: map[string]float64{}, phase: phase, push: push}
}

func (g *gen) add(t time.Time, typ string, d event.Data) { g.addAsking(t, typ, d, dealRef{}) }

// addAsking adds an event whose deal_id is to be looked up, by ref, when the event is released.
func (g *gen) addAsking(t time.Time, typ string, d event.Data, ref dealRef) {
	if g.push != nil {
		g.push(item{phase: g.phase, seq: g.added, ev: event.Event{Source: g.cfg.Source, Type: typ, Time: t, Data: d}, ref: ref})
	}
	g.added++
}

// uniform returns a duration of lo to hi days.
func (g *gen) uniform(lo, hi float64) time.Duration {
	return time.Duration((lo + g.rng.Float64()*(hi-lo)) * float64(day))
}

// work moves t forward into working hours (08:00–18:00 UTC, Monday to Friday), at whole seconds. A time moved to
// a morning gets a random start within the first two hours, so mornings do not all begin at 08:00:00.
func (g *gen) work(t time.Time) time.Time { return work(g.rng, t) }

// work is gen.work drawing from rng. The result is never before t truncated to the second.
func work(rng *rand.Rand, t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second)
	for {
		midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		weekend := t.Weekday() == time.Saturday || t.Weekday() == time.Sunday
		switch {
		case weekend || t.Hour() >= 18:
			t = midnight.Add(day)
		case t.Hour() < 8:
			return midnight.Add(8*time.Hour + time.Duration(rng.IntN(2*3600))*time.Second)
		default:
			return t
		}
	}
}

// dropSpans forgets the deal spans that ended at or before t: no routine asks about them any more.
func (o *company) dropSpans(t time.Time) {
	for _, u := range o.users {
		u.spans = slices.DeleteFunc(u.spans, func(s span) bool { return !s.to.After(t) })
	}
}

// inPeriod tells whether t may carry an event: after the initial sync and no later than End.
func (o *company) inPeriod(t time.Time) bool { return t.After(o.synced) && !t.After(o.end) }

func (g *gen) newUser(title string, n int, name [2]string) *user {
	local := strings.ToLower(name[0] + "." + name[1])
	if n > 0 {
		local += fmt.Sprint(n)
	}
	u := &user{
		id: userID(len(g.users) + 1), idx: len(g.users), title: title,
		name: name[0] + " " + name[1], email: local + "@" + emailDomain,
	}
	g.users = append(g.users, u)
	return u
}

// buildOrg creates the head of sales, the managers and their reps, emits the initial sync, then the mid-period
// transfer, departure and promotion.
func (g *gen) buildOrg() {
	c := g.cfg
	names := g.names(1 + c.Managers + c.Managers*c.RepsPerManager)
	g.head = g.newUser("VP of Sales", names[0].n, names[0].name)
	for i := range c.Managers {
		nm := names[1+i]
		m := g.newUser("Sales Manager", nm.n, nm.name)
		m.style = styleCycle[i%len(styleCycle)]
		g.managers = append(g.managers, m)
	}
	for i, m := range g.managers {
		for j := range c.RepsPerManager {
			nm := names[1+c.Managers+i*c.RepsPerManager+j]
			r := g.newUser("Account Executive", nm.n, nm.name)
			r.rep = true
			r.base = 0.14 + 0.06*g.rng.Float64()
			r.lines = []line{{mgr: m}}
			g.reps = append(g.reps, r)
		}
	}
	for _, m := range g.managers {
		m.lines = []line{{mgr: g.head}}
	}
	g.head.lines = []line{{}}
	// The initial sync: one user a second, profile then reporting line.
	for _, u := range g.users {
		t := g.start.Truncate(time.Second).Add(time.Minute + time.Duration(2*u.idx)*time.Second)
		u.lines[0].from = t.Add(time.Second)
		g.add(t, event.UserUpserted, event.Data{UserID: u.id, Name: u.name, Email: u.email, Title: u.title})
		var mgr *string
		if m := u.lines[0].mgr; m != nil {
			mgr = event.Ptr(m.id)
		}
		g.add(u.lines[0].from, event.UserManagerChanged, event.Data{UserID: u.id, ManagerID: mgr})
		g.synced = u.lines[0].from
	}

	var moved *user
	if c.Managers >= 2 && c.RepsPerManager >= 2 {
		moved = g.reps[2*c.RepsPerManager-1] // the second team's last rep joins the first team
		t := g.work(g.start.Add(time.Duration(transferAt * float64(c.Days) * float64(day))))
		if g.inPeriod(t) && t.After(moved.lines[0].from) {
			moved.lines = append(moved.lines, line{from: t, mgr: g.managers[0]})
			g.add(t, event.UserManagerChanged, event.Data{UserID: moved.id, ManagerID: event.Ptr(g.managers[0].id)})
		}
	}
	t := g.work(g.start.Add(time.Duration(deactivateAt * float64(c.Days) * float64(day))))
	team := g.managers[min(2, c.Managers-1)]
	var members []*user
	for _, r := range g.reps {
		if r != moved && r.managerAt(t) == team && r.activeAt(t) {
			members = append(members, r)
		}
	}
	if len(members) >= 2 && g.inPeriod(t) {
		leaver := members[len(members)-1]
		leaver.gone = t
		g.add(t, event.UserDeactivated, event.Data{UserID: leaver.id})
	}
	if c.Managers >= 3 && c.RepsPerManager >= 3 {
		g.promote()
	}
}

// promote settles the star and their promotion (see Config.Promotion). The star is the rep with the best start in
// the second team, the first player-coach's, made a natural: from the start they win starWin of their deals, open
// starDeals times as many as a rep and starSize times larger ones, whatever their manager does, and no manager takes
// their deals over, so they are the best-selling rep when promoted. At promoteAt of the period they become a manager
// of the Promoted style reporting to the head of sales, and up to ⌈RepsPerManager/2⌉ reps move to them: the last
// members of the first team (the coach's) and of the star's own team, alternately, each team keeping at least one
// rep. Their open deals go to teammates just before (handOffIfLeaving); after it they still open deals of their own,
// at the Promoted style's rate.
func (g *gen) promote() {
	c := g.cfg
	at := g.work(g.start.Add(time.Duration(promoteAt * float64(c.Days) * float64(day))))
	if !g.inPeriod(at) {
		return
	}
	from := g.managers[1]
	// Members of a team at the promotion who stay in the company: those who can be promoted or moved.
	members := func(m *user) []*user {
		var out []*user
		for _, r := range g.reps {
			if r.managerAt(at) == m && r.activeAt(at) && r.gone.IsZero() && !r.star {
				out = append(out, r)
			}
		}
		return out
	}
	candidates := members(from)
	if len(candidates) < 2 {
		return
	}
	star := candidates[0]
	for _, r := range candidates[1:] {
		if r.base > star.base {
			star = r
		}
	}
	star.star, star.base, star.style, star.promoted = true, starWin, Promoted, at
	g.star = star

	var moved []*user
	for i, stuck := 0, 0; len(moved) < (c.RepsPerManager+1)/2 && stuck < 2; i++ {
		team := members([]*user{g.managers[0], from}[i%2])
		if len(team) < 2 {
			stuck++
			continue
		}
		stuck = 0
		r := team[len(team)-1]
		r.lines = append(r.lines, line{from: at, mgr: star})
		moved = append(moved, r)
	}
	star.lines = append(star.lines, line{from: at, mgr: g.head})
	for _, r := range moved {
		g.add(at, event.UserManagerChanged, event.Data{UserID: r.id, ManagerID: event.Ptr(star.id)})
	}
	g.add(at, event.UserManagerChanged, event.Data{UserID: star.id, ManagerID: event.Ptr(g.head.id)})
	star.title = "Sales Manager"
	g.add(at.Add(time.Second), event.UserUpserted,
		event.Data{UserID: star.id, Name: star.name, Email: star.email, Title: star.title})
}

type pickedName struct {
	name [2]string
	n    int // > 0 when the name had to be reused; appended to the email's local part
}

// names draws n distinct full names; past the list's combinations, names repeat with a numbered email.
func (g *gen) names(n int) []pickedName {
	combos := len(firstNames) * len(lastNames)
	out := make([]pickedName, 0, n)
	for round := 0; len(out) < n; round++ {
		for _, k := range g.rng.Perm(combos) {
			if len(out) == n {
				break
			}
			out = append(out, pickedName{[2]string{firstNames[k%len(firstNames)], lastNames[k/len(firstNames)]}, round})
		}
	}
	return out
}

// skill is r's win probability at t before clamping: its starting level plus what each manager's style added or
// took away per day spent in that manager's team.
func (g *gen) skill(r *user, t time.Time) float64 {
	s := r.base
	if r.star {
		return s // a natural, whatever their manager does
	}
	for i, l := range r.lines {
		to := t
		if i+1 < len(r.lines) && r.lines[i+1].from.Before(to) {
			to = r.lines[i+1].from
		}
		if l.mgr != nil && to.After(l.from) {
			s += styles[l.mgr.style].learnPerDay * to.Sub(l.from).Hours() / 24
		}
	}
	return s
}

func (g *gen) winProbability(r *user, t time.Time) float64 {
	return min(maxWin, max(minWin, g.skill(r, t)))
}

// sizeFactor scales a rep's deal sizes with what they have learnt since the start: better reps sell bigger deals.
// The star's are starSize times the size of an average rep's at the start.
func (g *gen) sizeFactor(r *user, t time.Time) float64 {
	if r.star {
		return starSize
	}
	return min(2, max(0.5, 1+2*(g.skill(r, t)-r.base)))
}

// outcome decides whether u wins a deal it closes with probability p.
func (g *gen) outcome(u *user, p float64) bool { return g.diffuse("win/"+u.id, p) }

// diffuse draws a yes with probability p from the series named key. Error diffusion (an accumulator per series,
// with jittered increments) keeps the number of yeses close to the sum of the probabilities, so a style's effect
// shows in every seed and even in one 30-day window of a small team, rather than only on average.
func (g *gen) diffuse(key string, p float64) bool {
	a, ok := g.acc[key]
	if !ok {
		a = g.rng.Float64()
	}
	a += p * (0.7 + 0.6*g.rng.Float64())
	yes := a >= 1
	if yes {
		a--
	}
	g.acc[key] = a
	return yes
}

// teammate picks another rep of mgr's team who is active at t and not about to leave the team (the company, or
// the rep's role); nil when there is none.
func (g *gen) teammate(of, mgr *user, t time.Time) *user {
	var mates []*user
	for _, r := range g.reps {
		lv := r.leavesTeam()
		if r != of && r.activeAt(t) && r.managerAt(t) == mgr && (lv.IsZero() || t.Before(lv.Add(-day))) {
			mates = append(mates, r)
		}
	}
	if len(mates) == 0 {
		return nil
	}
	return mates[g.rng.IntN(len(mates))]
}

// dealRef is the deal an activity is about: by id, or, for a manager's routine, the deal the rep owns and has open
// at a time (none if the rep has none open then). That one is looked up when the activity is released in time
// order, once every deal opened before it has been played, so a week's routines can be played before its deals.
type dealRef struct {
	id  string
	rep *user
	at  time.Time
}

// resolve sets the activity's deal_id from ref; a deal review finding no open deal becomes a one-on-one.
func (ref dealRef) resolve(d *event.Data) {
	if ref.rep == nil {
		return
	}
	d.DealID = ref.rep.openDealAt(ref.at)
	if d.Kind == "deal_review" && d.DealID == "" {
		d.Kind = "one_on_one"
	}
}

// activity records an activity.logged; its activity_id is assigned once all events are in time order.
func (g *gen) activity(t time.Time, kind string, actor *user, subjects []*user, deal dealRef) {
	if !g.inPeriod(t) {
		return
	}
	ids := make([]string, len(subjects))
	for i, s := range subjects {
		ids[i] = s.id
	}
	d := event.Data{Kind: kind, ActorID: actor.id, SubjectUserIDs: ids, DealID: deal.id}
	switch kind {
	case "email":
		// emails carry no duration
	case "call":
		d.DurationMinutes = event.Ptr(float64(5 + 5*g.rng.IntN(6)))
	default:
		// a deal review without an open deal is a one-on-one: the same draw
		d.DurationMinutes = event.Ptr(float64(30 + 15*g.rng.IntN(4)))
	}
	g.addAsking(t, event.ActivityLogged, d, deal)
}

// routines emits the weekly rhythm of each manager, one week at a time: a team meeting, then per rep a coaching
// activity when the style calls for one and sometimes a call, email or joint call. The head of sales meets the
// managers weekly. A manager promoted during a week has their team from the promotion on.
type routines struct {
	g      *gen
	week   int
	monday time.Time // of the next week to play
}

func newRoutines(g *gen) *routines {
	monday := time.Date(g.start.Year(), g.start.Month(), g.start.Day(), 0, 0, 0, 0, time.UTC)
	for monday.Weekday() != time.Monday {
		monday = monday.Add(-day)
	}
	return &routines{g: g, monday: monday}
}

func (rt *routines) done() bool { return rt.monday.After(rt.g.end) }

// from is the earliest time an event of the next week can have.
func (rt *routines) from() time.Time { return rt.monday.Add(8 * time.Hour) }

// playWeek emits the next week's routines.
func (rt *routines) playWeek() {
	g, week, monday := rt.g, rt.week, rt.monday
	rt.week, rt.monday = week+1, monday.Add(7*day)
	t := monday.Add(8*time.Hour + time.Duration(g.rng.IntN(1800))*time.Second)
	g.activity(t, "meeting", g.head, g.managersAt(t), dealRef{})
	for _, m := range g.managersAt(monday.Add(7 * day)) {
		p := styles[m.style]
		var team []*user
		tm := monday.Add(9*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
		for _, r := range g.reps {
			if r.managerAt(tm) == m {
				team = append(team, r)
			}
		}
		if len(team) > 0 {
			g.activity(tm, "meeting", m, team, dealRef{})
		}
		for _, r := range g.reps {
			// Tuesday to Friday, rep by rep, during the day.
			t := monday.Add(time.Duration(1+r.idx%4)*day + 10*time.Hour + time.Duration(g.rng.IntN(6*3600))*time.Second)
			if r.managerAt(t) != m {
				continue
			}
			due := m.style != Balanced || (week+r.idx)%2 == 0
			// Diffused, so a coach or balanced manager never skips a rep twice in a row.
			if due && g.diffuse("coaching/"+m.id+"/"+r.id, p.coachingWeek) {
				kind := coachingKinds[g.rng.IntN(len(coachingKinds))]
				var deal dealRef
				if kind == "deal_review" {
					deal = dealRef{rep: r, at: t}
				}
				g.activity(t, kind, m, []*user{r}, deal)
			}
			if g.rng.Float64() < p.otherWeek {
				kinds := []string{"call", "email", "joint_call"}
				kind := kinds[g.rng.IntN(len(kinds))]
				var deal dealRef
				if kind == "joint_call" {
					deal = dealRef{rep: r, at: t}
				}
				g.activity(t.Add(90*time.Minute), kind, m, []*user{r}, deal)
			}
		}
	}
}
