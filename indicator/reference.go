package indicator

import (
	"cmp"
	"slices"
	"sort"

	"github.com/leadthrough/leadthrough/event"
)

// Reference computes every indicator from raw events with straightforward Go, following DESIGN.md and the edge rules
// of docs/indicators.md literally. It is the oracle for the ClickHouse queries, not a production path: it holds all
// events in memory and does no indexing beyond maps.
func Reference(events []event.Event, p Params) []Row {
	p = p.WithDefaults()
	m := newModel(events, p)
	return m.rows()
}

// stamp orders events: by time in milliseconds, ties broken by (source, id) so the order never depends on arrival.
type stamp struct {
	ms     int64
	source string
	id     string
}

func (a stamp) compare(b stamp) int {
	return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.source, b.source), cmp.Compare(a.id, b.id))
}

type managerChange struct {
	at      stamp
	manager string // "" = no manager (explicit null or user.deactivated)
}

type interval struct {
	from, to int64 // [from, to) in ms; to = maxMS when open-ended
	user     string
	manager  string
}

const maxMS = int64(1<<63 - 1)

type ownerEvent struct {
	at    stamp
	typ   string
	owner string
}

type closeEvent struct {
	at      stamp
	closed  bool
	outcome string
	amount  *float64
}

type amountEvent struct {
	at     stamp
	amount float64
}

type deal struct {
	owners  []ownerEvent
	closes  []closeEvent
	amounts []amountEvent
	deleted bool
}

type takeover struct {
	ms      int64
	manager string
}

type attributed struct {
	closeMS          int64
	won              bool
	amount           float64
	closer, rep, mgr string
}

type model struct {
	p             Params
	start, end    int64 // window (start, end] in ms
	changes       map[string][]managerChange
	ownIntervals  map[string][]interval // by user
	reportsOf     map[string][]interval // by manager
	names         map[string]string
	nameAt        map[string]stamp
	deals         map[string]*deal
	coachedPairs  map[[2]string]bool // (manager, rep) with a coaching activity in the window
	coachingKinds map[string]bool
}

func newModel(events []event.Event, p Params) *model {
	m := &model{
		p: p, end: p.AsOf.UnixMilli(), changes: map[string][]managerChange{}, ownIntervals: map[string][]interval{},
		reportsOf: map[string][]interval{}, names: map[string]string{}, nameAt: map[string]stamp{},
		deals: map[string]*deal{}, coachedPairs: map[[2]string]bool{}, coachingKinds: map[string]bool{},
	}
	m.start = m.end - p.Window.Milliseconds()
	for _, k := range p.CoachingKinds {
		m.coachingKinds[k] = true
	}
	// (source, id) identifies an event: a later copy replaces an earlier one.
	unique := map[[2]string]event.Event{}
	for _, e := range events {
		unique[[2]string{e.Source, e.ID}] = e
	}
	for _, e := range unique {
		at := stamp{e.Time.UnixMilli(), e.Source, e.ID}
		if at.ms > m.end {
			continue
		}
		d := e.Data
		switch e.Type {
		case event.UserUpserted:
			if prev, ok := m.nameAt[d.UserID]; d.Name != "" && (!ok || prev.compare(at) < 0) {
				m.names[d.UserID], m.nameAt[d.UserID] = d.Name, at
			}
		case event.UserManagerChanged:
			mgr := ""
			if d.ManagerID != nil {
				mgr = *d.ManagerID
			}
			m.changes[d.UserID] = append(m.changes[d.UserID], managerChange{at, mgr})
		case event.UserDeactivated:
			m.changes[d.UserID] = append(m.changes[d.UserID], managerChange{at, ""})
		case event.DealCreated, event.DealOwnerChanged:
			dl := m.deal(d.DealID)
			dl.owners = append(dl.owners, ownerEvent{at, e.Type, d.OwnerID})
			if e.Type == event.DealCreated && d.Amount != nil { // the contract has no amount on owner changes
				dl.amounts = append(dl.amounts, amountEvent{at, *d.Amount})
			}
		case event.DealAmountChanged:
			dl := m.deal(d.DealID)
			dl.amounts = append(dl.amounts, amountEvent{at, *d.Amount})
		case event.DealClosed:
			dl := m.deal(d.DealID)
			dl.closes = append(dl.closes, closeEvent{at, true, d.Outcome, d.Amount})
			if d.Amount != nil {
				dl.amounts = append(dl.amounts, amountEvent{at, *d.Amount})
			}
		case event.DealReopened:
			dl := m.deal(d.DealID)
			dl.closes = append(dl.closes, closeEvent{at: at})
		case event.DealDeleted:
			m.deal(d.DealID).deleted = true
		case event.ActivityLogged:
			if at.ms > m.start && m.coachingKinds[d.Kind] {
				for _, s := range d.SubjectUserIDs {
					m.coachedPairs[[2]string{d.ActorID, s}] = true
				}
			}
		}
	}
	for user, cs := range m.changes {
		slices.SortFunc(cs, func(a, b managerChange) int { return a.at.compare(b.at) })
		for i, c := range cs {
			to := maxMS
			if i+1 < len(cs) {
				to = cs[i+1].at.ms
			}
			if c.manager == "" || c.at.ms >= to {
				continue
			}
			iv := interval{c.at.ms, to, user, c.manager}
			m.ownIntervals[user] = append(m.ownIntervals[user], iv)
			m.reportsOf[c.manager] = append(m.reportsOf[c.manager], iv)
		}
	}
	for _, dl := range m.deals {
		slices.SortFunc(dl.owners, func(a, b ownerEvent) int { return a.at.compare(b.at) })
		slices.SortFunc(dl.closes, func(a, b closeEvent) int { return a.at.compare(b.at) })
		slices.SortFunc(dl.amounts, func(a, b amountEvent) int { return a.at.compare(b.at) })
	}
	return m
}

func (m *model) deal(id string) *deal {
	d, ok := m.deals[id]
	if !ok {
		d = &deal{}
		m.deals[id] = d
	}
	return d
}

// managerOf is the manager of u at t: from u's latest manager change at or before t.
func (m *model) managerOf(u string, t int64) string {
	mgr := ""
	for _, c := range m.changes[u] {
		if c.at.ms > t {
			break
		}
		mgr = c.manager
	}
	return mgr
}

// hasReports tells whether u is a manager at t: someone's manager at t is u.
func (m *model) hasReports(u string, t int64) bool {
	for _, iv := range m.reportsOf[u] {
		if iv.from <= t && t < iv.to {
			return true
		}
	}
	return false
}

// attribute returns the closed-deal facts of d, or false when d is not closed (or deleted) as of the model's AsOf.
func (m *model) attribute(d *deal) (attributed, bool) {
	if d.deleted || len(d.closes) == 0 || !d.closes[len(d.closes)-1].closed {
		return attributed{}, false
	}
	last := d.closes[len(d.closes)-1]
	tc := last.at.ms
	a := attributed{closeMS: tc, won: last.outcome == event.OutcomeWon}
	if last.amount != nil {
		a.amount = *last.amount
	} else {
		for _, am := range d.amounts {
			if am.at.ms <= tc {
				a.amount = am.amount
			}
		}
	}
	for _, o := range d.owners {
		if o.at.ms > tc {
			break
		}
		a.closer = o.owner
		if !m.hasReports(o.owner, o.at.ms) {
			a.rep = o.owner
		}
	}
	switch {
	case a.rep != "":
		a.mgr = m.managerOf(a.rep, tc)
	case a.closer != "" && m.hasReports(a.closer, tc):
		a.mgr = a.closer
	case a.closer != "":
		a.mgr = m.managerOf(a.closer, tc)
	}
	return a, true
}

// takeovers lists d's owner changes, made while d was open, to the manager of the owner just before the change.
func (m *model) takeovers(d *deal) []takeover {
	var out []takeover
	for i, o := range d.owners {
		if i == 0 || o.typ != event.DealOwnerChanged {
			continue
		}
		prev := d.owners[i-1].owner
		open := true
		for _, c := range d.closes {
			if c.at.ms >= o.at.ms {
				break
			}
			open = !c.closed
		}
		if open && prev != o.owner && m.managerOf(prev, o.at.ms) == o.owner {
			out = append(out, takeover{o.at.ms, o.owner})
		}
	}
	return out
}

// team is the set of users who, at some instant of the window, reported to mgr while having no direct reports.
func (m *model) team(mgr string) []string {
	seen := map[string]bool{}
	for _, iv := range m.reportsOf[mgr] {
		a, b := max(iv.from, m.start+1), min(iv.to, m.end+1)
		if a >= b || seen[iv.user] {
			continue
		}
		// The first instant of [a, b) at which the user has no reports, if any, is a or the end of one of the
		// intervals during which they managed someone.
		candidates := []int64{a}
		for _, r := range m.reportsOf[iv.user] {
			if r.to >= a && r.to < b {
				candidates = append(candidates, r.to)
			}
		}
		for _, t := range candidates {
			if !m.hasReports(iv.user, t) {
				seen[iv.user] = true
				break
			}
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

func (m *model) rows() []Row {
	type acc struct {
		Row
		managerWon, takenClosed     int64
		wonAmount, managerWonAmount float64
	}
	accs := map[string]*acc{}
	for mgr, ivs := range m.reportsOf {
		for _, iv := range ivs {
			if max(iv.from, m.start+1) < min(iv.to, m.end+1) {
				accs[mgr] = &acc{Row: Row{ManagerID: mgr, ManagerName: cmp.Or(m.names[mgr], mgr)}}
				break
			}
		}
	}
	prevStart := m.start - m.p.PrevWindow.Milliseconds()
	selfWon := map[string][2]float64{} // rep → self-closed won amount in [previous window, window]
	for _, d := range m.deals {
		if d.deleted {
			continue
		}
		takeovers := m.takeovers(d)
		for _, t := range takeovers {
			if t.ms > m.start && t.ms <= m.end && accs[t.manager] != nil {
				accs[t.manager].Takeovers++
			}
		}
		a, closed := m.attribute(d)
		if !closed {
			continue
		}
		if a.won && a.rep != "" && a.rep == a.closer && a.closeMS > prevStart {
			w := selfWon[a.rep]
			w[btoi(a.closeMS > m.start)] += a.amount
			selfWon[a.rep] = w
		}
		r := accs[a.mgr]
		if a.closeMS <= m.start || r == nil {
			continue
		}
		r.ClosedDeals++
		if a.won {
			r.WonDeals++
			r.wonAmount += a.amount
			if a.closer == a.mgr {
				r.managerWon++
				r.managerWonAmount += a.amount
			}
		}
		if slices.ContainsFunc(takeovers, func(t takeover) bool { return t.manager == a.mgr && t.ms < a.closeMS }) {
			r.takenClosed++
		}
	}
	out := make([]Row, 0, len(accs))
	for mgr, r := range accs {
		r.ManagerClosedShare = ratio(float64(r.managerWon), float64(r.WonDeals))
		r.ManagerClosedRevenueShare = ratio(r.managerWonAmount, r.wonAmount)
		r.TakeoverRate = ratio(float64(r.takenClosed), float64(r.ClosedDeals))
		team := m.team(mgr)
		r.TeamReps = int64(len(team))
		var growth []float64
		for _, u := range team {
			if m.coachedPairs[[2]string{mgr, u}] {
				r.RepsCoached++
			}
			if w := selfWon[u]; w[0] > 0 {
				growth = append(growth, w[1]/w[0]-1)
			}
		}
		r.CoachingCoverage = ratio(float64(r.RepsCoached), float64(r.TeamReps))
		r.RepGrowth = median(growth)
		out = append(out, r.Row)
	}
	slices.SortFunc(out, func(a, b Row) int { return cmp.Compare(a.ManagerID, b.ManagerID) })
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ratio(num, den float64) *float64 {
	if den == 0 {
		return nil
	}
	v := num / den
	return &v
}

// median is the middle value, or the mean of the two middle values for an even count; nil when empty.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	n := len(xs)
	v := xs[n/2]
	if n%2 == 0 {
		v = (xs[n/2-1] + xs[n/2]) / 2
	}
	return &v
}
