package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/dashboards"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// TestDealsHandedToManagerRunsOnClickHouse runs the dashboard's ClickHouse SQL, as Grafana's ClickHouse plugin would
// after expanding its macros, on a real server with the real schema: it must parse on the server the tests use
// (18.16), and list the owner changes to the selected manager in the time range, deduplicated, with the previous
// owner's name and the deal's status.
func TestDealsHandedToManagerRunsOnClickHouse(t *testing.T) {
	addr := testenv.ClickHouse(t)
	ctx := context.Background()
	cfg := store.Config{Addr: addr, Database: fmt.Sprintf("lt_test_dashboards_%d", time.Now().UnixNano()%1_000_000)}
	if err := store.CreateDatabase(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.DropDatabase(context.Background(), cfg.Database)
		s.Close()
	})
	if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}

	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	amount := 1000.0
	var evs []store.Stored
	n := 0
	add := func(typ string, ts time.Time, d event.Data) {
		n++
		evs = append(evs, store.Stored{Event: event.Event{Source: "crm/test", ID: fmt.Sprintf("e%d", n), Type: typ, Time: ts, Data: d}})
	}
	add("user.upserted", at(0), event.Data{UserID: "U-1", Name: "Ada Lovelace"})
	add("user.upserted", at(0), event.Data{UserID: "U-10", Name: "Rita Old"})
	add("user.upserted", at(1), event.Data{UserID: "U-10", Name: "Rita Rep"}) // the latest name wins
	add("deal.created", at(1), event.Data{DealID: "D-1", OwnerID: "U-10", Amount: &amount})
	add("deal.created", at(1), event.Data{DealID: "D-2", OwnerID: "U-10"})
	add("deal.owner_changed", at(2), event.Data{DealID: "D-1", OwnerID: "U-1", PreviousOwnerID: "U-10", ChangedBy: "U-1"})
	add("deal.owner_changed", at(3), event.Data{DealID: "D-2", OwnerID: "U-1", PreviousOwnerID: "U-10", ChangedBy: "U-1"})
	add("deal.closed", at(4), event.Data{DealID: "D-1", Outcome: "won", Amount: &amount})
	add("deal.owner_changed", at(3), event.Data{DealID: "D-3", OwnerID: "U-2", PreviousOwnerID: "U-11"}) // another manager
	add("deal.owner_changed", at(30), event.Data{DealID: "D-4", OwnerID: "U-1"})                         // after the range
	evs = append(evs, evs[5])                                                                            // a redelivery
	if err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}

	sql := expandMacros(t, dealsSQL(t), at(0), at(24), "U-1")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: cfg.Database}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("dashboard SQL fails on ClickHouse: %v\n%s", err, sql)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var changedAt time.Time
		var deal, owner, prev, prevName, by, status string
		if err := rows.Scan(&changedAt, &deal, &owner, &prev, &prevName, &by, &status); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s<-%s(%s) by %s: %s", changedAt.UTC().Format("15:04"), deal, owner, prev, prevName, by, status))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"12:00 D-2 U-1<-U-10(Rita Rep) by U-1: open",
		"11:00 D-1 U-1<-U-10(Rita Rep) by U-1: won",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// dealsSQL is the raw SQL of the dashboard's only ClickHouse query.
func dealsSQL(t *testing.T) string {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(render(t, dashboards.Files[0]), &d); err != nil {
		t.Fatal(err)
	}
	var sqls []string
	walkPanels(d, func(_ string, p map[string]any) {
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			if dig(tg, "datasource", "type") == "grafana-clickhouse-datasource" {
				sqls = append(sqls, dig(tg, "rawSql").(string))
			}
		}
	})
	if len(sqls) != 1 {
		t.Fatalf("found %d ClickHouse queries, want 1", len(sqls))
	}
	return sqls[0]
}

// expandMacros does what Grafana and the ClickHouse plugin do before sending the query: the $__timeFilter macro
// becomes a DateTime range, and the manager_id variable a quoted list.
func expandMacros(t *testing.T, sql string, from, to time.Time, managerIDs ...string) string {
	t.Helper()
	quoted := make([]string, len(managerIDs))
	for i, id := range managerIDs {
		quoted[i] = "'" + id + "'"
	}
	sql = strings.ReplaceAll(sql, "${manager_id:singlequote}", strings.Join(quoted, ","))
	sql = strings.ReplaceAll(sql, "$__timeFilter(time)",
		fmt.Sprintf("time >= toDateTime(%d) AND time <= toDateTime(%d)", from.Unix(), to.Unix()))
	if strings.Contains(sql, "$") {
		t.Fatalf("the test does not expand every macro or variable of the query:\n%s", sql)
	}
	return sql
}
