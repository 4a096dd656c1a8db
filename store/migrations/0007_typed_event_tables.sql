-- Each event is stored once, in the table of its type: deal events in deal_events, activities in activities, the
-- users' events in user_events. Those tables take every column of their types' events here, and the worker
-- inserts into them directly instead of into `events`, whose five views made ClickHouse filter and copy every row
-- a second time (docs/benchmarks.md, fifth round: the same rows cost ClickHouse about 40 % less CPU this way).
-- Together the three tables are the record of the events; `events` keeps what was stored before, and what a worker
-- of an earlier release still writes during a rolling upgrade, which its views (recreated below with every
-- column) pass on to the typed tables.
--
-- Rows stored before this migration are copied again with all their columns (the backfill at the end), under the
-- same ingest_seq. Until a merge collapses them a table can hold both copies of such an event: queries that read
-- the added columns read with FINAL, which keeps the one inserted last (the complete one).

ALTER TABLE deal_events
    ADD COLUMN previous_owner_id String,
    ADD COLUMN changed_by        String,
    ADD COLUMN stage             String,
    ADD COLUMN previous_stage    String,
    ADD COLUMN currency          String,
    ADD COLUMN kafka_topic       String,
    ADD COLUMN kafka_partition   Int32,
    ADD COLUMN kafka_offset      Int64,
    ADD COLUMN ingested_at       DateTime;

ALTER TABLE activities
    ADD COLUMN type             String,
    ADD COLUMN duration_minutes Float64,
    ADD COLUMN deal_id          String,
    ADD COLUMN kafka_topic      String,
    ADD COLUMN kafka_partition  Int32,
    ADD COLUMN kafka_offset     Int64,
    ADD COLUMN ingested_at      DateTime;

ALTER TABLE user_events
    ADD COLUMN time            DateTime,
    ADD COLUMN email           String,
    ADD COLUMN title           String,
    ADD COLUMN kafka_topic     String,
    ADD COLUMN kafka_partition Int32,
    ADD COLUMN kafka_offset    Int64,
    ADD COLUMN ingested_at     DateTime;

-- The spans follow the typed tables themselves, so the worker's direct inserts update them. Rows that reach a
-- typed table through the views from `events` may update a span twice (once from `events`, once from the typed
-- table, where the server runs views of views): a minimum and a maximum do not change by that.
CREATE MATERIALIZED VIEW IF NOT EXISTS deal_spans_typed_mv TO deal_spans AS
SELECT deal_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM deal_events
GROUP BY deal_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS activity_spans_typed_mv TO activity_spans AS
SELECT activity_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM activities
GROUP BY activity_id;

-- The views from `events` copy every column now. A view's query cannot be changed in place: each is dropped and
-- created again. An insert into `events` in between reaches the typed tables through the backfill below.
DROP TABLE IF EXISTS deal_events_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS deal_events_mv TO deal_events AS
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       deal_id, owner_id, previous_owner_id, changed_by, stage, previous_stage, amount, has_amount, currency, outcome
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

DROP TABLE IF EXISTS activities_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS activities_mv TO activities AS
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       activity_id, kind, actor_id, subject_user_ids, duration_minutes, deal_id
FROM events
WHERE type = 'activity.logged';

DROP TABLE IF EXISTS user_events_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_events_mv TO user_events AS
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       user_id, manager_id, name, email, title
FROM events
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');

-- Backfill: the current copy of each event stored in `events` (FINAL), with every column. Re-running it after a
-- failure writes the same rows again, which collapse with the first ones.
INSERT INTO deal_events (source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at,
                         ingest_seq, deal_id, owner_id, previous_owner_id, changed_by, stage, previous_stage, amount,
                         has_amount, currency, outcome)
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       deal_id, owner_id, previous_owner_id, changed_by, stage, previous_stage, amount, has_amount, currency, outcome
FROM events FINAL
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

INSERT INTO activities (source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at,
                        ingest_seq, activity_id, kind, actor_id, subject_user_ids, duration_minutes, deal_id)
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       activity_id, kind, actor_id, subject_user_ids, duration_minutes, deal_id
FROM events FINAL
WHERE type = 'activity.logged';

INSERT INTO user_events (source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at,
                         ingest_seq, user_id, manager_id, name, email, title)
SELECT source, id, type, time, time_ms, kafka_topic, kafka_partition, kafka_offset, ingested_at, ingest_seq,
       user_id, manager_id, name, email, title
FROM events FINAL
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');
