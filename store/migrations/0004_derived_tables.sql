-- Tables derived from `events` that let each query read only what it needs, in the order it needs it. `events`
-- stays the system of record (ordered by its identity, (source, id)); materialized views copy each new row into
-- the tables below as part of the same insert, and this migration backfills them from the events already stored.
--
-- Copies of an event: a redelivery may change an event's time, so a table ordered by event time can hold an
-- outdated copy next to the current one. Queries therefore read all copies of the entities they need (a deal's
-- events, an activity) within the entity's span (the earliest and latest time any copy of its events has) and keep,
-- per (source, id), the copy with the highest ingest_seq. user_events is keyed by entity and identity instead, so
-- FINAL (with ingest_seq as the version) does that for it.

-- Deal events in event-time order: a window reads the deals closed or handed over in and around it with a primary
-- key range instead of scanning the whole history.
CREATE TABLE IF NOT EXISTS deal_events
(
    deal_id    String,
    time       DateTime,
    time_ms    Int64,
    source     String,
    id         String,
    ingest_seq UInt64,
    type       String,
    owner_id   String,
    outcome    String,
    amount     Float64,
    has_amount UInt8
)
ENGINE = ReplacingMergeTree(ingest_seq)
PARTITION BY toYYYYMM(time)
ORDER BY (time_ms, source, id);

-- The span of each deal: the earliest and latest time of any copy of its events. A window reads its deals' events
-- between the smallest and largest of their spans, so it sees every copy of them.
CREATE TABLE IF NOT EXISTS deal_spans
(
    deal_id  String,
    first_ms AggregateFunction(min, Int64),
    last_ms  AggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY deal_id;

-- Reporting lines and names: few rows, read whole.
CREATE TABLE IF NOT EXISTS user_events
(
    user_id    String,
    time_ms    Int64,
    source     String,
    id         String,
    ingest_seq UInt64,
    type       String,
    manager_id String,
    name       String
)
ENGINE = ReplacingMergeTree(ingest_seq)
ORDER BY (user_id, source, id);

-- Activities in event-time order, for coaching in a window, and the span of each activity's copies.
CREATE TABLE IF NOT EXISTS activities
(
    time             DateTime,
    time_ms          Int64,
    source           String,
    id               String,
    ingest_seq       UInt64,
    activity_id      String,
    kind             String,
    actor_id         String,
    subject_user_ids Array(String)
)
ENGINE = ReplacingMergeTree(ingest_seq)
PARTITION BY toYYYYMM(time)
ORDER BY (time_ms, source, id);

CREATE TABLE IF NOT EXISTS activity_spans
(
    activity_id String,
    first_ms    AggregateFunction(min, Int64),
    last_ms     AggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY activity_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS deal_events_mv TO deal_events AS
SELECT deal_id, time, time_ms, source, id, ingest_seq, type, owner_id, outcome, amount, has_amount
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

CREATE MATERIALIZED VIEW IF NOT EXISTS deal_spans_mv TO deal_spans AS
SELECT deal_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted')
GROUP BY deal_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_events_mv TO user_events AS
SELECT user_id, time_ms, source, id, ingest_seq, type, manager_id, name
FROM events
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');

CREATE MATERIALIZED VIEW IF NOT EXISTS activities_mv TO activities AS
SELECT time, time_ms, source, id, ingest_seq, activity_id, kind, actor_id, subject_user_ids
FROM events
WHERE type = 'activity.logged';

CREATE MATERIALIZED VIEW IF NOT EXISTS activity_spans_mv TO activity_spans AS
SELECT activity_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM events
WHERE type = 'activity.logged'
GROUP BY activity_id;

-- Backfill from an existing install: the current copy of each event (FINAL), so no outdated copy is carried over.
-- Rows that the views above also copied meanwhile are newer copies by ingest_seq, or identical; re-running the
-- migration after a failure is therefore safe too.
INSERT INTO deal_events (deal_id, time, time_ms, source, id, ingest_seq, type, owner_id, outcome, amount, has_amount)
SELECT deal_id, time, time_ms, source, id, ingest_seq, type, owner_id, outcome, amount, has_amount
FROM events FINAL
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

INSERT INTO deal_spans (deal_id, first_ms, last_ms)
SELECT deal_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM events FINAL
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted')
GROUP BY deal_id;

INSERT INTO user_events (user_id, time_ms, source, id, ingest_seq, type, manager_id, name)
SELECT user_id, time_ms, source, id, ingest_seq, type, manager_id, name
FROM events FINAL
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');

INSERT INTO activities (time, time_ms, source, id, ingest_seq, activity_id, kind, actor_id, subject_user_ids)
SELECT time, time_ms, source, id, ingest_seq, activity_id, kind, actor_id, subject_user_ids
FROM events FINAL
WHERE type = 'activity.logged';

INSERT INTO activity_spans (activity_id, first_ms, last_ms)
SELECT activity_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms
FROM events FINAL
WHERE type = 'activity.logged'
GROUP BY activity_id;
