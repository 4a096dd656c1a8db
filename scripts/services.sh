#!/usr/bin/env bash
# Start / stop all local services the tests use.
#
#   scripts/services.sh up       clickhouse.sh start + chdb.sh start + kafka.sh start
#   scripts/services.sh down     kafka.sh stop + chdb.sh stop + clickhouse.sh stop
#   scripts/services.sh status   status of each (exit 0 only if all run)
#
# Honors the same environment variables as the individual scripts.
set -euo pipefail

SCRIPT_NAME=services.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
up)
	"$SCRIPTS_DIR/clickhouse.sh" start
	"$SCRIPTS_DIR/chdb.sh" start
	"$SCRIPTS_DIR/kafka.sh" start
	log "up: clickhouse 127.0.0.1:${CLICKHOUSE_TCP_PORT:-9000}, chdb http://127.0.0.1:${CHDB_HTTP_PORT:-8124}, kafka 127.0.0.1:${KAFKA_PORT:-29092}"
	;;
down)
	rc=0
	"$SCRIPTS_DIR/kafka.sh" stop || rc=1
	"$SCRIPTS_DIR/chdb.sh" stop || rc=1
	"$SCRIPTS_DIR/clickhouse.sh" stop || rc=1
	exit "$rc"
	;;
status)
	rc=0
	"$SCRIPTS_DIR/clickhouse.sh" status || rc=3
	"$SCRIPTS_DIR/chdb.sh" status || rc=3
	"$SCRIPTS_DIR/kafka.sh" status || rc=3
	exit "$rc"
	;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
