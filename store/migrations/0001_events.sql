-- Every canonical event, flattened to one row. (source, id) is the identity: redelivered or duplicated events are
-- collapsed by ReplacingMergeTree on merge, and every query reads with FINAL, so nothing counts twice even before a
-- merge. Columns that do not apply to an event's type hold their type's default ('' or 0).
CREATE TABLE IF NOT EXISTS events
(
    source            String,
    id                String,
    type              String,
    time              DateTime,   -- event time (UTC), for humans and Grafana
    time_ms           Int64,      -- event time in Unix milliseconds: what every indicator orders and compares by
    user_id           String,
    manager_id        String,     -- user.manager_changed: '' means "no manager"
    name              String,
    email             String,
    title             String,
    deal_id           String,
    owner_id          String,
    previous_owner_id String,
    changed_by        String,
    stage             String,
    previous_stage    String,
    amount            Float64,
    has_amount        UInt8,      -- amount is optional on deal.created and deal.closed
    currency          String,
    outcome           String,
    activity_id       String,
    kind              String,
    actor_id          String,
    subject_user_ids  Array(String),
    duration_minutes  Float64,
    kafka_topic       String,
    kafka_partition   Int32,
    kafka_offset      Int64,
    ingested_at       DateTime
)
ENGINE = ReplacingMergeTree
ORDER BY (source, id)
