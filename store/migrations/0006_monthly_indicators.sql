-- The indicators of every calendar month, one row per manager and month (the window (period_start, period_end],
-- compared with the month before for rep_growth), written by `leadthrough serve` and read by Grafana's trend panels.
-- serve recomputes the current and the previous month on its schedule (late events can change them) and the last
-- 12 months when it starts; a recomputed month replaces the earlier rows of the same (period_start, manager_id).
-- Every row of one computation of a month has the same computed_at, so a reader that keeps only the latest
-- computation of each month also drops a manager whom a recomputation no longer finds in it. One row per manager
-- and month keeps the table small: no retention.
CREATE TABLE IF NOT EXISTS monthly_indicators
(
    period_start                 DateTime,
    period_end                   DateTime,
    manager_id                   String,
    manager_name                 String,
    won_deals                    UInt64,
    closed_deals                 UInt64,
    manager_closed_share         Nullable(Float64),
    manager_closed_revenue_share Nullable(Float64),
    takeover_rate                Nullable(Float64),
    takeovers                    UInt64,
    coaching_coverage            Nullable(Float64),
    reps_coached                 UInt64,
    rep_growth                   Nullable(Float64),
    team_reps                    UInt64,
    computed_at                  DateTime
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYear(period_start)
ORDER BY (period_start, manager_id);
