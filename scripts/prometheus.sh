#!/usr/bin/env bash
# Prometheus tooling. Tests only need promtool (rule/metrics checks);
# no Prometheus server is started.
#
#   scripts/prometheus.sh check   install promtool if missing (deps.sh), print its version
set -euo pipefail

SCRIPT_NAME=prometheus.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd_check() {
	if ! command -v promtool >/dev/null 2>&1; then
		log "promtool not installed; running deps.sh"
		"$SCRIPTS_DIR/deps.sh"
		command -v promtool >/dev/null 2>&1 || die "promtool still missing after deps.sh"
	fi
	log "promtool: $(command -v promtool)"
	promtool --version 2>&1
}

case "${1:-}" in
check) cmd_check ;;
*)
	echo "usage: $0 check" >&2
	exit 2
	;;
esac
