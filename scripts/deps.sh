#!/usr/bin/env bash
# Install the Debian packages the local services need:
#   clickhouse-server clickhouse-client prometheus kcat docker-compose (validates deploy/compose; no engine is needed)
#   python3 python3-venv (chdb.sh's virtualenv for chdb; Debian ships venv's ensurepip separately)
#   chromium (headless, for the test that opens serve's report page in a real browser)
#   zookeeper (scripts/cluster.sh runs it, with its jars and the machine's java, for the local ClickHouse cluster)
#   openjdk-17-jre-headless maven (scripts/kafka.sh fetches Apache Kafka from Maven Central and runs it on Java 17+;
#     each only when missing: no Java 17 or newer where kafka.sh looks for one, no mvn on PATH)
#
# No-op when all of them are installed. Otherwise waits for any other
# apt/dpkg run to finish, runs `apt-get update` and installs the missing
# ones non-interactively. Package maintainer scripts are prevented from
# starting system services (a temporary /usr/sbin/policy-rc.d), and any
# system-wide clickhouse-server (the Debian service, config in
# /etc/clickhouse-server) is stopped and disabled so it never holds port
# 9000: we only run the project-local server from scripts/clickhouse.sh.
set -euo pipefail

SCRIPT_NAME=deps.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(clickhouse-server clickhouse-client prometheus kcat docker-compose python3 python3-venv chromium zookeeper)
APT_WAIT_SECONDS="${APT_WAIT_SECONDS:-1800}"

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# What scripts/kafka.sh needs besides PACKAGES, installed only when missing, so that a JDK or Maven of one's own is
# used as it is.
JAVA_PACKAGE=openjdk-17-jre-headless
MAVEN_PACKAGE=maven

# kafka_java prints the java that scripts/kafka.sh runs, chosen the same way: $JAVA_HOME/bin/java, else Debian's
# OpenJDK 17 when JAVA_HOME is unset, else java on PATH; nothing when there is none.
kafka_java() {
	if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
		echo "$JAVA_HOME/bin/java"
	elif [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
		echo /usr/lib/jvm/java-17-openjdk-amd64/bin/java
	else
		command -v java || true
	fi
}

# java_major JAVA prints the major version `JAVA -version` reports: 17 for "17.0.15", 8 for "1.8.0_392".
java_major() {
	local v
	v="$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)"
	v="${v#1.}"
	printf '%s' "${v%%[!0-9]*}"
}

# needs_java succeeds when scripts/kafka.sh would find no Java 17 or newer.
needs_java() {
	local j m
	j="$(kafka_java)"
	[ -n "$j" ] || return 0
	m="$(java_major "$j")"
	[ -z "$m" ] || [ "$m" -lt 17 ]
}

# True while some apt/dpkg process (e.g. an install started from another
# shell) is running. Reads /proc so it needs no extra tools.
apt_busy() {
	local c n
	for c in /proc/[0-9]*/comm; do
		n="$(cat "$c" 2>/dev/null)" || continue
		case "$n" in
		apt | apt-get | aptitude | dpkg | unattended-upgr*) return 0 ;;
		esac
	done
	return 1
}

wait_for_apt() {
	local waited=0
	if apt_busy; then
		log "another apt-get/dpkg is running; waiting for it to finish (up to ${APT_WAIT_SECONDS}s)"
		while apt_busy; do
			((waited >= APT_WAIT_SECONDS)) && die "apt/dpkg still busy after ${APT_WAIT_SECONDS}s"
			sleep 2
			waited=$((waited + 2))
		done
		log "apt/dpkg is free again (waited ${waited}s)"
	fi
}

POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_CREATED=0
cleanup() {
	if [ "$POLICY_CREATED" = 1 ]; then
		run_as_root rm -f "$POLICY_RC_D" || true
		log "removed temporary $POLICY_RC_D"
	fi
}
trap cleanup EXIT

# Stop (and disable) the system-wide clickhouse-server started by the
# Debian package, if any. Only touches processes using the system config,
# never our project-local server. (Don't use /etc/init.d/clickhouse-server
# stop: it kills *every* clickhouse-server binary, including ours.)
stop_system_clickhouse() {
	local c pid cmd pids=()
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		if systemctl is-active --quiet clickhouse-server 2>/dev/null; then
			log "stopping system service clickhouse-server (systemd)"
			run_as_root systemctl stop clickhouse-server || warn "systemctl stop clickhouse-server failed"
		fi
		if systemctl is-enabled --quiet clickhouse-server 2>/dev/null; then
			log "disabling system service clickhouse-server (systemd)"
			run_as_root systemctl disable clickhouse-server >/dev/null 2>&1 || warn "systemctl disable clickhouse-server failed"
		fi
	fi
	if ls /etc/rc[2345].d/S*clickhouse-server >/dev/null 2>&1 && command -v update-rc.d >/dev/null 2>&1; then
		log "disabling sysvinit autostart of clickhouse-server"
		run_as_root update-rc.d clickhouse-server disable >/dev/null 2>&1 || warn "update-rc.d clickhouse-server disable failed"
	fi
	for c in /proc/[0-9]*/cmdline; do
		cmd="$( { tr '\0' ' ' <"$c"; } 2>/dev/null)" || continue
		case "$cmd" in
		*clickhouse-server*/etc/clickhouse-server/config.xml*)
			pid="${c#/proc/}"
			pids+=("${pid%/cmdline}")
			;;
		esac
	done
	for pid in "${pids[@]}"; do
		log "stopping system-wide clickhouse-server (pid $pid)"
		run_as_root kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 150); do
			[ -d "/proc/$pid" ] || break
			sleep 0.2
		done
		if [ -d "/proc/$pid" ]; then
			warn "system clickhouse-server (pid $pid) ignored SIGTERM, killing it"
			run_as_root kill -KILL "$pid" 2>/dev/null || true
		fi
	done
}

main() {
	command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script is for Debian/Ubuntu"

	local wanted=("${PACKAGES[@]}")
	needs_java && wanted+=("$JAVA_PACKAGE")
	command -v mvn >/dev/null 2>&1 || wanted+=("$MAVEN_PACKAGE")

	local missing=() p
	for p in "${wanted[@]}"; do
		installed "$p" || missing+=("$p")
	done

	if [ "${#missing[@]}" -eq 0 ]; then
		# An install that another shell is still running may not be
		# complete yet even if dpkg already lists the packages.
		wait_for_apt
		log "all packages installed: ${wanted[*]}"
	else
		log "missing packages: ${missing[*]}"
		wait_for_apt
		# Re-check: a concurrent apt run may have installed them meanwhile.
		local still=()
		for p in "${missing[@]}"; do
			installed "$p" || still+=("$p")
		done
		if [ "${#still[@]}" -eq 0 ]; then
			log "packages were installed meanwhile by another apt run"
		else
			if [ ! -e "$POLICY_RC_D" ]; then
				log "creating temporary $POLICY_RC_D so package scripts don't start services"
				printf '#!/bin/sh\n# temporary, created by leadthrough scripts/deps.sh\nexit 101\n' |
					run_as_root tee "$POLICY_RC_D" >/dev/null
				run_as_root chmod 755 "$POLICY_RC_D"
				POLICY_CREATED=1
			fi
			local t0
			t0="$(now_s)"
			log "apt-get update"
			run_as_root apt-get -o DPkg::Lock::Timeout=600 -q update </dev/null
			log "apt-get install ${still[*]}"
			# clickhouse-server's postinst runs invoke-rc.d ... start; with
			# policy-rc.d denying it that is a no-op and not an error.
			run_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q -y \
				--no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				install "${still[@]}" </dev/null
			log "installed ${still[*]} in $(($(now_s) - t0))s"
			for p in "${still[@]}"; do
				installed "$p" || die "package $p is still not installed"
			done
		fi
	fi

	if needs_java; then
		p="$(kafka_java)"
		warn "scripts/kafka.sh will find no Java 17 or newer (${p:-no java found}; JAVA_HOME=${JAVA_HOME:-unset}):" \
			"unset JAVA_HOME or point it at a Java 17+"
	fi
	stop_system_clickhouse
}

main "$@"
