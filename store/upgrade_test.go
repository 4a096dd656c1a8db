package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// TestMigrateUpgradesAnInstallWithEventsInPlace starts from the schema before the derived tables (migration 2),
// stores half of each history there, upgrades, then stores the other half and redelivers some of the first: the
// indicators must equal the reference model's on the whole history, and no event may be lost or doubled.
func TestMigrateUpgradesAnInstallWithEventsInPlace(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var before, after, all []event.Event
	for seed := range uint64(40) {
		evs := namespace(scenario.Random(seed+1, asOf), seed)
		// Alternate events between the two halves, so that each deal's history spans the upgrade.
		for i, e := range evs {
			if i%2 == 0 {
				before = append(before, e)
			} else {
				after = append(after, e)
			}
		}
		all = append(all, evs...)
	}
	redelivered := before[:len(before)/3]
	windows := []indicator.Params{
		{AsOf: asOf},
		{AsOf: asOf.Add(-20 * 24 * time.Hour), Window: 10 * 24 * time.Hour},
	}
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			s := newEngineStoreAt(t, e, 2)
			insertBeforeSeq(t, s, before)
			applied, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 || applied[0].Version != 3 {
				t.Fatalf("upgrade applied %v, want migrations from 3 on", applied)
			}
			insert(t, s, after)
			insert(t, s, redelivered)
			n, err := s.CountEvents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			distinct := map[[2]string]bool{}
			for _, e := range all {
				distinct[[2]string{e.Source, e.ID}] = true
			}
			if n != uint64(len(distinct)) {
				t.Fatalf("%d events stored, want %d", n, len(distinct))
			}
			matchReferenceAfterUpgrade(t, s, all, windows)
		})
	}
}

// TestTypedTablesTakeOverFromEventsDuringARollingUpgrade starts from the schema of the release before migration 7
// (events plus views), stores a third of each history the way that release did, upgrades, then stores a third
// the new way while a worker of the earlier release keeps writing the last third into events, and redelivers some
// of the first: the indicators must equal the reference model's, every event must be counted once, and every
// stored deal handover must carry the columns the earlier views did not copy.
func TestTypedTablesTakeOverFromEventsDuringARollingUpgrade(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	windows := []indicator.Params{{AsOf: asOf}, {AsOf: asOf.Add(-20 * 24 * time.Hour), Window: 10 * 24 * time.Hour}}
	var before, after, legacy, all []event.Event
	for seed := range uint64(30) {
		evs := namespace(scenario.Random(seed+1, asOf), seed)
		for i, e := range evs {
			switch i % 3 {
			case 0:
				before = append(before, e)
			case 1:
				after = append(after, e)
			default:
				legacy = append(legacy, e)
			}
		}
		all = append(all, evs...)
	}
	// The handovers and, of them, those that name the previous owner.
	distinct, handovers, named := map[[2]string]bool{}, map[[2]string]bool{}, map[[2]string]bool{}
	for _, e := range all {
		k := [2]string{e.Source, e.ID}
		distinct[k] = true
		if e.Type == event.DealOwnerChanged {
			handovers[k] = true
			if e.Data.PreviousOwnerID != "" {
				named[k] = true
			}
		}
	}
	if len(named) == 0 {
		t.Fatal("no deal changes owner: degenerate scenarios")
	}
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			s := newEngineStoreAt(t, e, 6)
			insertIntoEvents(t, s, before, true)
			applied, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != 1 || applied[0].Version != 7 {
				t.Fatalf("upgrade applied %v, want migration 7", applied)
			}
			insert(t, s, after)
			insertIntoEvents(t, s, legacy, true)
			insert(t, s, before[:len(before)/3])
			n, err := s.CountEvents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != uint64(len(distinct)) {
				t.Fatalf("%d events stored, want %d", n, len(distinct))
			}
			var stored, withPrevious, withIngestTime uint64
			if err := s.conn.QueryRow(ctx, `SELECT count(), countIf(previous_owner_id != ''),
				countIf(ingested_at > toDateTime(0)) FROM deal_events FINAL
				WHERE type = 'deal.owner_changed'`).Scan(&stored, &withPrevious, &withIngestTime); err != nil {
				t.Fatal(err)
			}
			if stored != uint64(len(handovers)) || withPrevious != uint64(len(named)) || withIngestTime != stored {
				t.Fatalf("deal_events FINAL has %d handovers, %d naming the previous owner, %d with their ingest time; "+
					"want %d, %d, all", stored, withPrevious, withIngestTime, len(handovers), len(named))
			}
			matchReferenceAfterUpgrade(t, s, all, windows)
		})
	}
}

// matchReferenceAfterUpgrade checks the indicators of each window against the reference model on all.
func matchReferenceAfterUpgrade(t *testing.T, s *Store, all []event.Event, windows []indicator.Params) {
	t.Helper()
	for _, p := range windows {
		got, err := s.Indicators(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		want := indicator.Reference(all, p)
		if len(want) == 0 {
			t.Fatal("the reference has no managers: degenerate scenarios")
		}
		if diff := compareRows(got, want); diff != "" {
			t.Fatalf("as of %s: SQL after the upgrade differs from the reference:\n%s", p.AsOf, diff)
		}
	}
}

// legacyEventsColumns are the columns of the events table that earlier releases inserted into (before migration
// 7, which stores each event in its type's table).
const legacyEventsColumns = `source, id, type, time, time_ms, user_id, manager_id, name, email, title, deal_id, owner_id,
	previous_owner_id, changed_by, stage, previous_stage, amount, has_amount, currency, outcome, activity_id, kind,
	actor_id, subject_user_ids, duration_minutes, kafka_topic, kafka_partition, kafka_offset, ingested_at`

// insertBeforeSeq inserts events the way leadthrough did before migration 3 (no ingest_seq column).
func insertBeforeSeq(t *testing.T, s *Store, evs []event.Event) {
	t.Helper()
	insertIntoEvents(t, s, evs, false)
}

// insertIntoEvents inserts events into the events table the way a release before migration 7 did, with an
// ingest_seq when withSeq, and Kafka offsets from 0.
func insertIntoEvents(t *testing.T, s *Store, evs []event.Event, withSeq bool) {
	t.Helper()
	ctx := context.Background()
	columns := legacyEventsColumns
	if withSeq {
		columns += ", ingest_seq"
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO events ("+columns+")")
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Abort()
	first := nextSeqs(max(len(evs), 1))
	for i, e := range evs {
		d := e.Data
		var manager string
		if d.ManagerID != nil {
			manager = *d.ManagerID
		}
		var amount, duration float64
		var hasAmount uint8
		if d.Amount != nil {
			amount, hasAmount = *d.Amount, 1
		}
		if d.DurationMinutes != nil {
			duration = *d.DurationMinutes
		}
		subjects := d.SubjectUserIDs
		if subjects == nil {
			subjects = []string{}
		}
		row := []any{e.Source, e.ID, e.Type, e.Time, e.Time.UnixMilli(), d.UserID, manager, d.Name, d.Email, d.Title,
			d.DealID, d.OwnerID, d.PreviousOwnerID, d.ChangedBy, d.Stage, d.PreviousStage, amount, hasAmount,
			d.Currency, d.Outcome, d.ActivityID, d.Kind, d.ActorID, subjects, duration, "test", int32(0), int64(i),
			time.Now()}
		if withSeq {
			row = append(row, first+uint64(i))
		}
		if err := batch.Append(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestOldAttributionRunsAreDroppedButTheLatestPerWindowStays: deal_attribution keeps recent runs and, whatever
// their age, the latest run of each window length (for Grafana); everything else is dropped.
func TestOldAttributionRunsAreDroppedButTheLatestPerWindowStays(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	evs := namespace(scenario.Random(3, asOf), 3)
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		insert(t, s, evs)
		var runs []Run
		for _, p := range []indicator.Params{
			{AsOf: asOf},
			{AsOf: asOf.Add(-time.Hour)},
			{AsOf: asOf, Window: 10 * 24 * time.Hour},
			{AsOf: asOf.Add(-time.Hour), Window: 10 * 24 * time.Hour},
		} {
			run, err := s.Attribute(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if run.Deals == 0 {
				t.Fatal("a run without deals: the scenario is degenerate")
			}
			runs = append(runs, run)
		}
		stored := func() map[uint64]bool {
			rows, err := s.conn.Query(ctx, "SELECT DISTINCT run_id FROM deal_attribution")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[uint64]bool{}
			for rows.Next() {
				var id uint64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				out[id] = true
			}
			return out
		}
		if got := stored(); len(got) != 4 {
			t.Fatalf("%d runs stored right after computing 4, want all 4 (they are recent)", len(got))
		}
		if err := s.pruneRuns(ctx, time.Now().Add(RunRetention+time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := stored()
		if len(got) != 2 || !got[runs[1].ID] || !got[runs[3].ID] {
			t.Fatalf("runs left %v, want the latest of each window: %d and %d", got, runs[1].ID, runs[3].ID)
		}
		// The kept run still answers.
		deals, err := s.RunDeals(ctx, runs[3])
		if err != nil || len(deals) == 0 {
			t.Fatalf("the latest run lost its deals: %d deals, %v", len(deals), err)
		}
	})
}

// TestIndicatorHistoryKeepsOnlyTheRetainedMonths: saving a refresh drops the months of team_indicators that ended
// more than HistoryRetention before its as-of, and keeps the rest.
func TestIndicatorHistoryKeepsOnlyTheRetainedMonths(t *testing.T) {
	row := []indicator.Row{{ManagerID: "M", ManagerName: "M"}}
	latest := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	cutoff := latest.Add(-HistoryRetention) // 2025-02-24
	old := time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
	forEachEngine(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, asOf := range []time.Time{old, cutoff, latest} {
			if err := s.SaveIndicators(ctx, indicator.Params{AsOf: asOf}, row); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := s.conn.Query(ctx, "SELECT toString(toYYYYMM(as_of)) FROM team_indicators ORDER BY as_of")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var months []string
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				t.Fatal(err)
			}
			months = append(months, m)
		}
		if fmt.Sprint(months) != "[202502 202603]" {
			t.Fatalf("months kept %v, want [202502 202603]: January 2025 ended before the cutoff %s, February did not",
				months, cutoff)
		}
	})
}

// TestLaterCopiesMovedInTimeReplaceTheEarlierOnes redelivers, in a later batch, copies of some events with their
// time moved (by up to 40 days either way, across windows and past as_of): deal events, activities and reporting
// lines alike. The derived tables are ordered by event time and hold both copies, so this checks that every query
// keeps only the later copy, as `events` does, and equals the reference model (which applies copies in arrival
// order).
func TestLaterCopiesMovedInTimeReplaceTheEarlierOnes(t *testing.T) {
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var first, moved, all []event.Event
	kinds := map[string]int{}
	for seed := range uint64(40) {
		evs := namespace(scenario.Random(seed+100, asOf), seed)
		first = append(first, evs...)
		for i, e := range evs {
			if i%5 != 0 {
				continue
			}
			c := e
			c.Time = e.Time.Add(time.Duration(int64(i*7919)%(80*24)-40*24) * time.Hour)
			moved = append(moved, c)
			kinds[e.Type]++
		}
	}
	for _, typ := range []string{event.DealClosed, event.DealOwnerChanged, event.ActivityLogged, event.UserManagerChanged} {
		if kinds[typ] == 0 {
			t.Fatalf("no %s was moved: the scenarios do not exercise it (moved: %v)", typ, kinds)
		}
	}
	all = append(append(all, first...), moved...)
	windows := []indicator.Params{
		{AsOf: asOf},
		{AsOf: asOf.Add(-25 * 24 * time.Hour), Window: 15 * 24 * time.Hour},
	}
	forEachEngine(t, func(t *testing.T, s *Store) {
		insert(t, s, first)
		insert(t, s, moved)
		for _, p := range windows {
			got, err := s.Indicators(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			want := indicator.Reference(all, p)
			if diff := compareRows(got, want); diff != "" {
				t.Fatalf("as of %s: SQL differs from the reference:\n%s", p.AsOf, diff)
			}
		}
	})
}
