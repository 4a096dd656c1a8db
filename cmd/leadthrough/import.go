package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/crm/csvimport"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/publish"
	"github.com/leadthrough/leadthrough/store"
)

const importSummary = "Loads a CRM export (CSV) as canonical events: publishes them to Kafka for `leadthrough ingest`, or with " +
	"--direct writes them straight into ClickHouse. Deterministic: importing the same files again replaces the stored " +
	"events and never counts them twice. Formats: maven-crm (DIR holds the Maven Analytics CRM export: sales_teams.csv, " +
	"sales_pipeline.csv, products.csv), csv (FILE is one deals file whose columns the --csv-* flags name)."

// csvMappingFlags are the --csv-* flags of the csv format, defaulting to csvimport's documented defaults.
func csvMappingFlags(c *command) *csvimport.Mapping {
	def := csvimport.Mapping{}.WithDefaults()
	m := &csvimport.Mapping{}
	col := func(dst *string, name, dflt, help string) {
		c.fs.StringVar(dst, name, dflt, c.register(name, help))
	}
	col(&m.DealID, "csv-deal-id", def.DealID, "csv: column of the deal id")
	col(&m.Owner, "csv-owner", def.Owner, "csv: column of the deal owner's user id")
	col(&m.Created, "csv-created", def.Created,
		"csv: column of the creation time (RFC 3339, YYYY-MM-DD hh:mm:ss in UTC, or YYYY-MM-DD meaning 09:00 UTC)")
	col(&m.Closed, "csv-closed", def.Closed, "csv: column of the close time of won/lost deals (a date means 17:00 UTC); see --csv-outcome")
	col(&m.Outcome, "csv-outcome", def.Outcome,
		"csv: column that says won or lost (see --csv-won, --csv-lost); any other value means open, so a stage column works")
	col(&m.Amount, "csv-amount", def.Amount, "csv: column of the deal amount (non-negative; empty when unknown); see --currency")
	col(&m.Name, "csv-name", "", "csv: optional column of the deal name")
	col(&m.OwnerManager, "csv-owner-manager", "", "csv: optional column of the owner's manager's user id; see --csv-users")
	col(&m.Users, "csv-users", "",
		"csv: optional CSV file of users with their manager (columns --csv-users-id, --csv-users-manager, --csv-users-name)")
	col(&m.UsersID, "csv-users-id", def.UsersID, "csv: column of the user id in --csv-users")
	col(&m.UsersManager, "csv-users-manager", def.UsersManager, "csv: column of the manager's user id in --csv-users (empty: no manager)")
	col(&m.UsersName, "csv-users-name", def.UsersName, "csv: column of the user's name in --csv-users (used when present)")
	list := func(dst *[]string, name string, dflt []string, help string) {
		c.Func(name, strings.Join(dflt, ","), help, func(s string) error {
			*dst = nil
			for _, v := range strings.Split(s, ",") {
				if v = strings.TrimSpace(v); v != "" {
					*dst = append(*dst, v)
				}
			}
			if len(*dst) == 0 {
				return errors.New("need at least one value")
			}
			return nil
		})
	}
	list(&m.Won, "csv-won", def.Won, "csv: comma-separated --csv-outcome values of won deals (case-insensitive)")
	list(&m.Lost, "csv-lost", def.Lost, "csv: comma-separated --csv-outcome values of lost deals (case-insensitive)")
	return m
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("import", importSummary, stderr)
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: leadthrough import --format maven-crm|csv [flags] DIR_OR_FILE\n\n%s\n\n"+
			"Flags (each also read from the environment variable shown):\n", importSummary)
		c.fs.PrintDefaults()
	}
	format := c.fs.String("format", "", c.registerEnv("format", "LEADTHROUGH_IMPORT_FORMAT",
		"export format (required): "+csvimport.FormatMaven+" or "+csvimport.FormatCSV))
	var opt csvimport.Options
	c.fs.StringVar(&opt.Source, "source", "", c.register("source", "CloudEvents source of the events, half of each event's "+
		"identity: keep it stable per CRM (default: the format's name, maven-crm or csv)"))
	c.fs.StringVar(&opt.Currency, "currency", "", c.register("currency", "ISO 4217 code put on every amount (default none: "+
		"amounts are in the install's reporting currency)"))
	c.fs.BoolVar(&opt.SkipInvalid, "skip-invalid", false, c.register("skip-invalid", "skip invalid rows, count them and "+
		"list them as warnings, instead of importing nothing"))
	mapping := csvMappingFlags(c)
	kafka := kafkaFlags(c)
	topic := c.String("topic", "crm.events", "topic to publish to; ignored with --direct")
	direct := c.Bool("direct", false, "write the events straight into ClickHouse (--clickhouse-addr, --clickhouse-database; "+
		"creates and migrates the database first) instead of publishing to Kafka, for when no Kafka is at hand")
	chCfg := clickhouseFlags(c, "leadthrough")
	batchSize := c.Int("batch-size", 10000, "events per ClickHouse insert with --direct")
	dryRun := c.Bool("dry-run", false, "read and check the export and print the summary; publish and write nothing")
	logger := logFlags(c)
	path, err := parseWithPath(c, args)
	if err != nil {
		return err
	}
	if *batchSize <= 0 {
		return fmt.Errorf("%w: --batch-size must be positive, got %d", errUsage, *batchSize)
	}
	log := logger()

	start := time.Now()
	res, err := load(*format, path, *mapping, opt)
	if err != nil {
		return err
	}
	read := time.Since(start)
	for i, w := range res.Summary.Warnings {
		if i == 20 {
			fmt.Fprintf(stderr, "warning: … and %d more\n", len(res.Summary.Warnings)-i)
			break
		}
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	if *dryRun {
		printImportSummary(stdout, path, res.Summary, fmt.Sprintf("checked in %s; nothing sent (--dry-run)", round(read)))
		return nil
	}

	start = time.Now()
	var dest string
	if *direct {
		dest = fmt.Sprintf("written to ClickHouse database %s at %s", chCfg.Database, chCfg.Addr)
		bar := newProgress(stderr, "writing to ClickHouse")
		err = writeDirect(ctx, *chCfg, res.Events, *batchSize, bar.update, log)
		bar.finish()
	} else {
		dest = fmt.Sprintf("published to %s on %s", *topic, strings.Join(kafka.Brokers, ","))
		bar := newProgress(stderr, "publishing to Kafka")
		err = publish.Events(ctx, publish.Config{Brokers: kafka.Brokers, Kafka: kafka.Conn, Topic: *topic,
			Progress: bar.update}, res.Events)
		bar.finish()
	}
	if err != nil {
		return err
	}
	printImportSummary(stdout, path, res.Summary, fmt.Sprintf("%s in %s (read in %s)", dest, round(time.Since(start)), round(read)))
	return nil
}

// parseWithPath is command.parse for a command with one positional argument, DIR_OR_FILE, which may stand before,
// between or after the flags: the flags first, then the environment for the flags they did not set.
func parseWithPath(c *command, args []string) (string, error) {
	var positional []string
	for len(args) > 0 {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := c.fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...) // everything after "--" is positional
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if err := c.parse(nil); err != nil { // the environment, for the flags not set above
		return "", err
	}
	switch len(positional) {
	case 0:
		return "", fmt.Errorf("%w: missing DIR_OR_FILE, the export to import", errUsage)
	case 1:
		return positional[0], nil
	default:
		return "", fmt.Errorf("%w: want one DIR_OR_FILE, got %q", errUsage, positional)
	}
}

// load reads the export at path in the given format.
func load(format, path string, m csvimport.Mapping, opt csvimport.Options) (*csvimport.Result, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var res *csvimport.Result
	switch format {
	case csvimport.FormatMaven:
		if !info.IsDir() { // any file of the export names its directory
			path = filepath.Dir(path)
		}
		res, err = csvimport.Maven(path, opt)
	case csvimport.FormatCSV:
		if info.IsDir() {
			return nil, fmt.Errorf("%w: --format csv reads one deals file, and %s is a directory", errUsage, path)
		}
		res, err = csvimport.CSV(path, m, opt)
	case "":
		return nil, fmt.Errorf("%w: --format is required: %s or %s", errUsage, csvimport.FormatMaven, csvimport.FormatCSV)
	default:
		return nil, fmt.Errorf("%w: unknown --format %q: want %s or %s", errUsage, format, csvimport.FormatMaven, csvimport.FormatCSV)
	}
	var inv *csvimport.InvalidError
	if errors.As(err, &inv) {
		return nil, fmt.Errorf("%w\n(--skip-invalid imports the valid rows and lists the others as warnings)", err)
	}
	return res, err
}

// writeDirect creates and migrates the database, then inserts evs in batches of batchSize.
func writeDirect(ctx context.Context, cfg store.Config, evs []event.Event, batchSize int, progress func(done, total int),
	log *slog.Logger) error {
	s, err := migrate(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	rows := make([]store.Stored, 0, min(batchSize, len(evs)))
	for start := 0; start < len(evs); start += batchSize {
		rows = rows[:0]
		for _, e := range evs[start:min(start+batchSize, len(evs))] {
			rows = append(rows, store.Stored{Event: e})
		}
		if err := s.InsertEvents(ctx, rows); err != nil {
			return err
		}
		progress(start+len(rows), len(evs))
	}
	return nil
}

func printImportSummary(w io.Writer, path string, s csvimport.Summary, outcome string) {
	fmt.Fprintf(w, "%s import of %s (source %s)\n", s.Format, path, s.Source)
	fmt.Fprintf(w, "  deal rows        %d\n", s.Rows)
	fmt.Fprintf(w, "  users            %d\n", s.Users)
	fmt.Fprintf(w, "  reporting lines  %d\n", s.ReportingLines)
	fmt.Fprintf(w, "  deals            %d: %d won, %d lost, %d open\n", s.Deals, s.Won, s.Lost, s.Open)
	fmt.Fprintf(w, "  skipped rows     %d%s\n", s.SkippedTotal(), counts(s.Skipped))
	if len(s.Corrections) > 0 {
		n := 0
		for _, v := range s.Corrections {
			n += v
		}
		fmt.Fprintf(w, "  corrected values %d%s\n", n, counts(s.Corrections))
	}
	fmt.Fprintf(w, "  warnings         %d\n", len(s.Warnings))
	fmt.Fprintf(w, "  events           %d %s\n", s.Events, outcome)
}

// counts renders a reason → count map as ": 500 reason, 3 other", sorted by reason.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return ": " + strings.Join(parts, ", ")
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// progress shows how far a long send has got on w: a bar redrawn in place when w is a terminal, otherwise (CI, a
// log file) a plain line every few seconds and at the end.
type progress struct {
	w     io.Writer
	what  string
	tty   bool
	every time.Duration // between plain lines; redraws of the bar are 10 times as frequent
	now   func() time.Time
	last  time.Time
	drawn bool // a bar is on screen and needs its line ended
}

func newProgress(w io.Writer, what string) *progress {
	return &progress{w: w, what: what, tty: isTerminal(w), every: 2 * time.Second, now: time.Now}
}

// isTerminal reports whether w is a character device such as a terminal, using only the standard library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const barWidth = 30

func (p *progress) update(done, total int) {
	now := p.now()
	interval := p.every
	if p.tty {
		interval /= 10
	}
	if done < total && !p.last.IsZero() && now.Sub(p.last) < interval {
		return
	}
	if p.last.IsZero() && done < total && !p.tty {
		// The first plain line waits a full interval, so that a quick import prints only its final line.
		p.last = now
		return
	}
	p.last = now
	pct := 100
	if total > 0 {
		pct = done * 100 / total
	}
	if !p.tty {
		fmt.Fprintf(p.w, "import: %s: %d/%d events (%d%%)\n", p.what, done, total, pct)
		return
	}
	filled := barWidth * pct / 100
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %d/%d events", p.what, strings.Repeat("=", filled),
		strings.Repeat(" ", barWidth-filled), pct, done, total)
	p.drawn = true
}

// finish ends the bar's line, so that what follows starts on a line of its own.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
