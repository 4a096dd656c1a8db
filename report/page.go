package report

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/store"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// MaxDealsPerManager is how many taken-over deals the page lists per manager, the latest closed first; it says how
// many more there are.
const MaxDealsPerManager = 50

// contentSecurityPolicy lets the browser load nothing at all besides the page: no script, no image, no font, no
// style sheet from anywhere. Inline styles and inline SVG are all the page uses.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP renders the page from memory: the current window's indicators as Current returns them, and the last
// refresh of the other parts. Rendering goes to a buffer first, so a failure is a 500 with the reason, never a
// half-written or blank page.
func (r *Report) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var buf bytes.Buffer
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return r.page.Execute(&buf, r.view())
	}()
	if err != nil {
		r.cfg.Logger.Error("report page: rendering failed", "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "leadthrough: the report page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(buf.Bytes())
}

// page is what the template renders: text ready to print, so that the template only lays it out.
type page struct {
	Window          string // "30 days"
	WindowSpan      string // "(…, …] UTC"; empty before the first refresh
	AsOf            string // when Current's window ends
	CurrentInterval string // "1 minute"; empty when not known
	Interval        string // the report's own refresh interval
	Stale           string // Current's health error
	Complete        bool   // every part has values

	Columns  []column
	Managers []managerRow

	Trends     section
	Months     []string // labels of the trends' months, oldest first
	MonthsSpan string
	TrendRows  []trendRow

	Watch       section
	WatchMonths int
	Watched     []watchedManager

	Deals      section
	DealsSpan  string
	TakenOver  []managerDeals
	AnyDeal    bool
	MaxDeals   int
	ManagersIn int // managers in the deals' window
}

// section is the state of one part of the page refreshed by Run.
type section struct {
	What  string // names the part in messages: "the monthly trends"
	Ready bool   // computed at least once
	At    string // when the values shown were computed
	Err   string // the last refresh's error, if it failed
	ErrAt string
}

type managerRow struct {
	ID, Name string
	Cells    []cell
}

type cell struct {
	Text string
	Null bool
}

type trendRow struct {
	ID, Name string
	Cells    []trendCell
}

type trendCell struct {
	SVG    template.HTML
	Latest string // the value of the month under way
	Null   bool
}

type watchedManager struct {
	ID, Name   string
	PromotedAt string
	Since      string // "2 months ago", in whole 30-day periods
	Record     string // their record as a rep
	Periods    []watchPeriod
}

type watchPeriod struct {
	Period                                 int64
	Span                                   string
	UnderWay                               bool
	ClosedDeals, WonDeals, Takeovers, Reps int64
	Cells                                  []watchCell // takeover rate, manager-closed share, coaching coverage
}

type watchCell struct {
	Value, Median string
	Null          bool
	Worse         bool   // on the super-salesperson's side of the median
	Note          string // says which side, in words: the colour is not the only sign
}

type managerDeals struct {
	ID, Name string
	Deals    []dealRow
	More     int // taken-over deals not listed
}

type dealRow struct {
	ID, Closed, Outcome, Amount, Rep, RepID, TakenOverAt string
	Won                                                  bool
}

func sectionOf[T any](p part[T], what string) section {
	s := section{What: what, Ready: !p.at.IsZero()}
	if s.Ready {
		s.At = stampSeconds(p.at)
	}
	if p.err != nil {
		s.Err, s.ErrAt = p.err.Error(), stampSeconds(p.errAt)
	}
	return s
}

// view gathers the page's data: Current's rows and a consistent copy of the refreshed parts.
func (r *Report) view() page {
	rows, asOf := r.cfg.Current()
	r.mu.RLock()
	tr, wa, de := r.trends, r.watch, r.deals
	r.mu.RUnlock()

	v := page{Window: length(r.cfg.Window), Interval: length(r.cfg.Interval), Columns: columns,
		WatchMonths: r.cfg.WatchMonths, MaxDeals: MaxDealsPerManager,
		Trends: sectionOf(tr, "the monthly trends"), Watch: sectionOf(wa, "the new-manager watch"),
		Deals: sectionOf(de, "the taken-over deals")}
	if r.cfg.CurrentInterval > 0 {
		v.CurrentInterval = length(r.cfg.CurrentInterval)
	}
	if !asOf.IsZero() {
		v.AsOf, v.WindowSpan = stampSeconds(asOf), span(asOf.Add(-r.cfg.Window), asOf)
	}
	if r.cfg.Health != nil {
		if err := r.cfg.Health(); err != nil {
			v.Stale = err.Error()
		}
	}
	v.Complete = !asOf.IsZero() && v.Trends.Ready && v.Watch.Ready && v.Deals.Ready

	for _, row := range rows {
		m := managerRow{ID: row.ManagerID, Name: row.ManagerName}
		for _, c := range columns {
			val := c.value(row)
			m.Cells = append(m.Cells, cell{Text: format(c.kind, val), Null: val == nil})
		}
		v.Managers = append(v.Managers, m)
	}
	if v.Trends.Ready {
		v.Months, v.MonthsSpan, v.TrendRows = trendRows(tr.value, rows)
	}
	if v.Watch.Ready {
		v.Watched = watched(wa.value)
	}
	if v.Deals.Ready {
		v.DealsSpan = span(de.value.params.Start(), de.value.params.AsOf)
		v.TakenOver, v.AnyDeal = takenOver(de.value, rows)
		v.ManagersIn = len(v.TakenOver)
	}
	return v
}

// trendRows lays out one sparkline per manager and indicator over the trends' months. Managers are those of any
// month or of the current window, by id; a manager without a row in a month has no value there.
func trendRows(t trends, current []indicator.Row) (months []string, monthsSpan string, out []trendRow) {
	for _, m := range t.months {
		months = append(months, monthLabel(m))
	}
	if len(t.months) > 0 {
		monthsSpan = monthLabel(t.months[0]) + " – " + monthLabel(t.months[len(t.months)-1])
	}
	index := map[time.Time]int{}
	for i, m := range t.months {
		index[m] = i
	}
	names := map[string]string{}
	series := map[string][]*indicator.Row{}
	for _, pr := range t.rows {
		i, ok := index[indicator.MonthStart(pr.PeriodStart)]
		if !ok {
			continue
		}
		if series[pr.ManagerID] == nil {
			series[pr.ManagerID] = make([]*indicator.Row, len(t.months))
		}
		row := pr.Row
		series[pr.ManagerID][i] = &row
		names[pr.ManagerID] = pr.ManagerName // the latest month's name wins: rows come oldest first
	}
	for _, row := range current {
		names[row.ManagerID] = row.ManagerName
		if series[row.ManagerID] == nil {
			series[row.ManagerID] = make([]*indicator.Row, len(t.months))
		}
	}
	ids := make([]string, 0, len(series))
	for id := range series {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	values := make([][][]*float64, len(columns)) // [column][manager][month]
	scales := make([]scale, len(columns))
	for c, col := range columns {
		var all []*float64
		for _, id := range ids {
			vs := make([]*float64, len(t.months))
			for i, row := range series[id] {
				if row != nil {
					vs[i] = col.value(*row)
				}
			}
			values[c] = append(values[c], vs)
			all = append(all, vs...)
		}
		scales[c] = scaleFor(col.kind, all)
	}
	for m, id := range ids {
		tr := trendRow{ID: id, Name: cmp.Or(names[id], id)}
		for c, col := range columns {
			vs := values[c][m]
			var latest *float64
			if len(vs) > 0 {
				latest = vs[len(vs)-1]
			}
			tr.Cells = append(tr.Cells, trendCell{SVG: sparkline(col.Label, t.months, vs, col.kind, scales[c]),
				Latest: format(col.kind, latest), Null: latest == nil})
		}
		out = append(out, tr)
	}
	return months, monthsSpan, out
}

// watched lays out the new-manager watch: per promoted manager, their record as a rep and one line per tenure
// period.
func watched(w watch) []watchedManager {
	var out []watchedManager
	for _, row := range w.rows {
		if len(out) == 0 || out[len(out)-1].ID != row.ManagerID {
			m := watchedManager{ID: row.ManagerID, Name: cmp.Or(row.ManagerName, row.ManagerID),
				PromotedAt: stamp(row.PromotedAt), Since: monthsAgo(row.MonthsSincePromotion)}
			if i := slices.IndexFunc(w.promotions, func(p indicator.Promotion) bool {
				return p.ManagerID == row.ManagerID
			}); i >= 0 {
				m.Record = record(w.promotions[i])
			}
			out = append(out, m)
		}
		m := &out[len(out)-1]
		m.Periods = append(m.Periods, watchPeriod{Period: row.Period, Span: span(row.PeriodStart, row.PeriodEnd),
			UnderWay:    row.PeriodEnd.Sub(row.PeriodStart) < indicator.TenurePeriod, // cut at as_of
			ClosedDeals: row.ClosedDeals, WonDeals: row.WonDeals, Takeovers: row.Takeovers, Reps: row.TeamReps,
			Cells: []watchCell{
				compare(row.TakeoverRate, row.MedianTakeoverRate, true),
				compare(row.ManagerClosedShare, row.MedianManagerClosedShare, true),
				compare(row.CoachingCoverage, row.MedianCoachingCoverage, false),
			}})
	}
	return out
}

// compare writes a watch value next to its median. higherIsWorse says which side is the super-salesperson's: more
// takeovers and more deals closed by the manager, or less coaching.
func compare(v, median *float64, higherIsWorse bool) watchCell {
	c := watchCell{Value: format(ratio, v), Median: format(ratio, median), Null: v == nil}
	if v == nil || median == nil || *v == *median {
		return c
	}
	above := *v > *median
	c.Worse = above == higherIsWorse
	if above {
		c.Note = "above the median"
	} else {
		c.Note = "below the median"
	}
	return c
}

// monthsAgo writes months_since_promotion.
func monthsAgo(n int64) string {
	switch n {
	case 0:
		return "less than a month ago"
	case 1:
		return "1 month ago"
	}
	return fmt.Sprintf("%d months ago", n)
}

// record writes a promoted manager's record as a rep.
func record(p indicator.Promotion) string {
	if p.RepWonDeals == 0 {
		return "no self-closed won deal as a rep in the 180 days before promotion"
	}
	deals := "deals"
	if p.RepWonDeals == 1 {
		deals = "deal"
	}
	s := fmt.Sprintf("%d self-closed won %s as a rep, %s won, in the 180 days before promotion", p.RepWonDeals, deals,
		amount(p.RepWonAmount))
	if p.RepRank != nil {
		s += fmt.Sprintf(": rank %d of %d reps", *p.RepRank, p.RepsRanked)
	}
	return s
}

// takenOver lists, per manager, the deals of the window they took over, the latest closed first. Managers are those
// of the current window and any other with a taken-over deal, by id.
func takenOver(d deals, current []indicator.Row) ([]managerDeals, bool) {
	byManager := map[string][]store.Attribution{}
	for _, a := range d.deals {
		if a.TakenOver && a.ManagerID != "" {
			byManager[a.ManagerID] = append(byManager[a.ManagerID], a)
		}
	}
	names := map[string]string{}
	for _, row := range current {
		names[row.ManagerID] = row.ManagerName
	}
	ids := make([]string, 0, len(names)+len(byManager))
	for id := range names {
		ids = append(ids, id)
	}
	for id := range byManager {
		if _, ok := names[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	name := func(id string) string { return cmp.Or(d.names[id], names[id], id) }

	var out []managerDeals
	for _, id := range ids {
		m := managerDeals{ID: id, Name: cmp.Or(names[id], d.names[id], id)}
		ds := byManager[id]
		slices.SortStableFunc(ds, func(a, b store.Attribution) int {
			return cmp.Or(b.CloseTime.Compare(a.CloseTime), cmp.Compare(a.DealID, b.DealID))
		})
		if len(ds) > MaxDealsPerManager {
			m.More, ds = len(ds)-MaxDealsPerManager, ds[:MaxDealsPerManager]
		}
		for _, a := range ds {
			outcome := "lost"
			if a.Won {
				outcome = "won"
			}
			row := dealRow{ID: a.DealID, Closed: stamp(a.CloseTime), Outcome: outcome, Won: a.Won,
				Amount: amount(a.Amount), Rep: null, TakenOverAt: stamp(a.TakenOverAt)}
			if a.RepID != "" {
				row.Rep = name(a.RepID)
				if row.Rep != a.RepID {
					row.RepID = a.RepID // the id next to the name; alone when the rep has no name
				}
			}
			m.Deals = append(m.Deals, row)
		}
		out = append(out, m)
	}
	return out, len(byManager) > 0
}
