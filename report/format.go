package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
)

// kind says how an indicator is written and scaled.
type kind int

const (
	count  kind = iota // a whole number: "12"
	ratio              // 0–1, written as a percentage: "73.9%"
	growth             // a relative change, signed: "+162.6%"
)

// null is how the page writes an indicator without a value (a ratio without a denominator).
const null = "–"

// column is one indicator of the table and of the trends, by its DESIGN.md name.
type column struct {
	Name  string // the indicator's name: won_deals, takeover_rate, …
	Label string // the column header
	Help  string // what it measures, shown as the header's title
	kind  kind
	value func(indicator.Row) *float64
}

func countOf(f func(indicator.Row) int64) func(indicator.Row) *float64 {
	return func(r indicator.Row) *float64 { v := float64(f(r)); return &v }
}

// columns are the indicators in the order of the table: the team, its deals, the manager's part in them, coaching
// and growth.
var columns = []column{
	{"team_reps", "Team reps", "reps who reported to the manager during the window", count,
		countOf(func(r indicator.Row) int64 { return r.TeamReps })},
	{"won_deals", "Won deals", "deals of the manager's team won in the window", count,
		countOf(func(r indicator.Row) int64 { return r.WonDeals })},
	{"closed_deals", "Closed deals", "deals of the manager's team closed (won or lost) in the window", count,
		countOf(func(r indicator.Row) int64 { return r.ClosedDeals })},
	{"manager_closed_share", "Manager-closed share", "share of the team's won deals the manager closed personally",
		ratio, func(r indicator.Row) *float64 { return r.ManagerClosedShare }},
	{"manager_closed_revenue_share", "Manager-closed revenue share",
		"share of the team's won amount in deals the manager closed personally", ratio,
		func(r indicator.Row) *float64 { return r.ManagerClosedRevenueShare }},
	{"takeover_rate", "Takeover rate",
		"share of the team's closed deals the manager took over from a rep before closing", ratio,
		func(r indicator.Row) *float64 { return r.TakeoverRate }},
	{"takeovers", "Takeovers", "deals the manager took over from a rep in the window", count,
		countOf(func(r indicator.Row) int64 { return r.Takeovers })},
	{"coaching_coverage", "Coaching coverage", "share of the team's reps the manager coached in the window", ratio,
		func(r indicator.Row) *float64 { return r.CoachingCoverage }},
	{"reps_coached", "Reps coached", "reps of the team the manager coached in the window", count,
		countOf(func(r indicator.Row) int64 { return r.RepsCoached })},
	{"rep_growth", "Rep growth",
		"median change of the reps' self-closed won amount against the previous window", growth,
		func(r indicator.Row) *float64 { return r.RepGrowth }},
}

// format writes a value of kind k; nil is null.
func format(k kind, v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return null
	}
	switch k {
	case ratio:
		return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
	case growth:
		return fmt.Sprintf("%+.1f%%", *v*100)
	default:
		return strconv.FormatFloat(*v, 'f', 0, 64)
	}
}

// amount writes an amount with thousands separators and no decimals: amounts are in the install's one reporting
// currency, which the events do not name reliably.
func amount(v float64) string {
	s := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	if v <= -0.5 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// stamp writes an instant to the minute, in UTC like every time of leadthrough.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// stampSeconds writes an instant to the second, for refresh times.
func stampSeconds(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// span writes the window (from, to] of a period.
func span(from, to time.Time) string {
	return "(" + from.UTC().Format("2006-01-02 15:04") + ", " + to.UTC().Format("2006-01-02 15:04") + "] UTC"
}

// monthLabel writes a calendar month: "Nov 2026".
func monthLabel(m time.Time) string { return m.UTC().Format("Jan 2006") }

// length writes a duration in the largest unit that divides it: "30 days", "1 minute", "90 seconds".
func length(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d >= u.d && d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return fmt.Sprintf("%d %ss", n, u.name)
			}
			return "1 " + u.name
		}
	}
	return d.String()
}
