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

// Each event is stored once, in the table of its type (migration 0007): deal events in deal_events, activities in
// activities, the users' events in user_events. The inserts name every column: ClickHouse 18.16 rejects a batch
// insert without a column list. commonColumns come first in each, in this order (rowsCommon.columns).
const commonColumns = "source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq"

const (
	insertDealEvents = "INSERT INTO deal_events (" + commonColumns + ", deal_id, owner_id, previous_owner_id, " +
		"changed_by, stage, previous_stage, amount, has_amount, currency, outcome)"
	insertActivities = "INSERT INTO activities (" + commonColumns + ", activity_id, kind, actor_id, " +
		"subject_user_ids, duration_minutes, deal_id)"
	insertUserEvents = "INSERT INTO user_events (" + commonColumns + ", user_id, manager_id, name, email, title)"
)

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

// EventBatch is a batch of events for InsertBatch, built column by column: one slice per column of the table each
// event goes to, handed to the driver whole (clickhouse-go's columnar append) instead of one []any per row. Reset
// lets it be reused for the next batch. Its zero value is an empty batch.
type EventBatch struct {
	deals      dealRows
	activities activityRows
	users      userRows

	firstSeq uint64 // the ingest_seq of the first row, once sealed; 0 before
}

// tableRows are the rows of a batch bound for one table.
type tableRows interface {
	common() *rowsCommon
	insert() string // the INSERT statement, columns named
	table() string
	columns() []any // the columns after commonColumns, in the order of insert()
	reset()
}

// tables are b's rows by table, in the order their ingest_seq values are handed out.
func (b *EventBatch) tables() [3]tableRows { return [3]tableRows{&b.deals, &b.activities, &b.users} }

// rowsCommon are the columns every table has.
type rowsCommon struct {
	source, id, typ []string
	timeS, timeMS   []int64 // event time in Unix seconds (the DateTime) and milliseconds
	kafkaTopic      []string
	kafkaPartition  []int32
	kafkaOffset     []int64

	// Filled in as the rows are sent, reused from batch to batch.
	ingestedAt []int64
	seqs       []uint64
}

func (c *rowsCommon) add(e *event.Event, topic string, partition int, offset int64) {
	c.source = append(c.source, e.Source)
	c.id = append(c.id, e.ID)
	c.typ = append(c.typ, e.Type)
	c.timeS = append(c.timeS, e.Time.Unix())
	c.timeMS = append(c.timeMS, e.Time.UnixMilli())
	c.kafkaTopic = append(c.kafkaTopic, topic)
	c.kafkaPartition = append(c.kafkaPartition, int32(partition))
	c.kafkaOffset = append(c.kafkaOffset, offset)
}

func (c *rowsCommon) len() int { return len(c.id) }

func (c *rowsCommon) common() *rowsCommon { return c }

// columns are the common columns in the order of commonColumns; ingestedAt and seqs must be filled in.
func (c *rowsCommon) columns() []any {
	return []any{c.source, c.id, c.typ, c.timeS, c.timeMS, c.kafkaTopic, c.kafkaPartition, c.kafkaOffset,
		c.ingestedAt, c.seqs}
}

func (c *rowsCommon) reset() {
	resetStrings(&c.source, &c.id, &c.typ, &c.kafkaTopic)
	c.timeS, c.timeMS, c.kafkaPartition, c.kafkaOffset = c.timeS[:0], c.timeMS[:0], c.kafkaPartition[:0], c.kafkaOffset[:0]
}

// resetStrings empties string columns, keeping their memory and dropping their references to the events' strings.
func resetStrings(cols ...*[]string) {
	for _, c := range cols {
		clear(*c)
		*c = (*c)[:0]
	}
}

type dealRows struct {
	rowsCommon
	dealID, ownerID, previousOwnerID, changedBy, stage, previousStage []string
	amount                                                            []float64
	hasAmount                                                         []uint8
	currency, outcome                                                 []string
}

func (r *dealRows) insert() string { return insertDealEvents }
func (r *dealRows) table() string  { return "deal_events" }

func (r *dealRows) columns() []any {
	return []any{r.dealID, r.ownerID, r.previousOwnerID, r.changedBy, r.stage, r.previousStage, r.amount,
		r.hasAmount, r.currency, r.outcome}
}

func (r *dealRows) add(d *event.Data) {
	var amount float64
	var hasAmount uint8
	if d.Amount != nil {
		amount, hasAmount = *d.Amount, 1
	}
	r.dealID = append(r.dealID, d.DealID)
	r.ownerID = append(r.ownerID, d.OwnerID)
	r.previousOwnerID = append(r.previousOwnerID, d.PreviousOwnerID)
	r.changedBy = append(r.changedBy, d.ChangedBy)
	r.stage = append(r.stage, d.Stage)
	r.previousStage = append(r.previousStage, d.PreviousStage)
	r.amount = append(r.amount, amount)
	r.hasAmount = append(r.hasAmount, hasAmount)
	r.currency = append(r.currency, d.Currency)
	r.outcome = append(r.outcome, d.Outcome)
}

func (r *dealRows) reset() {
	r.rowsCommon.reset()
	resetStrings(&r.dealID, &r.ownerID, &r.previousOwnerID, &r.changedBy, &r.stage, &r.previousStage, &r.currency,
		&r.outcome)
	r.amount, r.hasAmount = r.amount[:0], r.hasAmount[:0]
}

type activityRows struct {
	rowsCommon
	activityID, kind, actorID []string
	subjectUserIDs            [][]string
	durationMinutes           []float64
	dealID                    []string
}

func (r *activityRows) insert() string { return insertActivities }
func (r *activityRows) table() string  { return "activities" }

func (r *activityRows) columns() []any {
	return []any{r.activityID, r.kind, r.actorID, r.subjectUserIDs, r.durationMinutes, r.dealID}
}

func (r *activityRows) add(d *event.Data) {
	var duration float64
	if d.DurationMinutes != nil {
		duration = *d.DurationMinutes
	}
	subjects := d.SubjectUserIDs
	if subjects == nil {
		subjects = []string{}
	}
	r.activityID = append(r.activityID, d.ActivityID)
	r.kind = append(r.kind, d.Kind)
	r.actorID = append(r.actorID, d.ActorID)
	r.subjectUserIDs = append(r.subjectUserIDs, subjects)
	r.durationMinutes = append(r.durationMinutes, duration)
	r.dealID = append(r.dealID, d.DealID)
}

func (r *activityRows) reset() {
	r.rowsCommon.reset()
	resetStrings(&r.activityID, &r.kind, &r.actorID, &r.dealID)
	clear(r.subjectUserIDs)
	r.subjectUserIDs, r.durationMinutes = r.subjectUserIDs[:0], r.durationMinutes[:0]
}

type userRows struct {
	rowsCommon
	userID, managerID, name, email, title []string
}

func (r *userRows) insert() string { return insertUserEvents }
func (r *userRows) table() string  { return "user_events" }

func (r *userRows) columns() []any { return []any{r.userID, r.managerID, r.name, r.email, r.title} }

func (r *userRows) add(d *event.Data) {
	var manager string
	if d.ManagerID != nil {
		manager = *d.ManagerID
	}
	r.userID = append(r.userID, d.UserID)
	r.managerID = append(r.managerID, manager)
	r.name = append(r.name, d.Name)
	r.email = append(r.email, d.Email)
	r.title = append(r.title, d.Title)
}

func (r *userRows) reset() {
	r.rowsCommon.reset()
	resetStrings(&r.userID, &r.managerID, &r.name, &r.email, &r.title)
}

// Len is the number of events in b.
func (b *EventBatch) Len() int { return b.deals.len() + b.activities.len() + b.users.len() }

// Add appends one event and where it was read from (empty topic, partition and offset 0 when it was not read from
// Kafka) to the rows of its type's table; it takes the fields that its type's contract defines (DESIGN.md). e is
// read, not kept: an event is some 600 bytes, too many to copy per row. An event of a type outside the contract
// is a mistake of the caller (the decoders reject it): it is stored with the users' events, which no indicator
// reads by a type it does not know.
func (b *EventBatch) Add(e *event.Event, topic string, partition int, offset int64) {
	switch e.Type {
	case event.DealCreated, event.DealOwnerChanged, event.DealStageChanged, event.DealAmountChanged,
		event.DealClosed, event.DealReopened, event.DealDeleted:
		b.deals.rowsCommon.add(e, topic, partition, offset)
		b.deals.add(&e.Data)
	case event.ActivityLogged:
		b.activities.rowsCommon.add(e, topic, partition, offset)
		b.activities.add(&e.Data)
	default:
		b.users.rowsCommon.add(e, topic, partition, offset)
		b.users.add(&e.Data)
	}
}

// Seal fixes the ingest_seq of b's rows: they come after those of every batch sealed before it and before those of
// every batch sealed after it, whatever order the inserts finish in, and a retried insert of b keeps them. (The
// latest copy of an event by ingest_seq is the one queries read; the copies of an event in one batch have one
// type, so one table, and keep their order there.) InsertBatch seals a batch that is not sealed yet; Add after
// Seal is a mistake.
func (b *EventBatch) Seal() {
	if b.firstSeq == 0 && b.Len() > 0 {
		b.firstSeq = nextSeqs(b.Len())
	}
}

// Reset empties b, keeping its memory, and drops its references to the events' strings.
func (b *EventBatch) Reset() {
	b.firstSeq = 0
	for _, t := range b.tables() {
		t.reset()
	}
}

// eachTable seals b (Seal) and calls fn for each table that b has rows for, in the order of tables, with the
// ingest_seq of that table's first row and the ingestion time of the whole batch (Unix seconds).
func (b *EventBatch) eachTable(fn func(i int, t tableRows, first uint64, now int64) error) error {
	if b.Len() == 0 {
		return nil
	}
	b.Seal()
	now := time.Now().Unix()
	first := b.firstSeq
	for i, t := range b.tables() {
		n := t.common().len()
		if n == 0 {
			continue
		}
		if err := fn(i, t, first, now); err != nil {
			return err
		}
		first += uint64(n)
	}
	return nil
}

// InsertBatch writes b, sealing it first (Seal): one insert per table that it has rows for. A batch that fails may
// be retried as a whole: rows are deduplicated by (source, id). b's rows are not modified.
func (s *Store) InsertBatch(ctx context.Context, b *EventBatch) error {
	return b.eachTable(func(_ int, t tableRows, first uint64, now int64) error {
		n := t.common().len()
		batch, err := s.conn.PrepareBatch(ctx, t.insert())
		if err != nil {
			return fmt.Errorf("prepare insert of %d events into %s: %w", n, t.table(), err)
		}
		defer batch.Abort()
		if err := appendColumns(batch, t, first, now); err != nil {
			return err
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("insert batch of %d into %s: %w", n, t.table(), err)
		}
		return nil
	})
}

// EventStream is one insert per table that takes many batches, each sent as its own block as soon as it is
// written: ClickHouse gathers the blocks of one insert into parts of up to streamBlockRows rows, so a long backlog
// is stored as a few large parts per table instead of one small part per batch (every part is two files per
// column, and merges rewrite them), and the driver reuses its column buffers from block to block. A table's insert
// starts with the first batch that has rows for it. Nothing written to a stream is certain to be stored until
// Close returns nil; after an error the whole stream is to be written again (rows are deduplicated by (source,
// id)).
type EventStream struct {
	ctx     context.Context
	conn    driver.Conn
	inserts [3]driver.Batch // by EventBatch.tables, nil until used
	tables  [3]string       // the tables of inserts
	rows    int
}

// streamBlockRows is the most rows ClickHouse gathers from a stream's blocks before it writes them as parts (its
// own default, min_insert_block_size_rows, is a million): the server writes while more blocks arrive, so Close only
// waits for the rows gathered since the last part, and the parts are still larger than a batch's rows for one
// table. The smaller it is, the less of a drain's work is left for the end, when the worker has nothing else to
// do: 65,536 drained a backlog 5-10 % faster than 262,144 and cost ClickHouse no more CPU, where 32,768 and
// 131,072 were slower (docs/benchmarks.md, seventh round).
const streamBlockRows = 65536

// OpenEventStream starts a stream for WriteBatch. It reports false with a ClickHouse connection over HTTP, whose
// driver cannot send an insert in several blocks (use InsertBatch per batch there).
func (s *Store) OpenEventStream(ctx context.Context) (*EventStream, bool, error) {
	if s.cfg.Protocol == ProtocolHTTP {
		return nil, false, nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"min_insert_block_size_rows": streamBlockRows,
	}))
	return &EventStream{ctx: ctx, conn: s.conn}, true, nil
}

// Rows is the number of rows written to st so far.
func (st *EventStream) Rows() int { return st.rows }

// WriteBatch sends b's rows as the next block of each table's insert, sealing b first (EventBatch.Seal). b may be
// reset and reused once WriteBatch returns.
func (st *EventStream) WriteBatch(b *EventBatch) error {
	err := b.eachTable(func(i int, t tableRows, first uint64, now int64) error {
		if st.inserts[i] == nil {
			batch, err := st.conn.PrepareBatch(st.ctx, t.insert())
			if err != nil {
				return fmt.Errorf("prepare insert into %s: %w", t.table(), err)
			}
			st.inserts[i], st.tables[i] = batch, t.table()
		}
		if err := appendColumns(st.inserts[i], t, first, now); err != nil {
			return err
		}
		if err := st.inserts[i].Flush(); err != nil {
			return fmt.Errorf("send %d events to ClickHouse's %s: %w", t.common().len(), t.table(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	st.rows += b.Len()
	return nil
}

// Close ends the inserts: nil means every row written to st is stored. After an error the inserts not yet ended
// are given up.
func (st *EventStream) Close() error {
	for i, insert := range st.inserts {
		if insert == nil {
			continue
		}
		if err := insert.Send(); err != nil {
			st.Abort()
			return fmt.Errorf("insert of %d events (into %s): %w", st.rows, st.tables[i], err)
		}
		st.inserts[i] = nil
	}
	return nil
}

// Abort gives up the inserts; their rows may or may not be stored.
func (st *EventStream) Abort() {
	for i, b := range st.inserts {
		if b != nil {
			b.Abort()
			st.inserts[i] = nil
		}
	}
}

// appendColumns appends t's rows to batch, column by column, numbered from the ingest_seq first and ingested at
// now. DateTime columns go as Unix seconds ([]int64): unlike []time.Time, whose every element holds a pointer, the
// collector has nothing to scan in them.
func appendColumns(batch driver.Batch, t tableRows, first uint64, now int64) error {
	c := t.common()
	n := c.len()
	c.ingestedAt, c.seqs = c.ingestedAt[:0], c.seqs[:0]
	for i := range n {
		c.ingestedAt = append(c.ingestedAt, now)
		c.seqs = append(c.seqs, first+uint64(i))
	}
	for i, col := range append(c.columns(), t.columns()...) {
		if err := appendColumn(batch.Column(i), col); err != nil {
			return fmt.Errorf("append column %d of %d events for %s: %w", i+1, n, t.table(), err)
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

// eventCopies is every stored copy of every event, from the three tables events are stored in: (source, id) and
// when the copy was inserted.
const eventCopies = `(
    SELECT source, id, ingested_at FROM deal_events
    UNION ALL
    SELECT source, id, ingested_at FROM activities
    UNION ALL
    SELECT source, id, ingested_at FROM user_events
) AS copies`

// CountEvents returns the number of distinct (source, id) events stored.
func (s *Store) CountEvents(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(source, id) FROM "+eventCopies).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// CountEventsIngestedSince returns the number of distinct events of which a copy was inserted at or after t
// (second resolution): how far an ingest run has got.
func (s *Store) CountEventsIngestedSince(ctx context.Context, t time.Time) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(source, id) FROM "+eventCopies+" WHERE ingested_at >= @since",
		clickhouse.Named("since", t.UTC().Truncate(time.Second))).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ingested events: %w", err)
	}
	return n, nil
}
