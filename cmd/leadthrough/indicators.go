package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
)

func runIndicators(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("indicators", "Computes every indicator of docs/indicators.md in ClickHouse for the window (as-of − W, as-of], "+
		"one row per manager.", stderr)
	chCfg := clickhouseFlags(c, "leadthrough")
	w := windowFlags(c)
	var asOf time.Time
	c.Func("as-of", "", "end of the window, RFC 3339 (e.g. 2026-03-31T00:00:00Z); default now", func(s string) error {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("want RFC 3339 like 2026-03-31T00:00:00Z")
		}
		asOf = t
		return nil
	})
	format := c.String("format", "table", "output format: table or json")
	if err := c.parse(args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: --format must be table or json, got %q", errUsage, *format)
	}
	if asOf.IsZero() {
		asOf = time.Now()
	}
	s, err := openMigrated(ctx, *chCfg)
	if err != nil {
		return err
	}
	defer s.Close()
	p := indicator.Params{AsOf: asOf, Window: w.window, CoachingKinds: w.kinds}.WithDefaults()
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
