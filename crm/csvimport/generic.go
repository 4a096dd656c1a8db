package csvimport

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// CSVSource is the default CloudEvents source of the csv format. Give each CRM its own (Options.Source): events of
// different CRMs with the same deal ids would otherwise replace each other.
const CSVSource = "csv"

// Mapping names the columns of a generic CSV export: one file of deals, one row per deal, and optionally a file of
// users with their managers. Column names match the header ignoring case and surrounding spaces. Cell values are
// trimmed. User and deal ids are taken verbatim from the cells.
//
// The zero Mapping reads a file with the header deal_id,owner_id,created_at,closed_at,outcome,amount.
type Mapping struct {
	// DealID is the column of the deal's id. Rows with the same id are an error. Default: "deal_id".
	DealID string
	// Owner is the column of the deal owner's user id (the owner for the deal's whole life: an export has no
	// owner history). Default: "owner_id".
	Owner string
	// Created is the column of when the deal was created: RFC 3339, "YYYY-MM-DD hh:mm:ss" (UTC) or a date
	// YYYY-MM-DD (then 09:00 UTC). Default: "created_at".
	Created string
	// Closed is the column of when a won or lost deal was closed, in the same formats (a date means 17:00 UTC); empty
	// for open deals. Default: "closed_at".
	Closed string
	// Outcome is the column that says won or lost (see Won and Lost); any other value, or none, means the deal is
	// open. A CRM's stage column works: "Closed Won", "Closed Lost" and "Negotiation" are won, lost and open.
	// Default: "outcome".
	Outcome string
	// Amount is the column of the deal amount, a non-negative number such as 1200 or 1200.50; empty when unknown.
	// It is the amount of deal.created and of deal.closed. Default: "amount".
	Amount string
	// Name is the column of the deal's name. Default: "" (deals have no name).
	Name string
	// OwnerManager is the column of the owner's manager's user id, for exports that carry it on each deal;
	// see also Users. Default: "" (none).
	OwnerManager string
	// Won and Lost are the Outcome values (case-insensitive) of won and lost deals.
	// Default: "won", "closed won" and "lost", "closed lost".
	Won, Lost []string

	// Users is the path of an optional CSV of users: their id, manager's id (empty: no manager) and, if the column
	// exists, name. Every user in it becomes a user, with or without deals. Default: "" (users are only the
	// owners and managers named in the deals file, without names).
	Users string
	// UsersID, UsersManager and UsersName are the columns of the Users file.
	// Defaults: "user_id", "manager_id", "name" (name is optional).
	UsersID, UsersManager, UsersName string
}

// WithDefaults returns m with every empty field set to its documented default.
func (m Mapping) WithDefaults() Mapping {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&m.DealID, "deal_id")
	def(&m.Owner, "owner_id")
	def(&m.Created, "created_at")
	def(&m.Closed, "closed_at")
	def(&m.Outcome, "outcome")
	def(&m.Amount, "amount")
	def(&m.UsersID, "user_id")
	def(&m.UsersManager, "manager_id")
	def(&m.UsersName, "name")
	if len(m.Won) == 0 {
		m.Won = []string{"won", "closed won"}
	}
	if len(m.Lost) == 0 {
		m.Lost = []string{"lost", "closed lost"}
	}
	return m
}

// genericUser is a user of a generic import.
type genericUser struct {
	id, name, manager string
	where             string // file:line that set manager, for conflict messages
	listed            bool   // has a row in Mapping.Users
	warned            bool   // a warning said it is not listed
}

// CSV reads a generic deals export at path, with column names from m, and returns its events, mapped as the package
// documentation says. The default Source is CSVSource.
func CSV(path string, m Mapping, opt Options) (*Result, error) {
	m = m.WithDefaults()
	if opt.Source == "" {
		opt.Source = CSVSource
	}
	sum := &Summary{Format: FormatCSV, Source: opt.Source}
	p := &problems{opt: opt, sum: sum}
	b := &builder{source: opt.Source, sum: sum}
	g := &generic{m: m, opt: opt, p: p, b: b, users: map[string]*genericUser{}}
	if m.Users != "" {
		if err := g.readUsers(m.Users); err != nil {
			return nil, err
		}
	}
	if err := g.readDeals(path); err != nil {
		return nil, err
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	// Like the maven-crm format: reporting lines hold from 00:00 UTC the day before the first deal.
	effective := fallbackEffective
	if !g.first.IsZero() {
		effective = dayBefore(g.first)
	}
	for _, id := range g.order {
		u := g.users[id]
		b.add(event.UserUpserted, id, effective, event.Data{UserID: id, Name: u.name})
	}
	for _, id := range g.order {
		if u := g.users[id]; u.manager != "" {
			b.add(event.UserManagerChanged, id, effective, event.Data{UserID: id, ManagerID: event.Ptr(u.manager)})
		}
	}
	return b.result()
}

type generic struct {
	m     Mapping
	opt   Options
	p     *problems
	b     *builder
	users map[string]*genericUser
	order []string  // user ids in order of first mention
	first time.Time // earliest deal.created
}

func (g *generic) user(id string) *genericUser {
	u := g.users[id]
	if u == nil {
		u = &genericUser{id: id}
		g.users[id] = u
		g.order = append(g.order, id)
	}
	return u
}

// setManager records that id reports to manager, as stated at r's cell col; a different earlier statement is an
// error.
func (g *generic) setManager(r row, col, id, manager string) *RowError {
	if manager == id {
		e := r.fail(col, "user %q cannot be their own manager", id)
		return &e
	}
	u := g.users[id]
	if u != nil && u.manager != "" && u.manager != manager {
		e := r.fail(col, "user %q has manager %q here but %q at %s", id, manager, u.manager, u.where)
		return &e
	}
	u = g.user(id)
	if u.manager == "" {
		u.manager, u.where = manager, fmt.Sprintf("%s:%d", r.t.path, r.lines[0])
	}
	g.user(manager)
	return nil
}

func (g *generic) readUsers(path string) error {
	t, err := openTable(path, g.m.UsersID, g.m.UsersManager)
	if err != nil {
		return err
	}
	defer t.Close()
	seen := map[string]int{}
	for {
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var re RowError
		if errors.As(err, &re) {
			g.p.reject(re)
			continue
		}
		if err != nil {
			return err
		}
		id, manager := r.get(g.m.UsersID), r.get(g.m.UsersManager)
		if id == "" {
			g.p.reject(r.fail(g.m.UsersID, "empty user id"))
			continue
		}
		if first, dup := seen[id]; dup {
			g.p.reject(r.fail(g.m.UsersID, "user %q is listed again (first on line %d)", id, first))
			continue
		}
		seen[id] = r.lines[0]
		if manager != "" {
			if e := g.setManager(r, g.m.UsersManager, id, manager); e != nil {
				g.p.reject(*e)
				continue
			}
		}
		u := g.user(id)
		u.name, u.listed = r.get(g.m.UsersName), true
	}
}

func (g *generic) readDeals(path string) error {
	required := []string{g.m.DealID, g.m.Owner, g.m.Created, g.m.Closed, g.m.Outcome, g.m.Amount}
	for _, optional := range []string{g.m.Name, g.m.OwnerManager} {
		if optional != "" {
			required = append(required, optional)
		}
	}
	t, err := openTable(path, required...)
	if err != nil {
		return err
	}
	defer t.Close()
	seen := map[string]int{}
	for {
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		g.b.sum.Rows++
		var re RowError
		if errors.As(err, &re) {
			g.p.reject(re)
			continue
		}
		if err != nil {
			return err
		}
		g.deal(r, seen)
	}
}

func (g *generic) outcome(v string) string {
	for _, w := range g.m.Won {
		if strings.EqualFold(v, strings.TrimSpace(w)) {
			return event.OutcomeWon
		}
	}
	for _, l := range g.m.Lost {
		if strings.EqualFold(v, strings.TrimSpace(l)) {
			return event.OutcomeLost
		}
	}
	return ""
}

// deal checks one row and adds its events; an invalid row adds nothing.
func (g *generic) deal(r row, seen map[string]int) {
	m := g.m
	var errs []RowError
	bad := func(col, format string, args ...any) { errs = append(errs, r.fail(col, format, args...)) }

	id := r.get(m.DealID)
	if id == "" {
		bad(m.DealID, "empty deal id")
	} else if first, dup := seen[id]; dup {
		bad(m.DealID, "deal %q is listed again (first on line %d)", id, first)
	} else {
		seen[id] = r.lines[0]
	}
	owner := r.get(m.Owner)
	if owner == "" {
		bad(m.Owner, "empty owner")
	}
	created, err := parseTime(r.get(m.Created), createdHour)
	if r.get(m.Created) == "" {
		bad(m.Created, "empty: every deal needs its creation time")
	} else if err != nil {
		bad(m.Created, "%v", err)
	}
	outcome := g.outcome(r.get(m.Outcome))
	var closed time.Time
	if s := r.get(m.Closed); s != "" {
		if outcome == "" {
			bad(m.Outcome, "%q is neither won (%s) nor lost (%s), but %s is set", r.get(m.Outcome),
				strings.Join(m.Won, ", "), strings.Join(m.Lost, ", "), m.Closed)
		} else if t, err := parseTime(s, closedHour); err != nil {
			bad(m.Closed, "%v", err)
		} else if !created.IsZero() && t.Before(created) {
			bad(m.Closed, "closed %s before it was created (%s)", s, r.get(m.Created))
		} else {
			closed = t
		}
	} else if outcome != "" {
		bad(m.Closed, "empty, but the deal is %s: a closed deal needs its close time", outcome)
	}
	var amount *float64
	if s := r.get(m.Amount); s != "" {
		if v, err := parseAmount(s); err != nil {
			bad(m.Amount, "%v", err)
		} else {
			amount = &v
		}
	}
	if m.OwnerManager != "" && len(errs) == 0 {
		if manager := r.get(m.OwnerManager); manager != "" {
			if e := g.setManager(r, m.OwnerManager, owner, manager); e != nil {
				errs = append(errs, *e)
			}
		}
	}
	if len(errs) > 0 {
		g.p.reject(errs...)
		return
	}

	if u := g.user(owner); m.Users != "" && !u.listed && !u.warned && u.manager == "" {
		u.warned = true
		g.p.warn(r.fail(m.Owner, "owner %q is not in %s and has no manager: their deals count for no manager", owner, m.Users))
	}
	var name string
	if m.Name != "" {
		name = r.get(m.Name)
	}
	g.b.add(event.DealCreated, id, created, event.Data{DealID: id, OwnerID: owner, Name: name, Amount: amount,
		Currency: currency(g.opt, amount)})
	if g.first.IsZero() || created.Before(g.first) {
		g.first = created
	}
	if outcome != "" {
		g.b.add(event.DealClosed, id, closed, event.Data{DealID: id, Outcome: outcome, Amount: amount,
			Currency: currency(g.opt, amount)})
	}
}
