package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// mixedEvents are n events numbered from from, of the three tables' types in turn: a deal created, an activity
// logged, a user upserted.
func mixedEvents(from, n int) *EventBatch {
	var b EventBatch
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		e := event.Event{Source: "crm/stream", ID: fmt.Sprint(i), Time: t0.Add(time.Duration(i) * time.Minute)}
		switch i % 3 {
		case 0:
			e.Type, e.Data = event.DealCreated, event.Data{DealID: fmt.Sprint("D", i), OwnerID: "U1"}
		case 1:
			e.Type, e.Data = event.ActivityLogged, event.Data{ActivityID: fmt.Sprint("A", i), Kind: "call_review",
				ActorID: "M1", SubjectUserIDs: []string{"U1"}}
		default:
			e.Type, e.Data = event.UserUpserted, event.Data{UserID: fmt.Sprint("U", i), Name: "Rep"}
		}
		b.Add(&e, "test", 0, int64(i))
	}
	return &b
}

// eventTables are the tables a stream inserts into, and the tables their views fill.
var eventTables, spanTables = []string{"deal_events", "activities", "user_events"}, []string{"deal_spans", "activity_spans"}

// TestEventStreamStoresItsBatchesAsOneInsert: the batches written to a stream are stored when it is closed, all of
// them, as one part per table (ClickHouse gathers the blocks of one insert), not one part per batch; the spans
// follow; a stream aborted and written again stores its events once.
func TestEventStreamStoresItsBatchesAsOneInsert(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	for _, table := range append(eventTables, spanTables...) {
		if err := s.conn.Exec(ctx, "SYSTEM STOP MERGES "+table); err != nil {
			t.Fatal(err)
		}
	}
	st, ok, err := s.OpenEventStream(ctx)
	if err != nil || !ok {
		t.Fatalf("OpenEventStream: ok %v, err %v", ok, err)
	}
	const batches, per = 5, 999
	for i := range batches {
		if err := st.WriteBatch(mixedEvents(i*per, per)); err != nil {
			t.Fatal(err)
		}
	}
	if st.Rows() != batches*per {
		t.Fatalf("Rows %d, want %d", st.Rows(), batches*per)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != batches*per {
		t.Fatalf("stored %d events (err %v), want %d", n, err, batches*per)
	}
	for _, table := range append(eventTables, spanTables...) {
		var parts, rows uint64
		if err := s.conn.QueryRow(ctx, "SELECT count(), sum(rows) FROM system.parts "+
			"WHERE database = currentDatabase() AND table = @table AND active", clickhouse.Named("table", table)).Scan(&parts, &rows); err != nil {
			t.Fatal(err)
		}
		if parts != 1 || rows != batches*per/3 {
			t.Errorf("the stream's %d batches are %d parts of %s with %d rows, want 1 part of %d", batches, parts, table,
				rows, batches*per/3)
		}
	}

	// An aborted stream may or may not leave its rows stored (ClickHouse can take a dropped connection for the end
	// of an insert): the worker writes the whole unit again, and the copies collapse.
	aborted, _, err := s.OpenEventStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := aborted.WriteBatch(mixedEvents(batches*per, per)); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	again, _, err := s.OpenEventStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.WriteBatch(mixedEvents(batches*per, per)); err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != (batches+1)*per {
		t.Fatalf("after an aborted stream written again %d events are stored (err %v), want %d", n, err, (batches+1)*per)
	}
}

// TestEventStreamIsNotOfferedOverHTTP: clickhouse-go cannot send an insert over HTTP in several blocks (it would hold
// the whole stream in memory), so the sink writes batch by batch there.
func TestEventStreamIsNotOfferedOverHTTP(t *testing.T) {
	for _, e := range testenv.ClickHouseEngines(t) {
		if e.Protocol != ProtocolHTTP {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			st, ok, err := newEngineStore(t, e).OpenEventStream(context.Background())
			if st != nil || ok || err != nil {
				t.Fatalf("OpenEventStream over HTTP: %v, %v, %v; want nil, false, nil", st, ok, err)
			}
		})
	}
}
