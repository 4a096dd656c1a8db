#!/usr/bin/env bash
# Current ClickHouse for the tests: chdb (ClickHouse embedded in Python, from PyPI) behind
# scripts/chdb_bridge.py, which serves ClickHouse's HTTP interface. Test-only.
#
#   scripts/chdb.sh install   virtualenv $RUN_DIR/chdb-venv with chdb==$CHDB_VERSION (no-op when present)
#   scripts/chdb.sh start     install if needed, start the bridge, wait until it answers a query
#   scripts/chdb.sh stop      SIGTERM, wait, then SIGKILL (no-op when not running)
#   scripts/chdb.sh status    exit 0 when running, 3 when not
#
# Data, logs and the pid file live in $LEADTHROUGH_RUN_DIR/chdb (default <repo>/.run/chdb):
# data/ logs/bridge.log bridge.pid. Environment:
#   CHDB_HTTP_PORT       HTTP port of the bridge, 127.0.0.1 only (default 8124)
#   CHDB_VERSION         chdb version from PyPI (default 4.4.0, which embeds ClickHouse 26.9)
#   CHDB_PYTHON          Python 3 used to create the virtualenv (default python3)
#   CHDB_START_TIMEOUT   seconds to wait for the bridge (default 60)
set -euo pipefail

SCRIPT_NAME=chdb.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHDB_HTTP_PORT="${CHDB_HTTP_PORT:-8124}"
CHDB_VERSION="${CHDB_VERSION:-4.4.0}"
CHDB_PYTHON="${CHDB_PYTHON:-python3}"
CHDB_START_TIMEOUT="${CHDB_START_TIMEOUT:-60}"

VENV="$RUN_DIR/chdb-venv"
VENV_PY="$VENV/bin/python"
MARKER="$VENV/.chdb-installed" # holds the installed chdb version
BRIDGE="$SCRIPTS_DIR/chdb_bridge.py"
C_DIR="$RUN_DIR/chdb"
C_DATA="$C_DIR/data"
C_LOGS="$C_DIR/logs"
C_LOG="$C_LOGS/bridge.log"
C_PIDFILE="$C_DIR/bridge.pid"
C_PORTFILE="$C_DIR/bridge.port"

# Never wait for input or draw progress bars (CI=true, no terminal).
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

installed_version() {
	if [ -f "$MARKER" ] && [ -x "$VENV_PY" ]; then cat "$MARKER"; fi
}

# The version the virtualenv's chdb reports (empty when it cannot be imported).
importable_version() {
	"$VENV_PY" -c 'import chdb; print(chdb.__version__)' </dev/null 2>/dev/null || true
}

make_venv() {
	command -v "$CHDB_PYTHON" >/dev/null 2>&1 || {
		log "$CHDB_PYTHON not found; running deps.sh"
		"$SCRIPTS_DIR/deps.sh"
		command -v "$CHDB_PYTHON" >/dev/null 2>&1 || die "$CHDB_PYTHON still not found after deps.sh"
	}
	rm -rf "$VENV"
	if ! "$CHDB_PYTHON" -m venv "$VENV" </dev/null >"$C_LOGS/venv.log" 2>&1; then
		# Debian ships venv's ensurepip separately (python3-venv).
		log "$CHDB_PYTHON -m venv failed (python3-venv missing?); running deps.sh"
		rm -rf "$VENV"
		"$SCRIPTS_DIR/deps.sh"
		if ! "$CHDB_PYTHON" -m venv "$VENV" </dev/null >"$C_LOGS/venv.log" 2>&1; then
			show_tail "$C_LOGS/venv.log" 20
			rm -rf "$VENV"
			die "cannot create a virtualenv with $CHDB_PYTHON -m venv (log: $C_LOGS/venv.log)"
		fi
	fi
}

cmd_install() {
	if [ "$(installed_version)" = "$CHDB_VERSION" ] && [ "$(importable_version)" = "$CHDB_VERSION" ]; then
		log "chdb $CHDB_VERSION already installed in $VENV"
		return 0
	fi
	if is_running; then
		die "the bridge is running; stop it before (re)installing chdb"
	fi
	local t0
	t0="$(now_s)"
	mkdir -p "$C_LOGS"
	rm -f "$MARKER"
	if [ ! -x "$VENV_PY" ] || ! "$VENV_PY" -c 'import sys' </dev/null >/dev/null 2>&1; then
		log "creating virtualenv $VENV"
		make_venv
	fi
	log "pip install chdb==$CHDB_VERSION (from PyPI; with numpy, pandas and pyarrow about 900 MB installed)"
	if ! "$VENV_PY" -m pip install -q "chdb==$CHDB_VERSION" </dev/null >"$C_LOGS/pip.log" 2>&1; then
		show_tail "$C_LOGS/pip.log" 30
		die "pip install chdb==$CHDB_VERSION failed (full output: $C_LOGS/pip.log)"
	fi
	local got
	got="$(importable_version)"
	[ "$got" = "$CHDB_VERSION" ] || die "after pip install, chdb reports version '${got:-none}', want $CHDB_VERSION"
	echo "$CHDB_VERSION" >"$MARKER"
	log "installed chdb $CHDB_VERSION ($(du -sh "$VENV" | cut -f1)) in $(($(now_s) - t0))s"
}

is_running() { pid_alive "$C_PIDFILE" "$BRIDGE"; }

running_port() {
	if [ -s "$C_PORTFILE" ]; then tr -dc '0-9' <"$C_PORTFILE"; else echo "$CHDB_HTTP_PORT"; fi
}

# http_get PORT PATH: print the body of GET http://127.0.0.1:PORT/PATH; fails unless the status is 200.
# Plain bash (/dev/tcp), so it needs neither curl nor the virtualenv.
_http_get() {
	local status line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	IFS= read -r status <&3 || return 1
	case "$status" in *" 200 "*) ;; *) return 1 ;; esac
	while IFS= read -r line <&3 && [ -n "${line%$'\r'}" ]; do :; done
	cat <&3
}
http_get() {
	timeout 10 bash -c "$(declare -f _http_get); _http_get \"\$@\"" _ "$1" "$2" 2>/dev/null
}

# ready PORT: the bridge answers a query through chdb; prints the engine's version.
ready() {
	local v
	v="$(http_get "$1" '/?query=SELECT%20version()')" || return 1
	[ -n "$v" ] || return 1
	printf '%s\n' "$v"
}

cmd_start() {
	if is_running; then
		local port
		port="$(running_port)"
		log "already running (pid $(read_pid "$C_PIDFILE"), http://127.0.0.1:$port)"
		if [ "$port" != "$CHDB_HTTP_PORT" ]; then
			warn "the running bridge uses port $port, not CHDB_HTTP_PORT=$CHDB_HTTP_PORT; run 'stop' first to change it"
		fi
		return 0
	fi
	rm -f "$C_PIDFILE"
	cmd_install
	if port_open "$CHDB_HTTP_PORT"; then
		die "port $CHDB_HTTP_PORT is already in use by another process (set CHDB_HTTP_PORT)"
	fi
	mkdir -p "$C_DATA" "$C_LOGS"
	if [ -f "$C_LOG" ]; then
		mv -f "$C_LOG" "$C_LOG.1"
	fi

	local t0 pid version
	t0="$(now_s)"
	log "starting the chdb bridge (http://127.0.0.1:$CHDB_HTTP_PORT, dir $C_DIR)"
	# setsid: own session, so the bridge outlives the calling shell/CI step.
	(cd "$C_DIR" && exec setsid "$VENV_PY" -u "$BRIDGE" --host 127.0.0.1 --port "$CHDB_HTTP_PORT" --data "$C_DATA" \
		</dev/null >"$C_LOG" 2>&1) &
	pid=$!
	echo "$pid" >"$C_PIDFILE"
	echo "$CHDB_HTTP_PORT" >"$C_PORTFILE"

	local deadline=$((t0 + CHDB_START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			warn "the bridge (pid $pid) exited during startup"
			break
		fi
		if port_open "$CHDB_HTTP_PORT" && version="$(ready "$CHDB_HTTP_PORT")" && is_running; then
			log "ready in $(($(now_s) - t0))s (pid $pid, ClickHouse $version via chdb $CHDB_VERSION)"
			return 0
		fi
		if [ "$(now_s)" -ge "$deadline" ]; then
			warn "the bridge did not answer SELECT version() within ${CHDB_START_TIMEOUT}s"
			break
		fi
		sleep 0.5
	done
	show_tail "$C_LOG" 40
	if kill -0 "$pid" 2>/dev/null; then
		warn "stopping the unresponsive bridge"
		stop_pid "$pid" chdb-bridge 30
	fi
	rm -f "$C_PIDFILE"
	die "the chdb bridge failed to start (log: $C_LOG)"
}

cmd_stop() {
	if ! is_running; then
		rm -f "$C_PIDFILE"
		log "not running"
		return 0
	fi
	local pid t0
	pid="$(read_pid "$C_PIDFILE")"
	t0="$(now_s)"
	log "stopping the chdb bridge (pid $pid)"
	stop_pid "$pid" chdb-bridge 60
	rm -f "$C_PIDFILE"
	log "stopped in $(($(now_s) - t0))s"
}

cmd_status() {
	if is_running; then
		local port version
		port="$(running_port)"
		if version="$(ready "$port")"; then
			log "running (pid $(read_pid "$C_PIDFILE"), ClickHouse $version via chdb $(installed_version), http://127.0.0.1:$port, dir $C_DIR)"
		else
			log "running but not answering queries (pid $(read_pid "$C_PIDFILE"), http://127.0.0.1:$port)"
		fi
		return 0
	fi
	log "not running"
	return 3
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 install|start|stop|status" >&2
	exit 2
	;;
esac
