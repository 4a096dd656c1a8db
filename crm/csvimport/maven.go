package csvimport

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// Files of the Maven Analytics "CRM Sales Opportunities" export. accounts.csv is not read: no event carries
// account attributes.
const (
	MavenTeamsFile    = "sales_teams.csv"
	MavenPipelineFile = "sales_pipeline.csv"
	MavenProductsFile = "products.csv"
)

// MavenSource is the default CloudEvents source of the maven-crm format.
const MavenSource = "maven-crm"

// SkipReasonNoEngageDate is the Summary.Skipped reason of Prospecting rows: they have no engage_date, so no time at
// which the deal existed; they are counted, not imported.
const SkipReasonNoEngageDate = "Prospecting without engage_date"

// Maven user id prefixes: agents and managers never collide, even if a manager shares an agent's name.
const (
	MavenAgentPrefix   = "agent:"
	MavenManagerPrefix = "manager:"
)

// Maven stages (deal_stage) as they appear in the export.
const (
	mavenProspecting = "prospecting"
	mavenEngaging    = "engaging"
	mavenWon         = "won"
	mavenLost        = "lost"
)

type mavenProduct struct {
	name  string
	price float64
}

type mavenAgent struct {
	name, manager, office string
	line                  int // in sales_teams.csv
}

// Maven reads the Maven Analytics "CRM Sales Opportunities" export in dir (sales_teams.csv, sales_pipeline.csv,
// products.csv) and returns its events, mapped as the package documentation says. The default Source is
// MavenSource.
func Maven(dir string, opt Options) (*Result, error) {
	if opt.Source == "" {
		opt.Source = MavenSource
	}
	sum := &Summary{Format: FormatMaven, Source: opt.Source}
	p := &problems{opt: opt, sum: sum}
	b := &builder{source: opt.Source, sum: sum}

	products, err := mavenProducts(filepath.Join(dir, MavenProductsFile), p)
	if err != nil {
		return nil, err
	}
	agents, managers, err := mavenTeams(filepath.Join(dir, MavenTeamsFile), p)
	if err != nil {
		return nil, err
	}
	m := &mavenPipeline{opt: opt, p: p, b: b, products: products, agents: agents, unknown: map[string]*unknownAgent{}}
	if err := m.read(filepath.Join(dir, MavenPipelineFile)); err != nil {
		return nil, err
	}
	if err := p.err(); err != nil {
		return nil, err
	}

	// Reporting lines take effect at 00:00 UTC the day before the first engage_date (2016-10-19 for the published
	// export), so that every deal is created inside them; the export has no history of them.
	effective := fallbackEffective
	if !m.first.IsZero() {
		effective = dayBefore(m.first)
	}
	for _, mg := range managers {
		b.add(event.UserUpserted, mavenManagerID(mg.name), effective, event.Data{
			UserID: mavenManagerID(mg.name), Name: mg.name, Title: "Sales manager" + officeSuffix(mg.offices)})
	}
	for _, a := range agents.order {
		b.add(event.UserUpserted, mavenAgentID(a.name), effective, event.Data{
			UserID: mavenAgentID(a.name), Name: a.name, Title: "Sales agent" + officeSuffix([]string{a.office})})
	}
	for _, id := range m.unknownOrder {
		u := m.unknown[id]
		b.add(event.UserUpserted, id, effective, event.Data{UserID: id, Name: u.name, Title: "Sales agent"})
		p.warn(RowError{File: u.file, Line: u.line, Column: "sales_agent", Err: fmt.Errorf(
			"agent %q has no row in %s: imported without a manager, so their %d deal(s) count for no manager",
			u.name, MavenTeamsFile, u.deals)})
	}
	for _, a := range agents.order {
		if a.manager == "" {
			continue
		}
		b.add(event.UserManagerChanged, mavenAgentID(a.name), effective, event.Data{
			UserID: mavenAgentID(a.name), ManagerID: event.Ptr(mavenManagerID(a.manager))})
	}
	return b.result()
}

func mavenAgentID(name string) string   { return MavenAgentPrefix + Slug(name) }
func mavenManagerID(name string) string { return MavenManagerPrefix + Slug(name) }

// officeSuffix renders regional offices for a title: ", Central office"; several (a manager over several offices)
// are joined with " & ".
func officeSuffix(offices []string) string {
	var named []string
	for _, o := range offices {
		if o != "" {
			named = append(named, o)
		}
	}
	if len(named) == 0 {
		return ""
	}
	return ", " + strings.Join(named, " & ") + " office"
}

// productKey matches product names ignoring case and spaces: the pipeline says "GTXPro" for products.csv's
// "GTX Pro".
func productKey(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(name), ""))
}

func mavenProducts(path string, p *problems) (map[string]mavenProduct, error) {
	t, err := openTable(path, "product", "sales_price")
	if err != nil {
		return nil, err
	}
	defer t.Close()
	products := map[string]mavenProduct{}
	lines := map[string]int{}
	for {
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return products, nil
		}
		var re RowError
		if errors.As(err, &re) {
			p.reject(re)
			continue
		}
		if err != nil {
			return nil, err
		}
		name, key := r.get("product"), productKey(r.get("product"))
		if key == "" {
			p.reject(r.fail("product", "empty product name"))
			continue
		}
		if first, dup := lines[key]; dup {
			p.reject(r.fail("product", "product %q is listed again (first on line %d)", name, first))
			continue
		}
		price, err := parseAmount(r.get("sales_price"))
		if err != nil {
			p.reject(r.fail("sales_price", "%v", err))
			continue
		}
		lines[key] = r.lines[0]
		products[key] = mavenProduct{name: name, price: price}
	}
}

type agentSet struct {
	order []*mavenAgent
	byID  map[string]*mavenAgent // by user id, so that "moses frase" in the pipeline finds "Moses Frase"
}

type mavenManager struct {
	name    string
	offices []string
}

func mavenTeams(path string, p *problems) (agentSet, []*mavenManager, error) {
	agents := agentSet{byID: map[string]*mavenAgent{}}
	var managers []*mavenManager
	byName := map[string]*mavenManager{}
	slugs := map[string]string{} // user id → name, to catch two names with one slug
	t, err := openTable(path, "sales_agent", "manager", "regional_office")
	if err != nil {
		return agents, nil, err
	}
	defer t.Close()
	claim := func(r row, col, id, name string) bool {
		if other, ok := slugs[id]; ok && other != name {
			p.reject(r.fail(col, "%q and %q would both get user id %q", other, name, id))
			return false
		}
		slugs[id] = name
		return true
	}
	for {
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return agents, managers, nil
		}
		var re RowError
		if errors.As(err, &re) {
			p.reject(re)
			continue
		}
		if err != nil {
			return agents, nil, err
		}
		a := &mavenAgent{name: r.get("sales_agent"), manager: r.get("manager"), office: r.get("regional_office"), line: r.lines[0]}
		if Slug(a.name) == "" {
			p.reject(r.fail("sales_agent", "empty agent name"))
			continue
		}
		if prev, dup := agents.byID[mavenAgentID(a.name)]; dup && prev.name == a.name {
			if prev.manager != a.manager {
				p.reject(r.fail("manager", "agent %q is listed again with manager %q (line %d says %q)",
					a.name, a.manager, prev.line, prev.manager))
			} else {
				p.warn(r.fail("sales_agent", "agent %q is listed again (first on line %d): row ignored", a.name, prev.line))
			}
			continue
		}
		if !claim(r, "sales_agent", mavenAgentID(a.name), a.name) {
			continue
		}
		if a.manager != "" && Slug(a.manager) == "" {
			p.reject(r.fail("manager", "manager name %q has no letters or digits", a.manager))
			continue
		}
		if a.manager != "" && !claim(r, "manager", mavenManagerID(a.manager), a.manager) {
			continue
		}
		if a.manager == "" {
			p.warn(r.fail("manager", "agent %q has no manager: their deals count for no manager", a.name))
		} else {
			m := byName[a.manager]
			if m == nil {
				m = &mavenManager{name: a.manager}
				byName[a.manager] = m
				managers = append(managers, m)
			}
			if a.office != "" && !slices.Contains(m.offices, a.office) {
				m.offices = append(m.offices, a.office)
			}
		}
		agents.byID[mavenAgentID(a.name)] = a
		agents.order = append(agents.order, a)
	}
}

type unknownAgent struct {
	name  string // as first spelled
	file  string
	line  int // first row naming the agent
	deals int
}

// mavenPipeline turns sales_pipeline.csv into deal events.
type mavenPipeline struct {
	opt          Options
	p            *problems
	b            *builder
	products     map[string]mavenProduct
	agents       agentSet
	unknown      map[string]*unknownAgent // by user id
	unknownOrder []string                 // user ids
	first        time.Time                // earliest deal.created
}

func (m *mavenPipeline) read(path string) error {
	t, err := openTable(path, "opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date",
		"close_date", "close_value")
	if err != nil {
		return err
	}
	defer t.Close()
	seen := map[string]int{} // opportunity_id → line
	for {
		r, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		m.b.sum.Rows++
		var re RowError
		if errors.As(err, &re) {
			m.p.reject(re)
			continue
		}
		if err != nil {
			return err
		}
		m.row(r, seen)
	}
}

// row checks one opportunity and adds its events; an invalid row adds nothing.
func (m *mavenPipeline) row(r row, seen map[string]int) {
	var errs []RowError
	bad := func(col, format string, args ...any) { errs = append(errs, r.fail(col, format, args...)) }

	id := r.get("opportunity_id")
	if id == "" {
		bad("opportunity_id", "empty opportunity_id")
	} else if first, dup := seen[id]; dup {
		bad("opportunity_id", "opportunity %q is listed again (first on line %d)", id, first)
	} else {
		seen[id] = r.lines[0]
	}
	agent := r.get("sales_agent")
	if Slug(agent) == "" {
		bad("sales_agent", "empty sales_agent")
	}
	stage := strings.ToLower(r.get("deal_stage"))
	switch stage {
	case mavenProspecting, mavenEngaging, mavenWon, mavenLost:
	default:
		bad("deal_stage", "unknown deal_stage %q (want Prospecting, Engaging, Won or Lost)", r.get("deal_stage"))
	}
	closed := stage == mavenWon || stage == mavenLost

	var engaged time.Time
	if s := r.get("engage_date"); s == "" {
		if stage == mavenProspecting && len(errs) == 0 {
			m.p.skip(SkipReasonNoEngageDate)
			return
		}
		if stage != mavenProspecting {
			bad("engage_date", "empty engage_date: required for deal_stage %s", r.get("deal_stage"))
		}
	} else if t, err := parseDate(s, createdHour); err != nil {
		bad("engage_date", "%v", err)
	} else {
		engaged = t
	}

	var closeAt time.Time
	var closeValue *float64
	if closed {
		if s := r.get("close_date"); s == "" {
			bad("close_date", "empty close_date: required for deal_stage %s", r.get("deal_stage"))
		} else if t, err := parseDate(s, closedHour); err != nil {
			bad("close_date", "%v", err)
		} else if !engaged.IsZero() && t.Before(engaged) {
			bad("close_date", "close_date %s is before engage_date %s", s, r.get("engage_date"))
		} else {
			closeAt = t
		}
		if s := r.get("close_value"); s != "" {
			if v, err := parseAmount(s); err != nil {
				bad("close_value", "%v", err)
			} else {
				closeValue = &v
			}
		}
	}
	if len(errs) > 0 {
		m.p.reject(errs...)
		return
	}

	// The row is valid: warnings from here on do not stop it.
	if closed && closeValue == nil {
		m.p.warn(r.fail("close_value", "empty close_value on a %s deal: its amount is the product's sales_price", r.get("deal_stage")))
	}
	if !closed && (r.get("close_date") != "" || r.get("close_value") != "") {
		m.p.warn(r.fail("close_date", "close_date/close_value on a %s deal: ignored", r.get("deal_stage")))
	}
	var amount *float64
	productName := r.get("product")
	if prod, ok := m.products[productKey(productName)]; ok {
		amount = event.Ptr(prod.price)
		if prod.name != productName {
			m.p.correct(fmt.Sprintf("product %q read as %q", productName, prod.name))
			productName = prod.name
		}
	} else {
		m.p.warn(r.fail("product", "product %q is not in %s: deal created without an amount", productName, MavenProductsFile))
	}
	owner := mavenAgentID(agent)
	if a, known := m.agents.byID[owner]; known && a.name != agent {
		m.p.correct(fmt.Sprintf("agent %q read as %q", agent, a.name))
	} else if !known {
		u := m.unknown[owner]
		if u == nil {
			u = &unknownAgent{name: agent, file: r.t.path, line: r.lines[0]}
			m.unknown[owner] = u
			m.unknownOrder = append(m.unknownOrder, owner)
		}
		u.deals++
	}

	name := productName
	if acct := r.get("account"); acct != "" {
		name = acct + " - " + productName
	}
	m.b.add(event.DealCreated, id, engaged, event.Data{DealID: id, OwnerID: owner, Name: name,
		Amount: amount, Currency: currency(m.opt, amount), Stage: stage})
	if m.first.IsZero() || engaged.Before(m.first) {
		m.first = engaged
	}
	if closed {
		outcome := event.OutcomeWon
		if stage == mavenLost {
			outcome = event.OutcomeLost
		}
		m.b.add(event.DealClosed, id, closeAt, event.Data{DealID: id, Outcome: outcome, Amount: closeValue,
			Currency: currency(m.opt, closeValue)})
	}
}

// currency is the currency to state next to amount: none without an amount.
func currency(opt Options, amount *float64) string {
	if amount == nil {
		return ""
	}
	return opt.Currency
}
