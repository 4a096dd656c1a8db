-- Snapshots of the indicators, one row per manager and refresh, written by `leadthrough serve` on its schedule and
-- read by Grafana. A refresh with the same (window_seconds, as_of) replaces the earlier one.
CREATE TABLE IF NOT EXISTS team_indicators
(
    as_of                        DateTime,
    window_seconds               UInt32,
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
PARTITION BY toYYYYMM(as_of)
ORDER BY (window_seconds, as_of, manager_id)
