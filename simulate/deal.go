package simulate

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// stageDays bounds how long a deal stays in stages[i-1] before moving to stages[i], in days.
var stageDays = [4][2]float64{{}, {2, 7}, {3, 10}, {3, 10}}

// Deals are opened by each rep and each manager (their own deals) as a renewal process with Erlang-4 gaps (steadier
// than Poisson, so a month's count stays near its mean), and played in the order they were opened (ties: by the
// owner's position in the org, then in the order drawn), so deal ids follow creation time. All processes are drawn,
// user after user, from the set-up's random stream; planArrivals draws them once to note where each user's process
// starts in the stream, so openings can replay them side by side and merge them lazily.

// arrivalPlan is where a user's process starts.
type arrivalPlan struct {
	u      *user
	perDay float64
	state  rand.PCG // the random stream just before the process's first draw
}

// arrivals is a user's process being replayed.
type arrivals struct {
	o      *company
	u      *user
	rng    *rand.Rand
	perDay float64
	t      time.Time   // the process's latest point
	done   bool        // the latest point is after End
	drawn  []time.Time // openings drawn and not taken yet, in the order drawn
	next   int         // index in drawn of the earliest one, once known
}

// step draws the process's next point and returns it as an opening, in working hours, if the user may open a deal
// then.
func (a *arrivals) step() (time.Time, bool) {
	gap := (a.rng.ExpFloat64() + a.rng.ExpFloat64() + a.rng.ExpFloat64() + a.rng.ExpFloat64()) / 4
	a.t = a.t.Add(time.Duration(gap / a.perDay * float64(day)))
	if a.t.After(a.o.end) {
		a.done = true
		return time.Time{}, false
	}
	at := work(a.rng, a.t)
	if !a.o.inPeriod(at) || !a.u.activeAt(at) {
		return at, false
	}
	// Nobody opens a deal on their last day in a team. Once promoted, the star keeps opening deals of their own,
	// at a manager's rate.
	switch lv := a.u.leavesTeam(); {
	case lv.IsZero() || at.Before(lv.Add(-day)):
		return at, true
	case a.u.promoted.IsZero() || at.Before(a.u.promoted):
		return at, false
	default:
		return at, a.rng.Float64()*a.perDay < styles[Promoted].ownPerMonth/30
	}
}

// settle draws until the earliest opening not taken yet is known, and reports whether there is one. An opening is
// never before its point truncated to the second and points never decrease, so once the earliest drawn opening is
// no later than that, no opening drawn afterwards can come before it.
func (a *arrivals) settle() bool {
	for {
		a.next = -1
		for i, t := range a.drawn {
			if a.next < 0 || t.Before(a.drawn[a.next]) {
				a.next = i
			}
		}
		if a.done || (a.next >= 0 && !a.drawn[a.next].After(a.t.Truncate(time.Second))) {
			return a.next >= 0
		}
		if at, ok := a.step(); ok {
			a.drawn = append(a.drawn, at)
		}
	}
}

// planArrivals draws every user's process from g's stream, reps first, then managers, as the set-up always did,
// and notes where each starts.
func (g *gen) planArrivals(src *rand.PCG) []arrivalPlan {
	var plans []arrivalPlan
	plan := func(u *user, perMonth float64) {
		if perMonth <= 0 {
			return
		}
		p := arrivalPlan{u: u, perDay: perMonth / 30, state: *src}
		plans = append(plans, p)
		a := &arrivals{o: g.company, u: u, rng: g.rng, perDay: p.perDay, t: g.synced}
		for !a.done {
			a.step()
		}
	}
	for _, r := range g.reps {
		if r.star {
			plan(r, starDeals*g.cfg.DealsPerRepPerMonth)
		} else {
			plan(r, g.cfg.DealsPerRepPerMonth)
		}
	}
	for _, m := range g.managers {
		plan(m, styles[m.style].ownPerMonth)
	}
	return plans
}

// openings replays the planned processes and yields their openings in the order deals are played.
type openings []*arrivals // a min-heap by (earliest opening, owner's position)

func newOpenings(o *company, plans []arrivalPlan) *openings {
	h := make(openings, 0, len(plans))
	for _, p := range plans {
		src := p.state
		a := &arrivals{o: o, u: p.u, rng: rand.New(&src), perDay: p.perDay, t: o.synced}
		if a.settle() {
			h = append(h, a)
		}
	}
	heap.Init(&h)
	return &h
}

// peek returns the time of the next deal to play, if any.
func (h *openings) peek() (time.Time, bool) {
	if len(*h) == 0 {
		return time.Time{}, false
	}
	a := (*h)[0]
	return a.drawn[a.next], true
}

// pop takes the next deal to play: its owner and opening time.
func (h *openings) pop() (*user, time.Time) {
	a := (*h)[0]
	t := a.drawn[a.next]
	a.drawn = slices.Delete(a.drawn, a.next, a.next+1)
	if a.settle() {
		heap.Fix(h, 0)
	} else {
		heap.Pop(h)
	}
	return a.u, t
}

func (h openings) Len() int { return len(h) }
func (h openings) Less(i, j int) bool {
	a, b := h[i], h[j]
	return cmp.Or(a.drawn[a.next].Compare(b.drawn[b.next]), cmp.Compare(a.u.idx, b.u.idx)) < 0
}
func (h openings) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *openings) Push(x any)   { *h = append(*h, x.(*arrivals)) }
func (h *openings) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}

// deal is a deal being played; its events are strictly increasing in time and stop at End.
type deal struct {
	g         *gen
	id        string
	owner     *user
	stage     int
	amount    float64
	last      time.Time // time of the deal's latest event
	open      bool
	stopped   bool      // the next event would fall after End
	from      time.Time // start of the current owner's tenure
	takenFrom *user     // the rep a manager took the deal over from
	tenures   []tenure
}

type tenure struct {
	owner    *user
	rep      *user // for a manager's tenure after a takeover: the rep it was taken from
	from, to time.Time
}

// playDeal plays one deal from creation to its end: deleted, or through the stages to won or lost (possibly
// reopened and closed again), or still open at End.
func (g *gen) playDeal(owner *user, t0 time.Time) {
	g.deals++
	d := &deal{g: g, id: dealID(g.deals), owner: owner, last: t0.Add(-time.Minute)}
	defer d.finish()
	own := !owner.repAt(t0)
	team, size := owner, 1.3
	if !own {
		team, size = owner.managerAt(t0), g.sizeFactor(owner, t0)
	}
	params := styles[team.style]
	d.amount = g.amount(size)
	d.put(t0, event.DealCreated, event.Data{OwnerID: owner.id, Name: g.dealName(), Amount: event.Ptr(d.amount),
		Currency: "USD", Stage: stages[0]})
	d.open, d.from = true, t0

	if !own && g.rng.Float64() < deleteRatio {
		if t, ok := d.after(0.5, 5); ok {
			d.put(t, event.DealDeleted, event.Data{})
			d.open = false
			d.endTenure(t)
		}
		return
	}

	// A deal marked for takeover at creation is taken over when it reaches takeStage by the owner's manager then.
	// Should the owner have changed teams by the time the deal reaches takeStage, the new manager marks it afresh,
	// with its own style's odds (and should the manager change between marking and taking, the new one takes it
	// with the odds of its own style relative to the marker's). No manager takes over the star's deals.
	candidate := !own && !owner.star && g.diffuse("takeover/"+team.id, params.takeover)
	marker := team // the manager whose style decided candidate
	if owner.star {
		marker = nil
	}
	takeStage := 3
	if g.rng.Float64() < takeAtProposal {
		takeStage = 2
	}
	handoff := !own && !candidate && g.rng.Float64() < handoffRatio
	won, lostAfter := false, 0 // lostAfter: index of the last stage a lost deal reaches
	decide := func(who *user, p float64, from int) {
		won, lostAfter = g.outcome(who, p), 3
		if !won {
			lostAfter = from + g.rng.IntN(4-from)
		}
	}
	if !candidate {
		p := ownDealWin
		if !own {
			p = g.winProbability(owner, t0.Add(20*day))
		}
		decide(owner, p, 0)
	}

	amountChanged := false
	for s := 1; s <= 3 && (candidate || s <= lostAfter); s++ {
		t, ok := d.after(stageDays[s][0], stageDays[s][1])
		if !ok {
			return
		}
		d.put(t, event.DealStageChanged, event.Data{Stage: stages[s], PreviousStage: stages[s-1]})
		d.stage = s
		if s == 1 && handoff {
			t, ok := d.after(0.5, 3)
			if !ok {
				return
			}
			if mgr := d.owner.managerAt(t); mgr != nil {
				if mate := g.teammate(d.owner, mgr, t); mate != nil {
					d.changeOwner(t, mate, mgr)
				}
			}
		}
		if s >= 2 && !amountChanged && g.rng.Float64() < amountChange {
			t, ok := d.after(0.2, 2)
			if !ok {
				return
			}
			d.amount = round100(d.amount * (0.75 + 0.55*g.rng.Float64()))
			d.put(t, event.DealAmountChanged, event.Data{Amount: event.Ptr(d.amount), Currency: "USD"})
			amountChanged = true
		}
		if s == takeStage && !own && !d.owner.star {
			if m := d.owner.managerAt(d.last); m != nil && m != marker {
				was := candidate
				candidate, marker = g.diffuse("takeover/"+m.id, styles[m.style].takeover), m
				if was && !candidate {
					decide(d.owner, g.winProbability(d.owner, d.last.Add(10*day)), s)
				}
			}
		}
		if candidate && s == takeStage {
			candidate = false
			t, ok := d.after(0.1, 2)
			if !ok {
				return
			}
			m := d.owner.managerAt(t)
			if m != nil && (m == marker || g.rng.Float64() < styles[m.style].takeover/styles[marker.style].takeover) {
				d.changeOwner(t, m, m)
				decide(m, styles[m.style].takeoverWin, 3)
			} else {
				decide(d.owner, g.winProbability(d.owner, t.Add(10*day)), s)
			}
		}
	}

	lo, hi := 2.0, 12.0
	if !won {
		lo, hi = 1, 8
	}
	t, ok := d.after(lo, hi)
	if !ok {
		return
	}
	d.close(t, won)

	if g.rng.Float64() >= reopenRatio || !d.owner.leavesTeam().IsZero() {
		return
	}
	if t, ok = d.after(2, 10); !ok {
		return
	}
	d.put(t, event.DealReopened, event.Data{})
	d.open, d.from = true, t
	if d.stage != 3 {
		if t, ok = d.after(0.5, 3); !ok {
			return
		}
		d.put(t, event.DealStageChanged, event.Data{Stage: stages[3], PreviousStage: stages[d.stage]})
		d.stage = 3
	}
	if t, ok = d.after(3, 14); !ok {
		return
	}
	p := ownDealWin
	switch {
	case d.owner.repAt(t):
		p = g.winProbability(d.owner, t)
	case d.takenFrom != nil:
		p = styles[d.owner.style].takeoverWin
	}
	d.close(t, g.rng.Float64() < p)
}

// after returns the time of the deal's next event, lo to hi days after its latest one, in working hours.
func (d *deal) after(lo, hi float64) (time.Time, bool) {
	return d.at(d.last.Add(d.g.uniform(lo, hi)))
}

// at settles the time of the deal's next event: working hours, strictly after its latest event. A departing owner
// hands the deal over first. It reports false, and the deal stops, when the time falls after End.
func (d *deal) at(t time.Time) (time.Time, bool) {
	if d.stopped {
		return t, false
	}
	later := func(t time.Time) time.Time {
		if !t.After(d.last) {
			return d.last.Add(time.Minute)
		}
		return t
	}
	t = later(d.g.work(t))
	d.handOffIfLeaving(t)
	t = later(t)
	if t.After(d.g.end) {
		d.stopped = true
		return t, false
	}
	return t, true
}

func (d *deal) put(t time.Time, typ string, data event.Data) {
	data.DealID = d.id
	d.g.add(t, typ, data)
	d.last = t
}

// handOffIfLeaving gives the open deal to a teammate an hour before its owner leaves the team (the company, or
// the rep's role when promoted), if the next event (at t) is that close to the departure or later.
func (d *deal) handOffIfLeaving(t time.Time) {
	o := d.owner
	lv := o.leavesTeam()
	if !d.open || lv.IsZero() || t.Before(lv.Add(-2*time.Hour)) {
		return
	}
	at := lv.Add(-time.Hour)
	if !at.After(d.last) {
		at = d.last.Add(time.Minute)
	}
	if at.After(d.g.end) || !at.Before(lv) {
		return
	}
	if mgr := o.managerAt(at); mgr != nil {
		if mate := d.g.teammate(o, mgr, at); mate != nil {
			d.changeOwner(at, mate, mgr)
		}
	}
}

// changeOwner makes to the owner at t, changed by by; a manager taking its rep's deal is a takeover.
func (d *deal) changeOwner(t time.Time, to, by *user) {
	d.put(t, event.DealOwnerChanged, event.Data{OwnerID: to.id, PreviousOwnerID: d.owner.id, ChangedBy: by.id})
	d.endTenure(t)
	if d.owner.repAt(t) && !to.repAt(t) {
		d.takenFrom = d.owner
	}
	d.owner, d.from = to, t
}

func (d *deal) close(t time.Time, won bool) {
	data := event.Data{Outcome: event.OutcomeLost}
	if won {
		data.Outcome = event.OutcomeWon
	}
	switch r := d.g.rng.Float64(); {
	case won && r < 0.3: // a closing discount
		d.amount = round100(d.amount * (0.9 + 0.1*d.g.rng.Float64()))
		data.Amount, data.Currency = event.Ptr(d.amount), "USD"
	case won && r < 0.9, !won && r < 0.5:
		data.Amount, data.Currency = event.Ptr(d.amount), "USD"
	}
	// Otherwise the close carries no amount and the latest known amount applies.
	d.put(t, event.DealClosed, data)
	d.open = false
	d.endTenure(t)
}

func (d *deal) endTenure(t time.Time) {
	tn := tenure{owner: d.owner, from: d.from, to: t}
	if !d.owner.repAt(d.from) {
		tn.rep = d.takenFrom
	}
	d.tenures = append(d.tenures, tn)
	if d.g.spans {
		d.owner.spans = append(d.owner.spans, span{d.id, d.from, t})
	}
}

// finish hands a still-open deal of a departed owner to a teammate and logs the owners' work on the deal: the rep's
// calls, emails and meetings, or the manager's after a takeover (joint calls with the rep among them).
func (d *deal) finish() {
	g := d.g
	if d.open {
		d.handOffIfLeaving(g.end.Add(time.Hour))
		d.endTenure(g.end.Add(time.Nanosecond))
	}
	for _, tn := range d.tenures {
		to := tn.to
		if to.After(g.end) {
			to = g.end.Add(time.Nanosecond)
		}
		if !to.After(tn.from) {
			continue
		}
		kinds, subject, n := []string{"call", "email", "meeting"}, tn.owner, 1+g.rng.IntN(3)
		if tn.rep != nil {
			kinds, subject, n = []string{"joint_call", "call", "meeting"}, tn.rep, 1+g.rng.IntN(2)
			if !tn.rep.gone.IsZero() && tn.rep.gone.Before(to) {
				to = tn.rep.gone // no activity with a rep who has left
			}
		}
		for range n {
			t := g.work(tn.from.Add(time.Duration(g.rng.Float64() * float64(to.Sub(tn.from)))))
			if t.After(tn.from) && t.Before(to) {
				g.activity(t, kinds[g.rng.IntN(len(kinds))], tn.owner, []*user{subject}, dealRef{id: d.id})
			}
		}
	}
}

// amount draws a deal size around $18,000 (log-normal, σ = 0.3), scaled by size, in whole hundreds of dollars.
func (g *gen) amount(size float64) float64 {
	return max(1000, round100(18000*math.Exp(0.3*g.rng.NormFloat64())*size))
}

func round100(x float64) float64 { return math.Round(x/100) * 100 }

func (g *gen) dealName() string {
	return fmt.Sprintf("%s - %s", companies[g.rng.IntN(len(companies))], products[g.rng.IntN(len(products))])
}
