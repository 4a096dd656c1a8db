package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/event"
)

// Stored is an event with where it was read from, for provenance.
type Stored struct {
	Event     event.Event
	Topic     string
	Partition int
	Offset    int64
}

// insertEvents names every column: ClickHouse 18.16 rejects a batch insert without a column list.
const insertEvents = `INSERT INTO events (source, id, type, time, time_ms, user_id, manager_id, name, email, title,
	deal_id, owner_id, previous_owner_id, changed_by, stage, previous_stage, amount, has_amount, currency, outcome,
	activity_id, kind, actor_id, subject_user_ids, duration_minutes, kafka_topic, kafka_partition, kafka_offset,
	ingested_at, ingest_seq)`

// lastSeq is the last ingest_seq handed out by this process.
var lastSeq atomic.Uint64

// nextSeqs reserves n consecutive ingest_seq values and returns the first. They follow the wall clock in
// nanoseconds, so copies of an event written by different processes are ordered by when they were written, and
// they never repeat or go back within a process.
func nextSeqs(n int) uint64 {
	for {
		last := lastSeq.Load()
		first := max(uint64(time.Now().UnixNano()), last+1)
		if lastSeq.CompareAndSwap(last, first+uint64(n)-1) {
			return first
		}
	}
}

// InsertEvents writes one batch. A batch that fails may be retried as a whole: rows are deduplicated by (source, id).
func (s *Store) InsertEvents(ctx context.Context, evs []Stored) error {
	if len(evs) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("prepare insert of %d events: %w", len(evs), err)
	}
	defer batch.Abort()
	now := time.Now().UTC()
	seq := nextSeqs(len(evs))
	for i, st := range evs {
		if err := batch.Append(append(eventRow(st, now), seq+uint64(i))...); err != nil {
			return fmt.Errorf("append event %s/%s to batch: %w", st.Event.Source, st.Event.ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert batch of %d into events: %w", len(evs), err)
	}
	return nil
}

// eventRow is the values of insertEvents' columns for one event, up to ingested_at.
func eventRow(st Stored, now time.Time) []any {
	e, d := st.Event, st.Event.Data
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
	// One spare slot: InsertEvents appends ingest_seq without copying the row again.
	return append(make([]any, 0, 30), e.Source, e.ID, e.Type, e.Time.UTC(), e.Time.UnixMilli(), d.UserID, manager, d.Name,
		d.Email, d.Title, d.DealID, d.OwnerID, d.PreviousOwnerID, d.ChangedBy, d.Stage, d.PreviousStage, amount,
		hasAmount, d.Currency, d.Outcome, d.ActivityID, d.Kind, d.ActorID, subjects, duration, st.Topic,
		int32(st.Partition), st.Offset, now)
}

// CountEvents returns the number of distinct (source, id) events stored.
func (s *Store) CountEvents(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// CountEventsIngestedSince returns the number of distinct events whose latest copy was inserted at or after t
// (second resolution): how far an ingest run has got.
func (s *Store) CountEventsIngestedSince(ctx context.Context, t time.Time) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM events FINAL WHERE ingested_at >= @since",
		clickhouse.Named("since", t.UTC().Truncate(time.Second))).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ingested events: %w", err)
	}
	return n, nil
}
