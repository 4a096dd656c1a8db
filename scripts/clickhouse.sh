#!/usr/bin/env bash
# Project-local ClickHouse server (the Debian package, 18.16).
#
#   scripts/clickhouse.sh start           start (no-op when already running)
#   scripts/clickhouse.sh stop            stop and wait (no-op when not running)
#   scripts/clickhouse.sh status          exit 0 when running, 3 when not
#   scripts/clickhouse.sh client [ARGS]   clickhouse-client on our port, e.g.
#                                         scripts/clickhouse.sh client -q 'SELECT 1'
#
# Config, data, logs and tmp live in $LEADTHROUGH_RUN_DIR/clickhouse
# (default <repo>/.run/clickhouse). Environment:
#   CLICKHOUSE_TCP_PORT   native protocol port (default 9000)
#   CLICKHOUSE_SECURE_PORT  native protocol over TLS (default CLICKHOUSE_TCP_PORT
#                         + 440, so 9440; 0 disables it)
#   CLICKHOUSE_HTTP_PORT  HTTP port (default 8123; empty or 0 disables it)
#   CLICKHOUSE_START_TIMEOUT  seconds to wait for readiness (default 60)
# The server listens on 127.0.0.1 only; user `default`, no password. For the
# secure port, `start` generates once (and renews when it no longer verifies
# or expires within 30 days) a test CA and a server certificate for 127.0.0.1
# and localhost in clickhouse/tls/, and a user `leadthrough_test` with a random
# password. What a client needs is in clickhouse/secrets/: ca.crt, user and
# password (mode 600, never printed).
set -euo pipefail

SCRIPT_NAME=clickhouse.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Remember whether the caller chose the port (matters for `client`/`start`
# when a server is already running with another port).
CLICKHOUSE_TCP_PORT_SET="${CLICKHOUSE_TCP_PORT:+1}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT-8123}"
# Derived from the TCP port so that a second server on shifted ports (a CI run
# beside a developer's) never collides on the secure port either.
CLICKHOUSE_SECURE_PORT="${CLICKHOUSE_SECURE_PORT:-$((CLICKHOUSE_TCP_PORT + 440))}"
CLICKHOUSE_START_TIMEOUT="${CLICKHOUSE_START_TIMEOUT:-60}"

CH_DIR="$RUN_DIR/clickhouse"
CH_CONFIG="$CH_DIR/config.xml"
CH_USERS="$CH_DIR/users.xml"
CH_DATA="$CH_DIR/data"
CH_TMP="$CH_DIR/tmp"
CH_LOGS="$CH_DIR/logs"
CH_PIDFILE="$CH_DIR/clickhouse-server.pid"
CH_TLS="$CH_DIR/tls"         # CA and server key pairs (the server's side)
CH_SECRETS="$CH_DIR/secrets" # what a test client needs: ca.crt, user, password
TEST_USER=leadthrough_test

server_bin() {
	if [ -x /usr/sbin/clickhouse-server ]; then
		echo /usr/sbin/clickhouse-server
	else
		command -v clickhouse-server 2>/dev/null || true
	fi
}

client_bin() {
	command -v clickhouse-client 2>/dev/null || true
}

ensure_installed() {
	if [ -z "$(server_bin)" ] || [ -z "$(client_bin)" ]; then
		log "clickhouse-server/clickhouse-client not installed; running deps.sh"
		"$SCRIPTS_DIR/deps.sh"
		if [ -z "$(server_bin)" ] || [ -z "$(client_bin)" ]; then
			die "clickhouse still not installed after deps.sh"
		fi
	fi
}

is_running() { pid_alive "$CH_PIDFILE" "$CH_CONFIG"; }

# Port the running server was configured with (from its config file).
configured_tcp_port() {
	sed -n 's:.*<tcp_port>\([0-9]*\)</tcp_port>.*:\1:p' "$CH_CONFIG" 2>/dev/null | head -n1
}

configured_secure_port() {
	sed -n 's:.*<tcp_port_secure>\([0-9]*\)</tcp_port_secure>.*:\1:p' "$CH_CONFIG" 2>/dev/null | head -n1
}

secure_enabled() { [ "$CLICKHOUSE_SECURE_PORT" != 0 ]; }

ping_server() {
	local port="${1:-$CLICKHOUSE_TCP_PORT}"
	timeout 5 "$(client_bin)" --host 127.0.0.1 --port "$port" -q 'SELECT 1' </dev/null >/dev/null 2>&1
}

# cert_ok CERT: true when CERT verifies against our CA and is valid for at
# least 30 more days.
cert_ok() {
	[ -s "$1" ] && [ -s "$CH_TLS/ca.crt" ] &&
		openssl verify -CAfile "$CH_TLS/ca.crt" "$1" >/dev/null 2>&1 &&
		openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1
}

# ensure_tls: a test CA and a server certificate for 127.0.0.1 and localhost,
# kept across starts; renewed when they no longer verify or expire soon.
ensure_tls() {
	command -v openssl >/dev/null 2>&1 || die "openssl is needed for the secure port (apt-get install openssl, or CLICKHOUSE_SECURE_PORT=0)"
	mkdir -p "$CH_TLS"
	chmod 700 "$CH_TLS"
	if ! cert_ok "$CH_TLS/ca.crt" || [ ! -s "$CH_TLS/ca.key" ]; then
		log "generating a test CA in $CH_TLS"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=leadthrough test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout "$CH_TLS/ca.key.new" -out "$CH_TLS/ca.crt.new" >"$CH_LOGS/openssl.log" 2>&1 ||
			die "openssl could not create the CA (log: $CH_LOGS/openssl.log)"
		mv -f "$CH_TLS/ca.key.new" "$CH_TLS/ca.key"
		mv -f "$CH_TLS/ca.crt.new" "$CH_TLS/ca.crt"
	fi
	if ! cert_ok "$CH_TLS/server.crt" || [ ! -s "$CH_TLS/server.key" ]; then
		log "generating the server certificate (127.0.0.1, localhost) in $CH_TLS"
		printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" >"$CH_TLS/server.ext"
		{
			openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" \
				-keyout "$CH_TLS/server.key.new" -out "$CH_TLS/server.csr" &&
				openssl x509 -req -in "$CH_TLS/server.csr" -CA "$CH_TLS/ca.crt" -CAkey "$CH_TLS/ca.key" \
					-set_serial "0x$(openssl rand -hex 16)" -days 825 -extfile "$CH_TLS/server.ext" \
					-out "$CH_TLS/server.crt.new"
		} >"$CH_LOGS/openssl.log" 2>&1 || die "openssl could not create the server certificate (log: $CH_LOGS/openssl.log)"
		mv -f "$CH_TLS/server.key.new" "$CH_TLS/server.key"
		mv -f "$CH_TLS/server.crt.new" "$CH_TLS/server.crt"
		rm -f "$CH_TLS/server.csr" "$CH_TLS/server.ext"
	fi
	mkdir -p "$CH_SECRETS"
	chmod 700 "$CH_SECRETS"
	cp -f "$CH_TLS/ca.crt" "$CH_SECRETS/ca.crt"
}

# ensure_test_user_password: a random password for $TEST_USER, generated once
# into a file only the owner can read; never printed. Prints the SHA-256 that
# users.xml stores instead of the password.
ensure_test_user_password() {
	local pw="$CH_SECRETS/password"
	mkdir -p "$CH_SECRETS"
	chmod 700 "$CH_SECRETS"
	if [ ! -s "$pw" ]; then
		(umask 077 && openssl rand -hex 24 >"$pw.new") || die "openssl could not generate the test password"
		mv -f "$pw.new" "$pw"
	fi
	chmod 600 "$pw"
	printf '%s\n' "$TEST_USER" >"$CH_SECRETS/user"
	tr -d '\n' <"$pw" | sha256sum | cut -d' ' -f1
}

write_config() {
	mkdir -p "$CH_DATA" "$CH_TMP" "$CH_LOGS" "$CH_DIR/user_files" "$CH_DIR/format_schemas"
	local http="" secure="" password_sha256
	password_sha256="$(ensure_test_user_password)"
	if [ -n "$CLICKHOUSE_HTTP_PORT" ] && [ "$CLICKHOUSE_HTTP_PORT" != 0 ]; then
		http="    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>"
	fi
	if secure_enabled; then
		ensure_tls
		# verificationMode none: clients are not asked for certificates; they
		# authenticate with a user and password.
		secure="    <tcp_port_secure>$CLICKHOUSE_SECURE_PORT</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>$CH_TLS/server.crt</certificateFile>
            <privateKeyFile>$CH_TLS/server.key</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>"
	fi
	# Written on every start, so port changes take effect. ClickHouse 18.16
	# uses the <yandex> root element. No <interserver_http_port>: 18.16 only
	# opens it when configured, so leaving it out disables it.
	cat >"$CH_CONFIG.new" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/clickhouse.sh; edits are overwritten on start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOGS/clickhouse-server.log</log>
        <errorlog>$CH_LOGS/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>

    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
$http
$secure

    <path>$CH_DATA/</path>
    <tmp_path>$CH_TMP/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_USERS</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>

    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>

    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
	cat >"$CH_USERS.new" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/clickhouse.sh; edits are overwritten on start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <!-- For the tests of passwords and TLS (the secure port); it exists
             with the secure port off too. users.xml keeps only the SHA-256. -->
        <$TEST_USER>
            <password_sha256_hex>$password_sha256</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </$TEST_USER>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
	mv -f "$CH_CONFIG.new" "$CH_CONFIG"
	mv -f "$CH_USERS.new" "$CH_USERS"
}

cmd_start() {
	ensure_installed
	if is_running; then
		local port
		port="$(configured_tcp_port)"
		log "already running (pid $(read_pid "$CH_PIDFILE"), tcp 127.0.0.1:$port)"
		if [ "$port" != "$CLICKHOUSE_TCP_PORT" ]; then
			warn "the running server uses port $port, not CLICKHOUSE_TCP_PORT=$CLICKHOUSE_TCP_PORT; run 'stop' first to change it"
		fi
		local secure
		secure="$(configured_secure_port)"
		if secure_enabled && [ "$secure" != "$CLICKHOUSE_SECURE_PORT" ]; then
			warn "the running server's secure port is ${secure:-off}, not CLICKHOUSE_SECURE_PORT=$CLICKHOUSE_SECURE_PORT; run 'stop' first to change it"
		fi
		return 0
	fi
	rm -f "$CH_PIDFILE"
	if port_open "$CLICKHOUSE_TCP_PORT"; then
		die "port $CLICKHOUSE_TCP_PORT is already in use by another process (a system clickhouse-server? try scripts/deps.sh, or set CLICKHOUSE_TCP_PORT)"
	fi
	if secure_enabled && port_open "$CLICKHOUSE_SECURE_PORT"; then
		die "secure port $CLICKHOUSE_SECURE_PORT is already in use (set CLICKHOUSE_SECURE_PORT, or 0 to disable it)"
	fi
	if [ -n "$CLICKHOUSE_HTTP_PORT" ] && [ "$CLICKHOUSE_HTTP_PORT" != 0 ] && port_open "$CLICKHOUSE_HTTP_PORT"; then
		die "HTTP port $CLICKHOUSE_HTTP_PORT is already in use (set CLICKHOUSE_HTTP_PORT, or 0 to disable HTTP)"
	fi

	write_config
	local http_desc="127.0.0.1:$CLICKHOUSE_HTTP_PORT"
	if [ -z "$CLICKHOUSE_HTTP_PORT" ] || [ "$CLICKHOUSE_HTTP_PORT" = 0 ]; then http_desc=off; fi
	local secure_desc="127.0.0.1:$CLICKHOUSE_SECURE_PORT"
	if ! secure_enabled; then secure_desc=off; fi
	log "starting clickhouse-server (tcp 127.0.0.1:$CLICKHOUSE_TCP_PORT, tls ${secure_desc}, http ${http_desc}, dir $CH_DIR)"
	local t0 err_mark
	t0="$(now_s)"
	err_mark="$({ wc -l <"$CH_LOGS/clickhouse-server.err.log"; } 2>/dev/null || echo 0)"
	# --daemon forks, detaches (setsid) and sends stdout/stderr to
	# stdout.log/stderr.log next to the configured log file.
	(cd "$CH_DIR" && "$(server_bin)" --config-file="$CH_CONFIG" --pid-file="$CH_PIDFILE" --daemon </dev/null) ||
		die "clickhouse-server --daemon failed"

	local deadline=$((t0 + CLICKHOUSE_START_TIMEOUT)) pid=""
	while :; do
		if ping_server && is_running; then
			log "ready in $(($(now_s) - t0))s (pid $(read_pid "$CH_PIDFILE"), version $(server_version))"
			return 0
		fi
		# The daemon writes its pid file right after forking and removes it
		# when it exits: a pid that was seen and is gone means it died.
		if [ -z "$pid" ] && [ -s "$CH_PIDFILE" ]; then
			pid="$(read_pid "$CH_PIDFILE")"
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			warn "clickhouse-server (pid $pid) exited during startup"
			break
		fi
		if [ -z "$pid" ] && [ "$(now_s)" -ge $((t0 + 3)) ] &&
			[ -z "$(pids_matching "--config-file=$CH_CONFIG")" ]; then
			warn "clickhouse-server is not running (it exited during startup)"
			break
		fi
		if [ "$(now_s)" -ge "$deadline" ]; then
			warn "clickhouse-server did not answer within ${CLICKHOUSE_START_TIMEOUT}s"
			break
		fi
		sleep 0.5
	done
	error_report "$err_mark"
	if is_running; then
		warn "stopping the unresponsive server"
		stop_pid "$(read_pid "$CH_PIDFILE")" clickhouse-server 30
	fi
	die "clickhouse-server failed to start (logs: $CH_LOGS)"
}

error_report() {
	local err_mark="${1:-0}" errlog="$CH_LOGS/clickhouse-server.err.log"
	if [ -s "$errlog" ] && [ "$(wc -l <"$errlog")" -gt "$err_mark" ]; then
		printf '%s: ---- %s (last 40 new lines) ----\n' "$SCRIPT_NAME" "$errlog" >&2
		tail -n +"$((err_mark + 1))" "$errlog" | tail -n 40 >&2
		printf '%s: ----\n' "$SCRIPT_NAME" >&2
	else
		show_tail "$CH_LOGS/stderr.log" 20
		show_tail "$CH_LOGS/clickhouse-server.log" 30
	fi
}

server_version() {
	timeout 5 "$(client_bin)" --host 127.0.0.1 --port "$CLICKHOUSE_TCP_PORT" -q 'SELECT version()' </dev/null 2>/dev/null || echo '?'
}

cmd_stop() {
	if ! is_running; then
		rm -f "$CH_PIDFILE"
		log "not running"
		return 0
	fi
	local pid t0
	pid="$(read_pid "$CH_PIDFILE")"
	t0="$(now_s)"
	log "stopping clickhouse-server (pid $pid)"
	stop_pid "$pid" clickhouse-server 60
	rm -f "$CH_PIDFILE"
	log "stopped in $(($(now_s) - t0))s"
}

cmd_status() {
	if is_running; then
		local port
		port="$(configured_tcp_port)"
		local secure
		secure="$(configured_secure_port)"
		if ping_server "$port"; then
			log "running (pid $(read_pid "$CH_PIDFILE"), tcp 127.0.0.1:$port, tls ${secure:+127.0.0.1:}${secure:-off}, dir $CH_DIR)"
		else
			log "running but not answering yet (pid $(read_pid "$CH_PIDFILE"), tcp 127.0.0.1:$port)"
		fi
		return 0
	fi
	log "not running"
	return 3
}

cmd_client() {
	ensure_installed
	local port="$CLICKHOUSE_TCP_PORT"
	# Prefer the port of the running project server, unless the caller set one.
	if [ -z "${CLICKHOUSE_TCP_PORT_SET:-}" ] && is_running; then
		port="$(configured_tcp_port)"
	fi
	exec "$(client_bin)" --host 127.0.0.1 --port "$port" "$@"
}

usage() {
	echo "usage: $0 start|stop|status|client [clickhouse-client args...]" >&2
	exit 2
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
client)
	shift
	cmd_client "$@"
	;;
*) usage ;;
esac
