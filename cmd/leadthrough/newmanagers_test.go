package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/store"
)

// TestNewManagersFlagsAreCheckedBeforeConnecting: --new-managers and --watch-months that do not fit together are
// usage errors (exit 2) caught before any connection (port 1 would refuse it with exit code 1).
func TestNewManagersFlagsAreCheckedBeforeConnecting(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"with months", []string{"--new-managers", "--period", "month"}, "--new-managers is a watch as of --as-of"},
		{"watch months alone", []string{"--watch-months", "6"}, "--watch-months needs --new-managers"},
		{"no months", []string{"--new-managers", "--watch-months", "0"}, "--watch-months must be at least 1"},
		{"months not a number", []string{"--new-managers", "--watch-months", "a year"}, "watch-months"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"indicators", "--clickhouse-addr", "127.0.0.1:1"}, tt.args...)
			if code := run(args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestNewManagersJSONEqualsTheReferenceModel stores a random history with three promotions (one of them ranked as a
// rep, one promoted 3 months before as-of) in the real ClickHouse and checks that `indicators --new-managers --format
// json` is, byte for byte, the reference model's promotions and watch on the same events; then that --watch-months
// leaves the older promotion out, and that the table shows each watched manager's record and periods.
func TestNewManagersJSONEqualsTheReferenceModel(t *testing.T) {
	env := pipelinetest.New(t, "newmanagers")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	evs := scenario.Random(901, asOf)
	stored := make([]store.Stored, len(evs))
	for i, e := range evs {
		stored[i] = store.Stored{Event: e}
	}
	if err := env.Store.InsertEvents(ctx, stored); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database,
		"--as-of", asOf.Format(time.RFC3339), "--new-managers"}

	for _, tt := range []struct {
		months      int
		args        []string
		watched     []string // manager ids, as a sanity check of the scenario and of the filter
		unwatchedID string
	}{
		{indicator.DefaultWatchMonths, nil, []string{"U10", "U4", "U7"}, ""},
		{2, []string{"--watch-months", "2"}, []string{"U10", "U4"}, "U7"},
	} {
		var out bytes.Buffer
		if err := runIndicators(ctx, append(append(flags, tt.args...), "--format", "json"), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		want := referenceWatch(t, evs, asOf, tt.months)
		var ids []string
		for _, p := range want.Promotions {
			ids = append(ids, p.ManagerID)
		}
		if !slices.Equal(ids, tt.watched) || !slices.ContainsFunc(want.Promotions, func(p indicator.Promotion) bool {
			return p.RepRank != nil
		}) {
			t.Fatalf("--watch-months %d: the reference watches %v, want %v with a ranked rep: the scenario changed",
				tt.months, ids, tt.watched)
		}
		var w bytes.Buffer
		enc := json.NewEncoder(&w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if out.String() != w.String() {
			t.Errorf("--watch-months %d: JSON differs from the reference model\ngot:\n%s\nwant:\n%s", tt.months, &out, &w)
		}
		if tt.unwatchedID != "" && strings.Contains(out.String(), `"`+tt.unwatchedID+`"`) {
			t.Errorf("--watch-months %d: %s, promoted 3 months before as-of, is in the output", tt.months, tt.unwatchedID)
		}
		t.Logf("--watch-months %d: %d promotions, %d watch rows equal the reference", tt.months, len(want.Promotions),
			len(want.Watch))
	}

	var table bytes.Buffer
	if err := runIndicators(ctx, flags, &table, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := referenceWatch(t, evs, asOf, indicator.DefaultWatchMonths)
	for _, p := range want.Promotions {
		head := p.ManagerID + " " + p.ManagerName + ": promoted " + p.PromotedAt.Format(time.RFC3339)
		if !strings.Contains(table.String(), head) {
			t.Errorf("table lacks %q", head)
		}
	}
	for _, s := range []string{"rank 1 of", "takeover_rate  median", "coaching_coverage  median",
		"over all managers in (2026-03-01T12:00:00Z, 2026-03-31T12:00:00Z]"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
	t.Logf("table:\n%s", &table)
}

// referenceWatch is what `indicators --new-managers --format json` must print, from the reference model: the watch
// and the promotions of the managers in it.
func referenceWatch(t *testing.T, evs []event.Event, asOf time.Time, months int) watchOutput {
	t.Helper()
	promotions := indicator.ReferencePromotions(evs, asOf)
	rows, err := indicator.Watch(promotions, indicator.Params{AsOf: asOf}, months,
		func(p indicator.Params) ([]indicator.Row, error) { return indicator.Reference(evs, p), nil })
	if err != nil {
		t.Fatal(err)
	}
	out := watchOutput{Promotions: []indicator.Promotion{}, Watch: rows}
	for _, p := range promotions {
		if slices.ContainsFunc(rows, func(r indicator.WatchRow) bool { return r.ManagerID == p.ManagerID }) {
			out.Promotions = append(out.Promotions, p)
		}
	}
	return out
}
