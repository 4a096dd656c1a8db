# shellcheck shell=bash
# Shared helpers for the scripts in this directory. Source it, don't run it:
#
#   SCRIPT_NAME=clickhouse.sh
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Defines SCRIPTS_DIR, REPO (repository root) and RUN_DIR
# ($LEADTHROUGH_RUN_DIR, default $REPO/.run), plus small helpers.

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPTS_DIR/.." && pwd -P)"
# shellcheck disable=SC2034  # used by the sourcing scripts
RUN_DIR="${LEADTHROUGH_RUN_DIR:-$REPO/.run}"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"

# Never prompt, whatever the caller's environment looks like.
export DEBIAN_FRONTEND=noninteractive

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	exit 1
}

# run_as_root CMD...: run CMD as root (directly, or via sudo when not root).
run_as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root (or passwordless sudo) to run: $*"
	fi
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# pid_alive PIDFILE PATTERN: true when PIDFILE names a live process whose
# command line contains PATTERN (guards against stale, reused pids).
pid_alive() {
	local pidfile="$1" pattern="$2" pid
	[ -s "$pidfile" ] || return 1
	pid="$(tr -dc '0-9' <"$pidfile")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$pattern"
}

# read_pid PIDFILE: print the pid stored in PIDFILE.
read_pid() { tr -dc '0-9' <"$1"; }

# stop_pid PID NAME TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
	local pid="$1" name="$2" timeout="$3" i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < timeout * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	warn "$name (pid $pid) still running after ${timeout}s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	die "$name (pid $pid) did not exit"
}

# show_tail FILE [LINES]: print the last lines of FILE (if it exists) to stderr.
show_tail() {
	local f="$1" n="${2:-40}"
	if [ -s "$f" ]; then
		printf '%s: ---- last %s lines of %s ----\n' "$SCRIPT_NAME" "$n" "$f" >&2
		tail -n "$n" "$f" >&2
		printf '%s: ----\n' "$SCRIPT_NAME" >&2
	fi
}

# now_s: seconds since the epoch (for elapsed-time messages).
now_s() { date +%s; }

# pids_matching PATTERN: print pids of processes whose command line contains
# PATTERN (reads /proc; needs no procps).
pids_matching() {
	local c cmd pid
	for c in /proc/[0-9]*/cmdline; do
		cmd="$( { tr '\0' ' ' <"$c"; } 2>/dev/null)" || continue
		case "$cmd" in
		*"$1"*)
			pid="${c#/proc/}"
			pid="${pid%/cmdline}"
			[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || echo "$pid"
			;;
		esac
	done
}
