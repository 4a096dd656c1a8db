package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
	var b EventBatch
	for i := range evs {
		b.Add(&evs[i].Event, evs[i].Topic, evs[i].Partition, evs[i].Offset)
	}
	return s.InsertBatch(ctx, &b)
}

// EventBatch is a batch of events for InsertBatch, built column by column: one slice per column of the events
// table, handed to the driver whole (clickhouse-go's columnar append) instead of one []any per row. Reset lets it be
// reused for the next batch. Its zero value is an empty batch.
type EventBatch struct {
	source, id, typ                              []string
	timeS, timeMS                                []int64 // event time in Unix seconds (the DateTime) and milliseconds
	userID, managerID, name, email, title        []string
	dealID, ownerID, previousOwnerID, changedBy  []string
	stage, previousStage                         []string
	amount                                       []float64
	hasAmount                                    []uint8
	currency, outcome, activityID, kind, actorID []string
	subjectUserIDs                               [][]string
	durationMinutes                              []float64
	kafkaTopic                                   []string
	kafkaPartition                               []int32
	kafkaOffset                                  []int64

	firstSeq uint64 // the ingest_seq of the first row, once sealed; 0 before

	// Buffers for the columns appendColumns fills in as it sends b, reused from batch to batch.
	ingestedAt []int64
	seqs       []uint64
}

// Len is the number of events in b.
func (b *EventBatch) Len() int { return len(b.id) }

// Add appends one event and where it was read from (empty topic, partition and offset 0 when it was not read from
// Kafka). Columns that do not apply to the event's type get their type's default. e is read, not kept: an event is
// some 600 bytes, too many to copy per row.
func (b *EventBatch) Add(e *event.Event, topic string, partition int, offset int64) {
	d := &e.Data
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
	b.source = append(b.source, e.Source)
	b.id = append(b.id, e.ID)
	b.typ = append(b.typ, e.Type)
	b.timeS = append(b.timeS, e.Time.Unix())
	b.timeMS = append(b.timeMS, e.Time.UnixMilli())
	b.userID = append(b.userID, d.UserID)
	b.managerID = append(b.managerID, manager)
	b.name = append(b.name, d.Name)
	b.email = append(b.email, d.Email)
	b.title = append(b.title, d.Title)
	b.dealID = append(b.dealID, d.DealID)
	b.ownerID = append(b.ownerID, d.OwnerID)
	b.previousOwnerID = append(b.previousOwnerID, d.PreviousOwnerID)
	b.changedBy = append(b.changedBy, d.ChangedBy)
	b.stage = append(b.stage, d.Stage)
	b.previousStage = append(b.previousStage, d.PreviousStage)
	b.amount = append(b.amount, amount)
	b.hasAmount = append(b.hasAmount, hasAmount)
	b.currency = append(b.currency, d.Currency)
	b.outcome = append(b.outcome, d.Outcome)
	b.activityID = append(b.activityID, d.ActivityID)
	b.kind = append(b.kind, d.Kind)
	b.actorID = append(b.actorID, d.ActorID)
	b.subjectUserIDs = append(b.subjectUserIDs, subjects)
	b.durationMinutes = append(b.durationMinutes, duration)
	b.kafkaTopic = append(b.kafkaTopic, topic)
	b.kafkaPartition = append(b.kafkaPartition, int32(partition))
	b.kafkaOffset = append(b.kafkaOffset, offset)
}

// Seal fixes the ingest_seq of b's rows: they come after those of every batch sealed before it and before those of
// every batch sealed after it, whatever order the inserts finish in, and a retried insert of b keeps them. (The
// latest copy of an event by ingest_seq is the one queries read.) InsertBatch seals a batch that is not sealed yet;
// Add after Seal is a mistake.
func (b *EventBatch) Seal() {
	if b.firstSeq == 0 && b.Len() > 0 {
		b.firstSeq = nextSeqs(b.Len())
	}
}

// Reset empties b, keeping its memory, and drops its references to the events' strings.
func (b *EventBatch) Reset() {
	b.firstSeq = 0
	for _, c := range b.stringColumns() {
		clear(*c)
		*c = (*c)[:0]
	}
	clear(b.subjectUserIDs)
	b.subjectUserIDs = b.subjectUserIDs[:0]
	b.timeS, b.timeMS, b.amount, b.hasAmount = b.timeS[:0], b.timeMS[:0], b.amount[:0], b.hasAmount[:0]
	b.durationMinutes, b.kafkaPartition, b.kafkaOffset = b.durationMinutes[:0], b.kafkaPartition[:0], b.kafkaOffset[:0]
}

func (b *EventBatch) stringColumns() []*[]string {
	return []*[]string{&b.source, &b.id, &b.typ, &b.userID, &b.managerID, &b.name, &b.email, &b.title, &b.dealID,
		&b.ownerID, &b.previousOwnerID, &b.changedBy, &b.stage, &b.previousStage, &b.currency, &b.outcome,
		&b.activityID, &b.kind, &b.actorID, &b.kafkaTopic}
}

// columns are b's columns in the order of insertEvents, up to kafka_offset.
func (b *EventBatch) columns() []any {
	return []any{b.source, b.id, b.typ, b.timeS, b.timeMS, b.userID, b.managerID, b.name, b.email, b.title, b.dealID,
		b.ownerID, b.previousOwnerID, b.changedBy, b.stage, b.previousStage, b.amount, b.hasAmount, b.currency,
		b.outcome, b.activityID, b.kind, b.actorID, b.subjectUserIDs, b.durationMinutes, b.kafkaTopic,
		b.kafkaPartition, b.kafkaOffset}
}

// InsertBatch writes b in one insert, sealing it first (Seal). A batch that fails may be retried as a whole: rows
// are deduplicated by (source, id). b's rows are not modified.
func (s *Store) InsertBatch(ctx context.Context, b *EventBatch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("prepare insert of %d events: %w", n, err)
	}
	defer batch.Abort()
	if err := appendColumns(batch, b); err != nil {
		return err
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert batch of %d into events: %w", n, err)
	}
	return nil
}

// EventStream is one insert into the events table that takes many batches, each sent as its own block as soon as
// it is written: ClickHouse gathers the blocks of one insert into parts of up to streamBlockRows rows, so a long
// backlog is stored as a few large parts per table instead of one small part per batch (every part is two files
// per column in the events table and in each derived table, and merges rewrite them), and the driver reuses its
// column buffers from block to block. Nothing written to a stream is certain to be stored until Close returns
// nil; after an error the whole stream is to be written again (rows are deduplicated by (source, id)).
type EventStream struct {
	batch driver.Batch
	rows  int
}

// streamBlockRows is the most rows ClickHouse gathers from a stream's blocks before it writes them as parts (its
// own default, min_insert_block_size_rows, is a million): the server writes while more blocks arrive, so Close does
// not have to wait for a whole stream's worth of work, and the parts are still far larger than one batch.
const streamBlockRows = 262144

// OpenEventStream starts an insert for WriteBatch. It reports false with a ClickHouse connection over HTTP, whose
// driver cannot send an insert in several blocks (use InsertBatch per batch there).
func (s *Store) OpenEventStream(ctx context.Context) (*EventStream, bool, error) {
	if s.cfg.Protocol == ProtocolHTTP {
		return nil, false, nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"min_insert_block_size_rows": streamBlockRows,
	}))
	batch, err := s.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return nil, true, fmt.Errorf("prepare insert of events: %w", err)
	}
	return &EventStream{batch: batch}, true, nil
}

// Rows is the number of rows written to st so far.
func (st *EventStream) Rows() int { return st.rows }

// WriteBatch sends b as the next block of the insert, sealing it first (EventBatch.Seal). b may be reset and
// reused once WriteBatch returns.
func (st *EventStream) WriteBatch(b *EventBatch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if err := appendColumns(st.batch, b); err != nil {
		return err
	}
	if err := st.batch.Flush(); err != nil {
		return fmt.Errorf("send %d events to ClickHouse: %w", n, err)
	}
	st.rows += n
	return nil
}

// Close ends the insert: nil means every row written to st is stored.
func (st *EventStream) Close() error {
	if err := st.batch.Send(); err != nil {
		return fmt.Errorf("insert of %d events: %w", st.rows, err)
	}
	return nil
}

// Abort gives up the insert; its rows may or may not be stored.
func (st *EventStream) Abort() { st.batch.Abort() }

// appendColumns seals b and appends its rows to batch, column by column. DateTime columns go as Unix seconds
// ([]int64): unlike []time.Time, whose every element holds a pointer, the collector has nothing to scan in them.
func appendColumns(batch driver.Batch, b *EventBatch) error {
	n := b.Len()
	now := time.Now().Unix()
	b.Seal()
	b.ingestedAt, b.seqs = b.ingestedAt[:0], b.seqs[:0]
	for i := range n {
		b.ingestedAt = append(b.ingestedAt, now)
		b.seqs = append(b.seqs, b.firstSeq+uint64(i))
	}
	for i, col := range append(b.columns(), b.ingestedAt, b.seqs) {
		if err := appendColumn(batch.Column(i), col); err != nil {
			return fmt.Errorf("append column %d of %d events: %w", i+1, n, err)
		}
	}
	return nil
}

// appendColumn appends a column's values. An array column goes row by row: clickhouse-go appends a whole [][]string
// through reflection, element by element, which cost more than the rest of the column's way to ClickHouse.
func appendColumn(c driver.BatchColumn, values any) error {
	rows, ok := values.([][]string)
	if !ok {
		return c.Append(values)
	}
	for _, row := range rows {
		if err := c.AppendRow(row); err != nil {
			return err
		}
	}
	return nil
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
