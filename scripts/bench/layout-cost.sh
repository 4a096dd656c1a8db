#!/usr/bin/env bash
# ClickHouse's insert CPU for alternative schema layouts, on the same rows (docs/benchmarks.md, fifth round).
#
#   scripts/bench/layout-cost.sh SOURCE_DB [ROUNDS]
#
# SOURCE_DB holds an `events` table filled by `leadthrough ingest` (a database left by BenchmarkIngestVsPipe, or one
# drained by hand). Its rows are exported once as Native files in arrival order, then each round inserts them with
# clickhouse-client into fresh databases: "current" (leadthrough migrate: events and its five views), "null"
# (layout_null.sql) and "once" (layout_once.sql: deal, activity and user rows into their own tables). It prints the
# server CPU of the query threads (system.events, background merges excluded) and the wall time of each insert.
# Needs clickhouse-client on PATH, a local ClickHouse on its default port and LEADTHROUGH_BIN (default
# ./leadthrough) for the current schema. Databases lay_* are dropped at the start of each run, not at its end.
set -euo pipefail
src=${1:?usage: layout-cost.sh SOURCE_DB [ROUNDS]}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
bin=${LEADTHROUGH_BIN:-./leadthrough}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ch() { clickhouse-client "$@"; }
cpu() { ch -q "SELECT sum(value) FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')"; }
order="ORDER BY kafka_partition, kafka_offset FORMAT Native"
ch -q "SELECT * FROM $src.events $order" >"$dir/events.native"
ch -q "SELECT deal_id, time, time_ms, source, id, ingest_seq, type, owner_id, previous_owner_id, changed_by, stage,
  previous_stage, outcome, amount, has_amount, currency, kafka_topic, kafka_partition, kafka_offset, ingested_at
  FROM $src.events WHERE type LIKE 'deal.%' $order" >"$dir/deal_events.native"
ch -q "SELECT time, time_ms, source, id, ingest_seq, type, activity_id, kind, actor_id, subject_user_ids,
  duration_minutes, deal_id, kafka_topic, kafka_partition, kafka_offset, ingested_at
  FROM $src.events WHERE type = 'activity.logged' $order" >"$dir/activities.native"
ch -q "SELECT user_id, time, time_ms, source, id, ingest_seq, type, manager_id, name, email, title, kafka_topic,
  kafka_partition, kafka_offset, ingested_at FROM $src.events WHERE type LIKE 'user.%' $order" >"$dir/user_events.native"
for round in $(seq "$rounds"); do
  for layout in current null once; do
    db=lay_${layout}_$round
    ch -q "DROP DATABASE IF EXISTS $db"
    ch -q "CREATE DATABASE $db"
    case $layout in
      current) "$bin" migrate --clickhouse-database "$db" --log-level warn ;;
      *) ch -d "$db" -n <"$here/layout_$layout.sql" ;;
    esac
    until [ "$(ch -q 'SELECT count() FROM system.merges')" = 0 ]; do sleep 0.2; done
    before=$(cpu) start=$(date +%s.%N)
    if [ "$layout" = once ]; then
      for t in deal_events activities user_events; do
        ch -d "$db" --min_insert_block_size_rows=262144 -q "INSERT INTO $t FORMAT Native" <"$dir/$t.native"
      done
    else
      ch -d "$db" --min_insert_block_size_rows=262144 -q "INSERT INTO events FORMAT Native" <"$dir/events.native"
    fi
    end=$(date +%s.%N) after=$(cpu)
    awk -v l="$layout" -v r="$round" -v c=$((after - before)) -v s="$start" -v e="$end" \
      'BEGIN { printf "round %d %-8s server CPU %.2f s, wall %.2f s\n", r, l, c / 1e6, e - s }'
  done
done
