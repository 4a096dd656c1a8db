package csvimport_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/crm/csvimport"
	"github.com/leadthrough/leadthrough/event"
)

// salesforceLike maps testdata/generic, an export with Salesforce-style headers and a stage column for the outcome.
var salesforceLike = csvimport.Mapping{
	DealID: "Opportunity ID", Owner: "owner", Created: "Created Date", Closed: "Close Date", Outcome: "Stage",
	Amount: "Amount", Name: "Opportunity Name",
	Users: filepath.Join("testdata", "generic", "users.csv"), UsersID: "User ID", UsersManager: "Manager ID",
	UsersName: "Full Name",
}

func TestCSVMappingOnAHandWrittenExport(t *testing.T) {
	path := filepath.Join("testdata", "generic", "deals.csv")
	res, err := csvimport.CSV(path, salesforceLike, csvimport.Options{Source: "crm/acme", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	amt := func(v float64) *float64 { return &v }
	t0 := at("2024-01-07T00:00:00Z") // the day before the first deal, 2024-01-08
	ev := func(id, typ string, tm time.Time, d event.Data) event.Event {
		return event.Event{Source: "crm/acme", ID: id + "/" + typ, Type: typ, Time: tm, Data: d}
	}
	want := []event.Event{
		ev("u-ana", event.UserUpserted, t0, event.Data{UserID: "u-ana", Name: "Ana Lima"}),
		ev("u-mia", event.UserUpserted, t0, event.Data{UserID: "u-mia", Name: "Mia Chen"}),
		ev("u-ben", event.UserUpserted, t0, event.Data{UserID: "u-ben", Name: "Ben Okafor"}),
		ev("u-zoe", event.UserUpserted, t0, event.Data{UserID: "u-zoe", Name: "Zoe Park"}),
		ev("u-cy", event.UserUpserted, t0, event.Data{UserID: "u-cy"}),
		ev("u-ana", event.UserManagerChanged, t0, event.Data{UserID: "u-ana", ManagerID: event.Ptr("u-mia")}),
		ev("u-ben", event.UserManagerChanged, t0, event.Data{UserID: "u-ben", ManagerID: event.Ptr("u-mia")}),
		ev("u-zoe", event.UserManagerChanged, t0, event.Data{UserID: "u-zoe", ManagerID: event.Ptr("u-mia")}),
		ev("006A", event.DealCreated, at("2024-01-08T09:00:00Z"),
			event.Data{DealID: "006A", OwnerID: "u-ana", Name: "Acme renewal", Amount: amt(12000), Currency: "EUR"}),
		ev("006B", event.DealCreated, at("2024-01-09T14:30:00Z"),
			event.Data{DealID: "006B", OwnerID: "u-ben", Name: "Globex pilot", Amount: amt(4500.5), Currency: "EUR"}),
		ev("006C", event.DealCreated, at("2024-01-10T08:00:00Z"),
			event.Data{DealID: "006C", OwnerID: "u-ana", Name: "Initech, expansion"}),
		ev("006D", event.DealCreated, at("2024-01-12T09:00:00Z"),
			event.Data{DealID: "006D", OwnerID: "u-mia", Name: "Umbrella", Amount: amt(800), Currency: "EUR"}),
		ev("006D", event.DealClosed, at("2024-01-12T17:00:00Z"),
			event.Data{DealID: "006D", Outcome: event.OutcomeWon, Amount: amt(800), Currency: "EUR"}),
		ev("006E", event.DealCreated, at("2024-01-15T09:00:00Z"),
			event.Data{DealID: "006E", OwnerID: "u-cy", Name: "Hooli", Amount: amt(3000), Currency: "EUR"}),
		ev("006A", event.DealClosed, at("2024-02-01T17:00:00Z"),
			event.Data{DealID: "006A", Outcome: event.OutcomeWon, Amount: amt(12000), Currency: "EUR"}),
		ev("006B", event.DealClosed, at("2024-02-15T09:00:00Z"),
			event.Data{DealID: "006B", Outcome: event.OutcomeLost, Amount: amt(4500.5), Currency: "EUR"}),
	}
	if !reflect.DeepEqual(res.Events, want) {
		for i := range max(len(res.Events), len(want)) {
			var g, w event.Event
			if i < len(res.Events) {
				g = res.Events[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("event %d\n got %+v\nwant %+v", i, g, w)
			}
		}
	}
	for _, e := range res.Events {
		if err := event.Validate(e); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
	s := res.Summary
	if s.Rows != 5 || s.Users != 5 || s.ReportingLines != 3 || s.Deals != 5 || s.Won != 2 || s.Lost != 1 || s.Open != 2 ||
		s.Events != 16 || s.SkippedTotal() != 0 || len(s.Warnings) != 1 {
		t.Errorf("summary %+v", s)
	}
	wantWarning := path + `:6: column Owner: owner "u-cy" is not in ` + salesforceLike.Users +
		` and has no manager: their deals count for no manager`
	if len(s.Warnings) == 1 && s.Warnings[0].Error() != wantWarning {
		t.Errorf("warning\n got %s\nwant %s", s.Warnings[0].Error(), wantWarning)
	}

	again, err := csvimport.CSV(path, salesforceLike, csvimport.Options{Source: "crm/acme", Currency: "EUR"})
	if err != nil || !reflect.DeepEqual(again, res) {
		t.Errorf("a second import differs (err %v)", err)
	}
}

func TestCSVDefaultColumnsAndOwnerManagerColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deals.csv")
	content := "deal_id,owner_id,manager,created_at,closed_at,outcome,amount\n" +
		"1,rep-a,boss,2025-05-01,2025-05-20,won,100\n" +
		"2,rep-b,boss,2025-05-02,,open,\n" +
		"3,rep-a,boss,2025-05-03,2025-05-04,LOST,0\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := csvimport.CSV(path, csvimport.Mapping{OwnerManager: "manager"}, csvimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Source != "csv" || s.Users != 3 || s.ReportingLines != 2 || s.Deals != 3 || s.Won != 1 || s.Lost != 1 || s.Open != 1 {
		t.Errorf("summary %+v", s)
	}
	lines := map[string]string{}
	for _, e := range res.Events {
		if e.Type == event.UserManagerChanged {
			lines[e.Data.UserID] = *e.Data.ManagerID
		}
	}
	if !reflect.DeepEqual(lines, map[string]string{"rep-a": "boss", "rep-b": "boss"}) {
		t.Errorf("reporting lines %v", lines)
	}
}

func TestCSVBadRowsAreNamedByFileLineAndColumn(t *testing.T) {
	const header = "deal_id,owner_id,manager,created_at,closed_at,outcome,amount\n"
	const good = "1,rep-a,boss,2025-05-01,2025-05-20,won,100\n"
	tests := []struct {
		name, row, want string
	}{
		{"bad created", "2,rep-a,boss,yesterday,,,", `:3: column created_at: not a time: "yesterday"`},
		{"negative amount", "2,rep-a,boss,2025-05-01,,,-3", `:3: column amount: negative amount -3: amounts must be >= 0`},
		{"non-numeric amount", "2,rep-a,boss,2025-05-01,,,1.2.3", `:3: column amount: not a number: "1.2.3"`},
		{"close without outcome", "2,rep-a,boss,2025-05-01,2025-05-02,pending,", `:3: column outcome: "pending" is neither won`},
		{"won without close", "2,rep-a,boss,2025-05-01,,won,", `:3: column closed_at: empty, but the deal is won`},
		{"close before create", "2,rep-a,boss,2025-05-03,2025-05-02,won,", `:3: column closed_at: closed 2025-05-02 before it was created`},
		{"second manager", "2,rep-a,other,2025-05-01,,,", `:3: column manager: user "rep-a" has manager "other" here but "boss" at `},
		{"own manager", "2,boss,boss,2025-05-01,,,", `:3: column manager: user "boss" cannot be their own manager`},
		{"repeated id", "1,rep-b,boss,2025-05-01,,,", `:3: column deal_id: deal "1" is listed again (first on line 2)`},
		{"no owner", "2,,boss,2025-05-01,,,", `:3: column owner_id: empty owner`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "deals.csv")
			if err := os.WriteFile(path, []byte(header+good+tt.row+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := csvimport.CSV(path, csvimport.Mapping{OwnerManager: "manager"}, csvimport.Options{})
			var inv *csvimport.InvalidError
			if !errors.As(err, &inv) || len(inv.Rows) != 1 || !strings.HasPrefix(inv.Rows[0].Error(), path+tt.want) {
				t.Fatalf("got %v\nwant an InvalidError starting %s", err, path+tt.want)
			}
			res, err := csvimport.CSV(path, csvimport.Mapping{OwnerManager: "manager"}, csvimport.Options{SkipInvalid: true})
			if err != nil || res.Summary.Deals != 1 || res.Summary.Skipped[csvimport.SkipReasonInvalid] != 1 {
				t.Errorf("with SkipInvalid: %v %+v", err, res)
			}
		})
	}
}

func TestCSVMissingMappedColumnIsAnError(t *testing.T) {
	_, err := csvimport.CSV(filepath.Join("testdata", "generic", "deals.csv"), csvimport.Mapping{}, csvimport.Options{})
	if !errors.Is(err, csvimport.ErrMissingColumn) || !strings.Contains(err.Error(), `deals.csv:1: missing column "deal_id"`) {
		t.Fatalf("got %v", err)
	}
}
