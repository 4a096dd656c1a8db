package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
)

func runIndicators(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("indicators", "Computes every indicator of docs/indicators.md in ClickHouse for the window (as-of − W, as-of], "+
		"one row per manager; with --period month, for every calendar month from --from to --to, one row per manager "+
		"and month; with --new-managers, the new-manager watch: each manager promoted from rep within --watch-months, "+
		"their record as a rep and every 30-day tenure period since, next to the medians of all managers.", stderr)
	chCfg := clickhouseFlags(c, "leadthrough")
	w := windowFlags(c)
	var asOf, from, to time.Time
	timeFlag := func(name, help string, dst *time.Time) {
		c.Func(name, "", help, func(s string) error {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("want RFC 3339 like 2026-03-31T00:00:00Z")
			}
			*dst = t
			return nil
		})
	}
	timeFlag("as-of", "end of the window, RFC 3339 (e.g. 2026-03-31T00:00:00Z); default now", &asOf)
	period := c.String("period", "window", "window: one rolling window (--as-of, --window); month: calendar months "+
		"(--from, --to), each the window (start of M, start of M+1] compared with the month before")
	timeFlag("from", "with --period month: the first month reported is the one holding this time (RFC 3339); "+
		"default: 12 months before --to", &from)
	timeFlag("to", "with --period month: report the months that start before this time (RFC 3339); default now, "+
		"so the current month is included", &to)
	newManagers := c.Bool("new-managers", false, "instead of one row per manager, the new-manager watch as of --as-of: "+
		"every manager promoted from rep within --watch-months, with promoted_at, months since and their record as a "+
		"rep, then per 30-day tenure period the takeover rate, manager-closed share and coaching coverage next to the "+
		"median of all managers over --window")
	watchMonths := c.Int("watch-months", indicator.DefaultWatchMonths, "with --new-managers: how recent a promotion "+
		"is watched, in calendar months before --as-of")
	format := c.String("format", "table", "output format: table or json")
	if err := c.parse(args); err != nil {
		return err
	}
	watchMonthsSet := false
	c.fs.Visit(func(f *flag.Flag) { watchMonthsSet = watchMonthsSet || f.Name == "watch-months" })
	switch {
	case *newManagers && *period != "window":
		return fmt.Errorf("%w: --new-managers is a watch as of --as-of; it does not take --period %s", errUsage, *period)
	case watchMonthsSet && !*newManagers:
		return fmt.Errorf("%w: --watch-months needs --new-managers", errUsage)
	case *watchMonths < 1:
		return fmt.Errorf("%w: --watch-months must be at least 1, got %d", errUsage, *watchMonths)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: --format must be table or json, got %q", errUsage, *format)
	}
	switch *period {
	case "window":
		if !from.IsZero() || !to.IsZero() {
			return fmt.Errorf("%w: --from and --to need --period month", errUsage)
		}
	case "month":
		if !asOf.IsZero() {
			return fmt.Errorf("%w: --as-of is for --period window; months use --from and --to", errUsage)
		}
		if to.IsZero() {
			to = time.Now()
		}
		if from.IsZero() {
			from = indicator.MonthStart(to).AddDate(0, -11, 0)
		}
		if !from.Before(to) {
			return fmt.Errorf("%w: --from must be before --to", errUsage)
		}
	default:
		return fmt.Errorf("%w: --period must be window or month, got %q", errUsage, *period)
	}
	if asOf.IsZero() {
		asOf = time.Now()
	}
	s, err := openMigrated(ctx, *chCfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if *period == "month" {
		rows, err := s.MonthlyIndicators(ctx, from, to, w.kinds)
		if err != nil {
			return err
		}
		return printMonths(stdout, *format, rows)
	}
	p := indicator.Params{AsOf: asOf, Window: w.window, CoachingKinds: w.kinds}.WithDefaults()
	if *newManagers {
		return newManagerWatch(ctx, s, p, *watchMonths, *format, stdout)
	}
	rows, err := s.Indicators(ctx, p)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []indicator.Row{}
		}
		return enc.Encode(rows)
	}
	fmt.Fprintf(stdout, "Indicators for (%s, %s]\n\n", p.AsOf.Add(-p.Window).Format(time.RFC3339), p.AsOf.Format(time.RFC3339))
	printTable(stdout, rows)
	return nil
}

// printMonths writes monthly rows: JSON objects with period_start and period_end (RFC 3339) and every indicator, or
// one table per month.
func printMonths(out io.Writer, format string, rows []indicator.PeriodRow) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []indicator.PeriodRow{}
		}
		return enc.Encode(rows)
	}
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].PeriodStart.Equal(rows[i].PeriodStart) {
			j++
		}
		month := make([]indicator.Row, 0, j-i)
		for _, r := range rows[i:j] {
			month = append(month, r.Row)
		}
		fmt.Fprintf(out, "%s: (%s, %s]\n\n", rows[i].PeriodStart.Format("January 2006"),
			rows[i].PeriodStart.Format(time.RFC3339), rows[i].PeriodEnd.Format(time.RFC3339))
		printTable(out, month)
		fmt.Fprintln(out)
		i = j
	}
	if len(rows) == 0 {
		fmt.Fprintln(out, "(no managers in any month of the range: have events been ingested?)")
	}
	return nil
}

// printTable renders rows for people: ratios as percentages, null as "-".
func printTable(out io.Writer, rows []indicator.Row) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "manager_id\tmanager_name\tteam_reps\twon_deals\tclosed_deals\tmanager_closed_share\t"+
		"manager_closed_revenue_share\ttakeover_rate\ttakeovers\tcoaching_coverage\treps_coached\trep_growth\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t\n", r.ManagerID, r.ManagerName, r.TeamReps,
			r.WonDeals, r.ClosedDeals, pct(r.ManagerClosedShare), pct(r.ManagerClosedRevenueShare), pct(r.TakeoverRate),
			r.Takeovers, pct(r.CoachingCoverage), r.RepsCoached, signedPct(r.RepGrowth))
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(out, "(no managers in this window: no user had a direct report; have events been ingested?)")
	}
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *p*100)
}

func signedPct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", *p*100)
}
