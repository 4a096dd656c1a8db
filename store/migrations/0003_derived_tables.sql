-- Tables derived from `events` that let each query read only what it needs, in the order it needs it. `events`
-- stays the system of record (ordered by its identity, (source, id)); materialized views copy each new row into
-- the tables below as part of the same insert, and this migration backfills them from the events already stored.
-- Each derived table is a ReplacingMergeTree whose key ends in (source, id), and an event's time and entity never
-- change between redeliveries, so a duplicate lands on the same key and is collapsed exactly as in `events`; every
-- query reads them with FINAL.

-- Deal events in event-time order: a window reads the deals closed or handed over in and around it with a primary
-- key range instead of scanning the whole history.
CREATE TABLE IF NOT EXISTS deal_events
(
    deal_id    String,
    time       DateTime,
    time_ms    Int64,
    source     String,
    id         String,
    type       String,
    owner_id   String,
    outcome    String,
    amount     Float64,
    has_amount UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time_ms, source, id);

-- When each deal was first seen (its earliest event of any deal type): how far back a window must read to see the
-- whole history of the deals it attributes.
CREATE TABLE IF NOT EXISTS deal_first_seen
(
    deal_id  String,
    first_ms AggregateFunction(min, Int64)
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
    type       String,
    manager_id String,
    name       String
)
ENGINE = ReplacingMergeTree
ORDER BY (user_id, time_ms, source, id);

-- Activities in event-time order, for coaching in a window.
CREATE TABLE IF NOT EXISTS activities
(
    time             DateTime,
    time_ms          Int64,
    source           String,
    id               String,
    kind             String,
    actor_id         String,
    subject_user_ids Array(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time_ms, source, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS deal_events_mv TO deal_events AS
SELECT deal_id, time, time_ms, source, id, type, owner_id, outcome, amount, has_amount
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

CREATE MATERIALIZED VIEW IF NOT EXISTS deal_first_seen_mv TO deal_first_seen AS
SELECT deal_id, minState(time_ms) AS first_ms
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted')
GROUP BY deal_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_events_mv TO user_events AS
SELECT user_id, time_ms, source, id, type, manager_id, name
FROM events
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');

CREATE MATERIALIZED VIEW IF NOT EXISTS activities_mv TO activities AS
SELECT time, time_ms, source, id, kind, actor_id, subject_user_ids
FROM events
WHERE type = 'activity.logged';

-- Backfill from an existing install. Rows that the views above also copied meanwhile are duplicates by key and
-- collapse like any redelivery; re-running the migration after a failure is therefore safe too.
INSERT INTO deal_events (deal_id, time, time_ms, source, id, type, owner_id, outcome, amount, has_amount)
SELECT deal_id, time, time_ms, source, id, type, owner_id, outcome, amount, has_amount
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted');

INSERT INTO deal_first_seen (deal_id, first_ms)
SELECT deal_id, minState(time_ms) AS first_ms
FROM events
WHERE type IN ('deal.created', 'deal.owner_changed', 'deal.stage_changed', 'deal.amount_changed', 'deal.closed',
               'deal.reopened', 'deal.deleted')
GROUP BY deal_id;

INSERT INTO user_events (user_id, time_ms, source, id, type, manager_id, name)
SELECT user_id, time_ms, source, id, type, manager_id, name
FROM events
WHERE type IN ('user.upserted', 'user.manager_changed', 'user.deactivated');

INSERT INTO activities (time, time_ms, source, id, kind, actor_id, subject_user_ids)
SELECT time, time_ms, source, id, kind, actor_id, subject_user_ids
FROM events
WHERE type = 'activity.logged';
