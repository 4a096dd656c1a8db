-- Attribution of deals, materialised once per computation of the indicators (a `serve` refresh or an `indicators`
-- call, a "run") and read by every indicator query of that run and by Grafana's deal drill-down. One row per deal
-- that closed in the run's window or the previous one, or that changed owner in the window. Each run is its own
-- partition, so old runs are dropped whole (store.PruneAttributionRuns): this table does not grow with refreshes.
CREATE TABLE IF NOT EXISTS deal_attribution
(
    run_id            UInt64,        -- identifies the computation
    as_of             DateTime,      -- the run's window is (as_of − window_seconds, as_of]
    window_seconds    UInt32,
    computed_at       DateTime,
    deal_id           String,
    closed            UInt8,         -- closed as of as_of (its latest close/reopen event at or before as_of is a close)
    in_window         UInt8,         -- closed in the window itself (not only in the previous one)
    close_time        DateTime,      -- t_c, the last close; 1970 when not closed
    close_ms          Int64,
    won               UInt8,
    amount            Float64,       -- the close event's amount, else the latest known at t_c, else 0
    closer_id         String,        -- C(d): owner at t_c
    rep_id            String,        -- R(d): '' when the deal never had a rep owner
    manager_id        String,        -- M(d): '' when the deal cannot be attributed
    taken_over        UInt8,         -- M(d) took the deal over before t_c
    taken_over_ms     Int64,         -- when (the first such takeover); 0 when not taken over
    takeover_ms       Array(Int64),  -- every takeover of the deal up to as_of: when …
    takeover_managers Array(String)  -- … and by whom
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (manager_id, close_ms, deal_id);
