#!/usr/bin/env bash
# What the spans views cost a drain (docs/benchmarks.md, seventh round): `leadthrough ingest` drains the same topic
# into fresh databases that differ only in how deal_spans and activity_spans are kept.
#
#   scripts/bench/spans-cost.sh [ROUNDS]
#
# Variants, alternated in each round:
#   current  the schema of `leadthrough migrate` (spans views with GROUP BY, on deal_events and activities)
#   null     the same views writing into Null tables: their GROUP BY without the spans tables' parts
#   reduce   views without GROUP BY, one state per row (arrayReduce('minState', [time_ms]))
#   none     no spans views on the typed tables (the attribution would miss copies: for measuring only)
# It starts an embedded broker of its own, publishes the benchmark's 1.04M events (BenchmarkIngestVsPipe's topic)
# and prints, per drain, the wall time until every event is stored and the CPU time of the worker and of
# clickhouse-server (from /proc, merges included: the drains are short and each waits for merges to end first).
# Needs clickhouse-client on PATH, a local ClickHouse on its default port and LEADTHROUGH_BIN (default
# ./leadthrough). Its databases spans_* are dropped at the end, not between drains: dropping thousands of files
# slows the inserts that follow for minutes (dropLater in the ingest benchmark).
set -euo pipefail
rounds=${1:-3}
bin=${LEADTHROUGH_BIN:-./leadthrough}
ch() { clickhouse-client "$@"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
server=$(pgrep -o -f clickhouse-server)
port=$((20000 + RANDOM % 10000))
"$bin" broker --listen "127.0.0.1:$port" --log-level warn &
broker=$!
trap 'kill "$broker" 2>/dev/null; for db in $(ch -q "SELECT name FROM system.databases WHERE name LIKE '"'"'spans\_%'"'"'"); do ch -q "DROP DATABASE $db"; done' EXIT
sleep 1
"$bin" simulate --brokers "127.0.0.1:$port" --topic spans.cost --managers 60 --reps-per-manager 15 \
  --deals-per-rep-per-month 30 --days 166 --end 2026-03-31T00:00:00Z --seed 7 --log-level warn
want=1041655

variant_sql() {
  local views="DROP TABLE deal_spans_typed_mv; DROP TABLE activity_spans_typed_mv;"
  case $1 in
    current) ;;
    null) echo "$views
      CREATE TABLE deal_spans_null AS deal_spans ENGINE = Null;
      CREATE TABLE activity_spans_null AS activity_spans ENGINE = Null;
      CREATE MATERIALIZED VIEW deal_spans_null_mv TO deal_spans_null AS
        SELECT deal_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms FROM deal_events GROUP BY deal_id;
      CREATE MATERIALIZED VIEW activity_spans_null_mv TO activity_spans_null AS
        SELECT activity_id, minState(time_ms) AS first_ms, maxState(time_ms) AS last_ms FROM activities
        GROUP BY activity_id;" ;;
    reduce) echo "$views
      CREATE MATERIALIZED VIEW deal_spans_reduce_mv TO deal_spans AS
        SELECT deal_id, arrayReduce('minState', [time_ms]) AS first_ms, arrayReduce('maxState', [time_ms]) AS last_ms
        FROM deal_events;
      CREATE MATERIALIZED VIEW activity_spans_reduce_mv TO activity_spans AS
        SELECT activity_id, arrayReduce('minState', [time_ms]) AS first_ms,
               arrayReduce('maxState', [time_ms]) AS last_ms
        FROM activities;" ;;
    none) echo "$views" ;;
  esac
}

for round in $(seq "$rounds"); do
  for variant in current null reduce none; do
    db=spans_${variant}_$round
    ch -q "DROP DATABASE IF EXISTS $db"
    ch -q "CREATE DATABASE $db"
    "$bin" migrate --clickhouse-database "$db" --log-level warn >/dev/null
    sql=$(variant_sql "$variant")
    [ -z "$sql" ] || ch -d "$db" -n -q "$sql"
    until [ "$(ch -q 'SELECT count() FROM system.merges')" = 0 ]; do sleep 0.2; done
    server_before=$(ticks "$server") start=$(date +%s%N)
    "$bin" ingest --brokers "127.0.0.1:$port" --topic spans.cost --group "$db-$start" --clickhouse-database "$db" \
      --listen "" --log-level warn &
    worker=$!
    until [ "$(ch -q "SELECT (SELECT count() FROM $db.deal_events) + (SELECT count() FROM $db.activities) +
        (SELECT count() FROM $db.user_events)")" -ge "$want" ]; do
      kill -0 "$worker" || { echo "ingest into $db exited" >&2; exit 1; }
      sleep 0.02
    done
    end=$(date +%s%N) server_after=$(ticks "$server") worker_ticks=$(ticks "$worker")
    kill -TERM "$worker"
    wait "$worker"
    awk -v r="$round" -v v="$variant" -v w=$(((end - start) / 1000000)) -v i="$worker_ticks" \
      -v s=$((server_after - server_before)) -v hz="$hz" \
      'BEGIN { printf "round %d %-8s wall %.2f s, worker CPU %.2f s, ClickHouse CPU %.2f s\n", r, v, w / 1000, i / hz, s / hz }'
  done
done
