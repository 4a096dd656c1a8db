package csvimport_test

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/crm/csvimport"
	"github.com/leadthrough/leadthrough/event"
)

// mavenDir is the published Maven export, committed in testdata/maven-crm at the module root. A missing dataset
// fails the test rather than skipping it.
func mavenDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "testdata", "maven-crm")
	if _, err := os.Stat(filepath.Join(data, csvimport.MavenPipelineFile)); err != nil {
		t.Fatalf("the Maven CRM dataset must be in testdata/maven-crm: %v", err)
	}
	return data
}

// readCSV reads a whole file as maps from header name to cell, independently of the package under test.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

func TestMavenDatasetGivesEveryTeamMemberAndEveryEngagedDeal(t *testing.T) {
	dir := mavenDir(t)
	res, err := csvimport.Maven(dir, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// The expectations, computed from the files here.
	teams := readCSV(t, filepath.Join(dir, "sales_teams.csv"))
	managerOf := map[string]string{}
	managers := map[string]bool{}
	for _, r := range teams {
		managerOf[r["sales_agent"]] = r["manager"]
		managers[r["manager"]] = true
	}
	prices := map[string]float64{}
	for _, r := range readCSV(t, filepath.Join(dir, "products.csv")) {
		prices[r["product"]], _ = strconv.ParseFloat(r["sales_price"], 64)
	}
	pipeline := readCSV(t, filepath.Join(dir, "sales_pipeline.csv"))
	var engaged, won, lost, open, prospecting, gtxPro int
	byID := map[string]map[string]string{}
	for _, r := range pipeline {
		byID[r["opportunity_id"]] = r
		if r["engage_date"] == "" {
			prospecting++
			continue
		}
		engaged++
		switch r["deal_stage"] {
		case "Won":
			won++
		case "Lost":
			lost++
		default:
			open++
		}
		if r["product"] == "GTXPro" {
			gtxPro++
		}
	}

	s := res.Summary
	wantSummary := csvimport.Summary{Format: "maven-crm", Source: "maven-crm", Rows: len(pipeline),
		Events: len(teams) + len(managers) + len(teams) + engaged + won + lost,
		Users:  len(teams) + len(managers), ReportingLines: len(teams), Deals: engaged, Won: won, Lost: lost, Open: open,
		Skipped:     map[string]int{csvimport.SkipReasonNoEngageDate: prospecting},
		Corrections: map[string]int{`product "GTXPro" read as "GTX Pro"`: gtxPro}}
	if !reflect.DeepEqual(s, wantSummary) {
		t.Errorf("summary\n got %+v\nwant %+v", s, wantSummary)
	}
	// The figures the dataset's description promises.
	if len(teams) != 35 || len(managers) != 6 || len(pipeline) != 8800 {
		t.Errorf("dataset has %d agents, %d managers, %d opportunities; want 35, 6, 8800", len(teams), len(managers), len(pipeline))
	}

	t0 := time.Date(2016, 10, 19, 0, 0, 0, 0, time.UTC) // the day before the first engage_date, 2016-10-20
	userIDs := map[string]string{}                      // name → user id
	ids := map[string]bool{}
	reportsTo := map[string]string{}
	for i, e := range res.Events {
		if err := event.Validate(e); err != nil {
			t.Fatalf("event %d (%s) is invalid: %v", i, e.ID, err)
		}
		if e.Source != "maven-crm" {
			t.Fatalf("event %s has source %q", e.ID, e.Source)
		}
		if ids[e.ID] {
			t.Fatalf("event id %s is used twice", e.ID)
		}
		ids[e.ID] = true
		if i > 0 && e.Time.Before(res.Events[i-1].Time) {
			t.Fatalf("event %s is out of time order", e.ID)
		}
		switch e.Type {
		case event.UserUpserted:
			if !e.Time.Equal(t0) {
				t.Errorf("%s at %s, want %s", e.ID, e.Time, t0)
			}
			if _, dup := userIDs[e.Data.Name]; dup {
				t.Errorf("user %q upserted twice", e.Data.Name)
			}
			userIDs[e.Data.Name] = e.Data.UserID
			wantPrefix, wantTitle := "agent:", "Sales agent, "
			if managers[e.Data.Name] {
				wantPrefix, wantTitle = "manager:", "Sales manager, "
			}
			if !strings.HasPrefix(e.Data.UserID, wantPrefix) || !strings.HasPrefix(e.Data.Title, wantTitle) ||
				!strings.HasSuffix(e.Data.Title, " office") {
				t.Errorf("user %q: id %q title %q", e.Data.Name, e.Data.UserID, e.Data.Title)
			}
		case event.UserManagerChanged:
			if !e.Time.Equal(t0) {
				t.Errorf("%s at %s, want %s", e.ID, e.Time, t0)
			}
			reportsTo[e.Data.UserID] = *e.Data.ManagerID
		}
	}
	if len(userIDs) != len(teams)+len(managers) {
		t.Errorf("%d distinct users, want %d", len(userIDs), len(teams)+len(managers))
	}
	if got := userIDs["Moses Frase"]; got != "agent:moses-frase" {
		t.Errorf("Moses Frase has id %q, want agent:moses-frase", got)
	}
	if got := userIDs["Mei-Mei Johns"]; got != "agent:mei-mei-johns" {
		t.Errorf("Mei-Mei Johns has id %q, want agent:mei-mei-johns", got)
	}
	for agent, manager := range managerOf {
		if got := reportsTo[userIDs[agent]]; got == "" || got != userIDs[manager] {
			t.Errorf("%s reports to %q, want %s (%q)", agent, got, manager, userIDs[manager])
		}
	}

	nameOf := map[string]string{}
	for n, id := range userIDs {
		nameOf[id] = n
	}
	created := 0
	for _, e := range res.Events {
		if !strings.HasPrefix(e.Type, "deal.") {
			continue
		}
		r := byID[e.Data.DealID]
		if r == nil {
			t.Fatalf("%s names an unknown opportunity", e.ID)
		}
		switch e.Type {
		case event.DealCreated:
			created++
			engage, _ := time.Parse("2006-01-02", r["engage_date"])
			product := strings.Replace(r["product"], "GTXPro", "GTX Pro", 1)
			if !e.Time.Equal(engage.Add(9*time.Hour)) || nameOf[e.Data.OwnerID] != r["sales_agent"] ||
				e.Data.Amount == nil || *e.Data.Amount != prices[product] || !strings.HasSuffix(e.Data.Name, product) {
				t.Errorf("%s: %+v at %s does not match row %v", e.ID, e.Data, e.Time, r)
			}
		case event.DealClosed:
			closeDate, _ := time.Parse("2006-01-02", r["close_date"])
			value, _ := strconv.ParseFloat(r["close_value"], 64)
			if !e.Time.Equal(closeDate.Add(17*time.Hour)) || e.Data.Outcome != strings.ToLower(r["deal_stage"]) ||
				e.Data.Amount == nil || *e.Data.Amount != value {
				t.Errorf("%s: %+v at %s does not match row %v", e.ID, e.Data, e.Time, r)
			}
		default:
			t.Errorf("unexpected %s", e.Type)
		}
	}
	if created != engaged {
		t.Errorf("%d deals created, want %d", created, engaged)
	}
}

func TestMavenImportIsDeterministic(t *testing.T) {
	dir := mavenDir(t)
	a, err := csvimport.Maven(dir, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := csvimport.Maven(dir, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two imports of the same files differ")
	}
	for i := range a.Events {
		x, err := event.Encode(a.Events[i])
		if err != nil {
			t.Fatal(err)
		}
		y, _ := event.Encode(b.Events[i])
		if string(x) != string(y) {
			t.Fatalf("event %d encodes differently:\n%s\n%s", i, x, y)
		}
	}
}

// mavenFiles writes a small Maven export whose pipeline is the given rows (after the header).
func mavenFiles(t *testing.T, pipeline ...string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("products.csv", "product,series,sales_price\nGTX Pro,GTX,4821\nMG Special,MG,55\n")
	write("sales_teams.csv", "sales_agent,manager,regional_office\nAnna Snelling,Dustin Brinkmann,Central\n"+
		"Zane Levy,Summer Sewald,West\n")
	write("sales_pipeline.csv", "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"+
		strings.Join(pipeline, "\n")+"\n")
	return dir
}

const goodRow = "OK000001,Anna Snelling,MG Special,Cancity,Won,2017-01-02,2017-02-03,50"

func TestMavenBadRowsAreNamedByFileLineAndColumn(t *testing.T) {
	tests := []struct {
		name string
		row  string
		want string // suffix of the path in the message: "sales_pipeline.csv:3: …"
	}{
		{"bad engage date", "BAD00001,Anna Snelling,MG Special,Cancity,Won,2017-13-01,2017-02-03,50",
			`sales_pipeline.csv:3: column engage_date: not a date: "2017-13-01" (want YYYY-MM-DD)`},
		{"bad close date", "BAD00001,Anna Snelling,MG Special,Cancity,Lost,2017-01-01,03/02/2017,0",
			`sales_pipeline.csv:3: column close_date: not a date: "03/02/2017" (want YYYY-MM-DD)`},
		{"negative close value", "BAD00001,Anna Snelling,MG Special,Cancity,Won,2017-01-01,2017-02-03,-50",
			`sales_pipeline.csv:3: column close_value: negative amount -50: amounts must be >= 0`},
		{"non-numeric close value", "BAD00001,Anna Snelling,MG Special,Cancity,Won,2017-01-01,2017-02-03,fifty",
			`sales_pipeline.csv:3: column close_value: not a number: "fifty"`},
		{"close before engage", "BAD00001,Anna Snelling,MG Special,Cancity,Won,2017-03-01,2017-02-03,50",
			`sales_pipeline.csv:3: column close_date: close_date 2017-02-03 is before engage_date 2017-03-01`},
		{"won without close date", "BAD00001,Anna Snelling,MG Special,Cancity,Won,2017-01-01,,50",
			`sales_pipeline.csv:3: column close_date: empty close_date: required for deal_stage Won`},
		{"unknown stage", "BAD00001,Anna Snelling,MG Special,Cancity,Negotiating,2017-01-01,,",
			`sales_pipeline.csv:3: column deal_stage: unknown deal_stage "Negotiating" (want Prospecting, Engaging, Won or Lost)`},
		{"engaging without engage date", "BAD00001,Anna Snelling,MG Special,Cancity,Engaging,,,",
			`sales_pipeline.csv:3: column engage_date: empty engage_date: required for deal_stage Engaging`},
		{"repeated opportunity", goodRow,
			`sales_pipeline.csv:3: column opportunity_id: opportunity "OK000001" is listed again (first on line 2)`},
		{"missing cells", "BAD00001,Anna Snelling,MG Special",
			`sales_pipeline.csv:3: wrong number of fields`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := mavenFiles(t, goodRow, tt.row, "OK000002,Zane Levy,GTXPro,,Engaging,2017-01-05,,")
			_, err := csvimport.Maven(dir, csvimport.Options{})
			var inv *csvimport.InvalidError
			if !errors.As(err, &inv) || len(inv.Rows) != 1 {
				t.Fatalf("got %v, want an InvalidError with one problem", err)
			}
			if got := inv.Rows[0].Error(); got != filepath.Join(dir, tt.want) {
				t.Errorf("got  %s\nwant %s", got, filepath.Join(dir, tt.want))
			}

			// With SkipInvalid the other rows are imported and the bad one is counted and listed.
			res, err := csvimport.Maven(dir, csvimport.Options{SkipInvalid: true})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Summary
			if s.Deals != 2 || s.Skipped[csvimport.SkipReasonInvalid] != 1 || len(s.Warnings) != 1 ||
				s.Warnings[0].Error() != filepath.Join(dir, tt.want) {
				t.Errorf("with SkipInvalid: %+v", s)
			}
		})
	}
}

func TestMavenImportsADealOfAnAgentWithoutTeamRowWithoutManagerAndWarns(t *testing.T) {
	dir := mavenFiles(t, goodRow, "NEW00001,Nora Newhire,MG Special,,Won,2017-01-02,2017-01-09,60",
		"NEW00002,Nora Newhire,GTX Pro,,Engaging,2017-01-03,,")
	res, err := csvimport.Maven(dir, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Users != 5 || s.ReportingLines != 2 || s.Deals != 3 || len(s.Warnings) != 1 {
		t.Fatalf("summary %+v, want 5 users (2 agents, 2 managers, Nora), 2 reporting lines, 3 deals, 1 warning", s)
	}
	want := filepath.Join(dir, `sales_pipeline.csv:3: column sales_agent: agent "Nora Newhire" has no row in sales_teams.csv: `+
		`imported without a manager, so their 2 deal(s) count for no manager`)
	if got := s.Warnings[0].Error(); got != want {
		t.Errorf("warning\n got %s\nwant %s", got, want)
	}
	var upserted, managed bool
	for _, e := range res.Events {
		if e.Data.UserID == "agent:nora-newhire" {
			upserted = upserted || e.Type == event.UserUpserted
			managed = managed || e.Type == event.UserManagerChanged
		}
		if e.Type == event.DealCreated && e.Data.DealID == "NEW00001" && e.Data.OwnerID != "agent:nora-newhire" {
			t.Errorf("NEW00001 owned by %q", e.Data.OwnerID)
		}
		if e.Type == event.DealCreated && e.Data.DealID == "NEW00001" && e.Data.Name != "MG Special" {
			t.Errorf("deal without account is named %q, want the product alone", e.Data.Name)
		}
	}
	if !upserted || managed {
		t.Errorf("Nora: upserted %v, has a manager %v; want a user without manager", upserted, managed)
	}
}

func TestMavenUnknownProductIsAWarningAndTheDealHasNoAmount(t *testing.T) {
	dir := mavenFiles(t, "P0000001,Anna Snelling,Quantum X,Cancity,Engaging,2017-01-02,,")
	res, err := csvimport.Maven(dir, csvimport.Options{Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Summary.Warnings) != 1 || !strings.Contains(res.Summary.Warnings[0].Error(),
		`sales_pipeline.csv:2: column product: product "Quantum X" is not in products.csv`) {
		t.Fatalf("warnings %v", res.Summary.Warnings)
	}
	for _, e := range res.Events {
		if e.Type == event.DealCreated && (e.Data.Amount != nil || e.Data.Currency != "") {
			t.Errorf("deal created with amount %v %q, want none", e.Data.Amount, e.Data.Currency)
		}
	}
}

func TestMavenMissingColumnNamesTheFile(t *testing.T) {
	dir := mavenFiles(t, goodRow)
	if err := os.WriteFile(filepath.Join(dir, "sales_teams.csv"), []byte("sales_agent,regional_office\nA,B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := csvimport.Maven(dir, csvimport.Options{})
	if !errors.Is(err, csvimport.ErrMissingColumn) || !strings.Contains(err.Error(), `sales_teams.csv:1: missing column "manager"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSlugKeepsNamesReadable(t *testing.T) {
	for in, want := range map[string]string{"Moses Frase": "moses-frase", "Mei-Mei Johns": "mei-mei-johns",
		"  Zane   Levy ": "zane-levy", "O'Brien, Pat": "o-brien-pat", "Zoë Ångström": "zoë-ångström", "---": ""} {
		if got := csvimport.Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMavenPipeline feeds arbitrary pipeline files to the Maven reader: it must never panic, and whatever it
// imports must be valid events with unique ids.
func FuzzMavenPipeline(f *testing.F) {
	f.Add(goodRow + "\nOK000002,Zane Levy,GTXPro,,Engaging,2017-01-05,,")
	f.Add("X,Nobody,MG Special,\"A, \"\"quoted\"\" account\",Lost,2017-01-01,2017-01-01,0")
	f.Add("Y,Anna Snelling,,,Prospecting,,,\nY,Anna Snelling,GTX Pro,,Won,2017-01-01,2016-12-31,-1")
	f.Fuzz(func(t *testing.T, pipeline string) {
		dir := mavenFiles(t, pipeline)
		for _, skip := range []bool{false, true} {
			res, err := csvimport.Maven(dir, csvimport.Options{SkipInvalid: skip})
			if err != nil {
				var inv *csvimport.InvalidError
				if skip || !errors.As(err, &inv) {
					t.Fatalf("SkipInvalid %v: unexpected error %v", skip, err)
				}
				continue
			}
			ids := map[string]bool{}
			for _, e := range res.Events {
				if err := event.Validate(e); err != nil {
					t.Fatalf("invalid event %+v: %v", e, err)
				}
				if ids[e.ID] {
					t.Fatalf("event id %s twice", e.ID)
				}
				ids[e.ID] = true
			}
		}
	})
}
