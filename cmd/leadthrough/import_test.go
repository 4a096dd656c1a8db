package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/crm/csvimport"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// mavenDataset is the published Maven CRM export, committed in testdata/maven-crm at the module root; it is always
// there, so a missing one fails the test.
func mavenDataset(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = filepath.Dir(dir)
	}
	data := filepath.Join(dir, "testdata", "maven-crm")
	if _, err := os.Stat(filepath.Join(data, "sales_pipeline.csv")); err != nil {
		t.Fatalf("the Maven CRM dataset must be in testdata/maven-crm: %v", err)
	}
	return data
}

// mavenTruth is what the indicators must show for the Maven export, computed from the CSV files with encoding/csv
// alone, independently of package csvimport.
type mavenTruth struct {
	agents    map[string]int     // manager name → agents in sales_teams.csv
	won       map[string]int64   // manager name → Won rows of their agents
	closed    map[string]int64   // manager name → Won + Lost rows of their agents
	wonAmount map[string]float64 // manager name → sum of close_value of those Won rows
	lastClose time.Time          // the latest close_date
}

func readMavenTruth(t *testing.T, dir string) mavenTruth {
	t.Helper()
	read := func(name string) []map[string]string {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]string
		for _, rec := range recs[1:] {
			r := map[string]string{}
			for i, h := range recs[0] {
				r[h] = rec[i]
			}
			rows = append(rows, r)
		}
		return rows
	}
	tr := mavenTruth{agents: map[string]int{}, won: map[string]int64{}, closed: map[string]int64{}, wonAmount: map[string]float64{}}
	managerOf := map[string]string{}
	for _, r := range read("sales_teams.csv") {
		managerOf[r["sales_agent"]] = r["manager"]
		tr.agents[r["manager"]]++
	}
	for _, r := range read("sales_pipeline.csv") {
		m := managerOf[r["sales_agent"]]
		if r["deal_stage"] != "Won" && r["deal_stage"] != "Lost" {
			continue
		}
		tr.closed[m]++
		if d, err := time.Parse("2006-01-02", r["close_date"]); err == nil && d.After(tr.lastClose) {
			tr.lastClose = d
		}
		if r["deal_stage"] == "Won" {
			v, err := strconv.ParseFloat(r["close_value"], 64)
			if err != nil {
				t.Fatal(err)
			}
			tr.won[m]++
			tr.wonAmount[m] += v
		}
	}
	return tr
}

// TestImportDirectGivesEachManagerTheWonDealsOfTheirAgents imports the Maven export straight into the real
// ClickHouse and checks the indicators and the deal attribution against the figures read from the CSV files.
func TestImportDirectGivesEachManagerTheWonDealsOfTheirAgents(t *testing.T) {
	addr := testenv.ClickHouse(t)
	dir := mavenDataset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := fmt.Sprintf("lt_import_%d", time.Now().UnixNano())
	t.Cleanup(func() { pipelinetest.DropDatabase(t, addr, db) })
	chFlags := []string{"--clickhouse-addr", addr, "--clickhouse-database", db}

	var out, errOut bytes.Buffer
	start := time.Now()
	if err := runImport(ctx, append([]string{"--format", "maven-crm", "--direct", "--log-level", "warn", dir}, chFlags...),
		&out, &errOut); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut.String())
	}
	t.Logf("import --direct took %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if !strings.Contains(out.String(), "deals            8300: 4238 won, 2473 lost, 1589 open") {
		t.Errorf("summary lacks the deal counts:\n%s", out.String())
	}

	truth := readMavenTruth(t, dir)
	asOf := truth.lastClose.Add(24 * time.Hour) // just after the last close (17:00 on the last close_date)
	out.Reset()
	if err := runIndicators(ctx, append([]string{"--as-of", asOf.Format(time.RFC3339), "--window", "3650d", "--format", "json"},
		chFlags...), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rows []indicator.Row
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("indicators JSON: %v\n%s", err, out.String())
	}
	if len(rows) != len(truth.agents) || len(rows) != 6 {
		t.Fatalf("%d managers, want the 6 of sales_teams.csv:\n%s", len(rows), out.String())
	}
	nameOf := map[string]string{}
	for _, r := range rows {
		m := r.ManagerName
		nameOf[r.ManagerID] = m
		if _, ok := truth.agents[m]; !ok {
			t.Errorf("unexpected manager %s (%s)", r.ManagerID, m)
			continue
		}
		if r.WonDeals != truth.won[m] || r.ClosedDeals != truth.closed[m] || r.TeamReps != int64(truth.agents[m]) {
			t.Errorf("%s: won %d closed %d team %d; the CSV says won %d closed %d agents %d", m, r.WonDeals,
				r.ClosedDeals, r.TeamReps, truth.won[m], truth.closed[m], truth.agents[m])
		}
		// Managers own no deal in the export: they close nothing and take nothing over.
		if r.ManagerClosedShare == nil || *r.ManagerClosedShare != 0 || r.Takeovers != 0 {
			t.Errorf("%s: manager_closed_share %v takeovers %d, want 0 and 0", m, r.ManagerClosedShare, r.Takeovers)
		}
	}

	s, err := store.Open(ctx, store.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deals, err := s.DealAttribution(ctx, indicator.Params{AsOf: asOf, Window: 3650 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	wonAmount := map[string]float64{}
	var closed int64
	for _, d := range deals {
		closed++
		if d.Won {
			wonAmount[nameOf[d.ManagerID]] += d.Amount
		}
	}
	for m, want := range truth.wonAmount {
		if wonAmount[m] != want {
			t.Errorf("%s: won amount %.0f in ClickHouse, %.0f in the CSV", m, wonAmount[m], want)
		}
		t.Logf("%-17s won %4d deals, %9.0f", m, truth.won[m], want)
	}
	var wantClosed int64
	for _, n := range truth.closed {
		wantClosed += n
	}
	if closed != wantClosed {
		t.Errorf("%d deals attributed, want the %d Won and Lost rows", closed, wantClosed)
	}

	// Importing the same files again replaces the events: nothing counts twice.
	before, err := s.CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := runImport(ctx, append([]string{"--format", "maven-crm", "--direct", "--log-level", "warn", dir}, chFlags...),
		io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if after, err := s.CountEvents(ctx); err != nil || after != before {
		t.Errorf("after a second import %d events (err %v), before %d", after, err, before)
	}
}

// TestImportThroughKafkaStoresEveryEventOnce publishes the Maven export to the real Kafka, ingests it into the real
// ClickHouse, and checks that every produced event is stored once, also after importing the same files again.
func TestImportThroughKafkaStoresEveryEventOnce(t *testing.T) {
	env := pipelinetest.New(t, "import_kafka")
	dir := mavenDataset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic := env.Name("import.events.")
	res, err := csvimport.Maven(dir, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(len(res.Events))

	importArgs := []string{"--format", "maven-crm", "--brokers", env.Kafka, "--topic", topic, dir}
	var out bytes.Buffer
	start := time.Now()
	if err := runImport(ctx, importArgs, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("import to Kafka took %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if !strings.Contains(out.String(), fmt.Sprintf("events           %d published to %s", want, topic)) {
		t.Errorf("summary does not say %d events were published:\n%s", want, out.String())
	}

	s := env.Store
	worker := env.Ingest(ctx, t, ingest.Config{Topics: []ingest.Topic{{Name: topic}}})
	start = time.Now()
	worker.WaitFor(ctx, t, "events stored", want, s.CountEvents)
	t.Logf("ingested %d events in %s", want, time.Since(start).Round(time.Millisecond))

	// Import again. ingested_at has second resolution, so start on a fresh second: then "every event ingested
	// since" reaching the total means the whole second import went through.
	since := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(since))
	if err := runImport(ctx, importArgs, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	worker.WaitFor(ctx, t, "events ingested again", want, func(ctx context.Context) (uint64, error) {
		return s.CountEventsIngestedSince(ctx, since)
	})
	if n, err := s.CountEvents(ctx); err != nil || n != want {
		t.Errorf("after importing twice: %d events stored (err %v), want %d", n, err, want)
	}
	worker.Stop(t)
}

func TestImportTakesThePathBeforeOrAfterTheFlags(t *testing.T) {
	dir := mavenDataset(t)
	for _, args := range [][]string{
		{"--format", "maven-crm", "--dry-run", dir},
		{dir, "--format", "maven-crm", "--dry-run"},
		{"--format", "maven-crm", dir, "--dry-run"},
		{"--format", "maven-crm", "--dry-run", filepath.Join(dir, "sales_pipeline.csv")}, // a file names its directory
		{"--format", "maven-crm", "--dry-run", "--", dir},
	} {
		var out bytes.Buffer
		if err := runImport(context.Background(), args, &out, io.Discard); err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		for _, want := range []string{"users            41", "reporting lines  35", "deals            8300: 4238 won, 2473 lost, 1589 open",
			"skipped rows     500: 500 Prospecting without engage_date", `corrected values 1400: 1400 product "GTXPro" read as "GTX Pro"`,
			"events           15087 checked in"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q: summary lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

func TestImportUsageErrors(t *testing.T) {
	dir := mavenDataset(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no path", []string{"--format", "maven-crm"}, "missing DIR_OR_FILE"},
		{"two paths", []string{"--format", "maven-crm", dir, dir}, "want one DIR_OR_FILE"},
		{"no format", []string{dir}, "--format is required"},
		{"unknown format", []string{"--format", "xlsx", dir}, `unknown --format "xlsx"`},
		{"csv on a directory", []string{"--format", "csv", dir}, "is a directory"},
		{"bad batch size", []string{"--format", "maven-crm", "--batch-size", "0", dir}, "--batch-size must be positive"},
		{"unknown flag", []string{"--format", "maven-crm", "--nope", dir}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runImport(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
	var help bytes.Buffer
	if err := runImport(context.Background(), []string{"-h"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(help.String(), "Usage: leadthrough import --format maven-crm|csv [flags] DIR_OR_FILE") ||
		!strings.Contains(help.String(), "LEADTHROUGH_CSV_DEAL_ID") {
		t.Errorf("-h: %v\n%s", err, help.String())
	}
}

func TestImportFlagsComeFromTheEnvironment(t *testing.T) {
	t.Setenv("LEADTHROUGH_IMPORT_FORMAT", "csv")
	t.Setenv("LEADTHROUGH_CSV_DEAL_ID", "Opportunity ID")
	t.Setenv("LEADTHROUGH_CSV_OWNER", "Owner")
	t.Setenv("LEADTHROUGH_CSV_CREATED", "Created Date")
	t.Setenv("LEADTHROUGH_CSV_CLOSED", "Close Date")
	t.Setenv("LEADTHROUGH_CSV_OUTCOME", "Stage")
	t.Setenv("LEADTHROUGH_CSV_AMOUNT", "Amount")
	t.Setenv("LEADTHROUGH_CSV_WON", "Closed Won")
	t.Setenv("LEADTHROUGH_SOURCE", "crm/acme")
	var out bytes.Buffer
	path := filepath.Join("..", "..", "crm", "csvimport", "testdata", "generic", "deals.csv")
	if err := runImport(context.Background(), []string{"--dry-run", path}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"csv import of " + path + " (source crm/acme)", "deals            5: 2 won, 1 lost, 2 open"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestImportReportsInvalidRowsWithFileLineAndColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deals.csv")
	if err := os.WriteFile(path, []byte("deal_id,owner_id,created_at,closed_at,outcome,amount\n1,a,2025-01-01,,,-5\n2,a,2025-01-02,,,7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runImport(context.Background(), []string{"--format", "csv", "--dry-run", path}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), path+":2: column amount: negative amount -5") ||
		!strings.Contains(err.Error(), "--skip-invalid") {
		t.Fatalf("got %v", err)
	}
	var out, warnings bytes.Buffer
	if err := runImport(context.Background(), []string{"--format", "csv", "--dry-run", "--skip-invalid", path}, &out, &warnings); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "skipped rows     1: 1 invalid row") || !strings.Contains(out.String(), "deals            1:") ||
		!strings.Contains(warnings.String(), "warning: "+path+":2: column amount: negative amount -5") {
		t.Errorf("with --skip-invalid:\n%s%s", out.String(), warnings.String())
	}
}

func TestProgressIsABarOnATerminalAndPlainLinesElsewhere(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func(d time.Duration) func() time.Time {
		return func() time.Time { clock = clock.Add(d); return clock }
	}

	var bar bytes.Buffer
	p := &progress{w: &bar, what: "publishing to Kafka", tty: true, every: 2 * time.Second, now: tick(time.Second)}
	p.update(500, 1000)
	p.update(1000, 1000)
	p.finish()
	want := "\rpublishing to Kafka [===============               ]  50% 500/1000 events" +
		"\rpublishing to Kafka [==============================] 100% 1000/1000 events\n"
	if bar.String() != want {
		t.Errorf("bar\n got %q\nwant %q", bar.String(), want)
	}

	var lines bytes.Buffer
	p = &progress{w: &lines, what: "writing to ClickHouse", every: 2 * time.Second, now: tick(time.Second)}
	for done := 100; done <= 1000; done += 100 { // one update a second
		p.update(done, 1000)
	}
	p.finish()
	want = "import: writing to ClickHouse: 300/1000 events (30%)\n" +
		"import: writing to ClickHouse: 500/1000 events (50%)\n" +
		"import: writing to ClickHouse: 700/1000 events (70%)\n" +
		"import: writing to ClickHouse: 900/1000 events (90%)\n" +
		"import: writing to ClickHouse: 1000/1000 events (100%)\n"
	if lines.String() != want {
		t.Errorf("plain lines\n got %q\nwant %q", lines.String(), want)
	}
	if isTerminal(&lines) {
		t.Error("a buffer is not a terminal")
	}
}
