package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

func dealsCreated(from, n int) *EventBatch {
	var b EventBatch
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		b.Add(&event.Event{Source: "crm/stream", ID: fmt.Sprint(i), Type: event.DealCreated, Time: t0.Add(time.Duration(i) * time.Minute),
			Data: event.Data{DealID: fmt.Sprint("D", i), OwnerID: "U1"}}, "test", 0, int64(i))
	}
	return &b
}

// TestEventStreamStoresItsBatchesAsOneInsert: the batches written to a stream are stored when it is closed, all of
// them, as one part of the events table (ClickHouse gathers the blocks of one insert), not one part per batch; an
// aborted stream stores nothing of what it had not yet handed to the server's parts.
func TestEventStreamStoresItsBatchesAsOneInsert(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.conn.Exec(ctx, "SYSTEM STOP MERGES events"); err != nil {
		t.Fatal(err)
	}
	st, ok, err := s.OpenEventStream(ctx)
	if err != nil || !ok {
		t.Fatalf("OpenEventStream: ok %v, err %v", ok, err)
	}
	const batches, per = 5, 1000
	for i := range batches {
		if err := st.WriteBatch(dealsCreated(i*per, per)); err != nil {
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
	var parts uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 1 {
		t.Fatalf("the stream's %d batches are %d parts of events, want 1", batches, parts)
	}
	var dealEvents uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM deal_events").Scan(&dealEvents); err != nil || dealEvents != batches*per {
		t.Fatalf("deal_events has %d rows (err %v), want %d: the views did not see the stream", dealEvents, err, batches*per)
	}

	aborted, _, err := s.OpenEventStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := aborted.WriteBatch(dealsCreated(batches*per, per)); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if n, err := s.CountEvents(ctx); err != nil || n != batches*per {
		t.Fatalf("after an aborted stream %d events are stored (err %v), want %d", n, err, batches*per)
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
