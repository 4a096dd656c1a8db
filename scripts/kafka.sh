#!/usr/bin/env bash
# Project-local Apache Kafka 4.x, single node in KRaft mode (combined
# broker + controller), assembled from Maven Central by scripts/kafka/pom.xml.
# Two client listeners: PLAINTEXT without authentication, and SASL_SSL
# (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with a certificate from a test CA the
# script generates; the CA and the SASL credentials are written for clients.
#
#   scripts/kafka.sh install   fetch the jars into $RUN_DIR/kafka/libs (no-op when present)
#   scripts/kafka.sh start     install if needed, create the test CA, certificate and SASL user
#                              once, format storage once, start, wait for metadata on both listeners
#   scripts/kafka.sh stop      SIGTERM, wait, then SIGKILL (no-op when not running)
#   scripts/kafka.sh status    exit 0 when running, 3 when not
#
# Everything lives in $LEADTHROUGH_RUN_DIR/kafka (default <repo>/.run/kafka):
# libs/ config/ data/ logs/ tls/ secrets/ kafka.pid. For clients, secrets/ holds
# ca.crt (the test CA that signed the SASL_SSL listener's certificate), user
# and password (the SASL user, valid for every mechanism). Environment:
#   KAFKA_PORT             PLAINTEXT client listener, 127.0.0.1 (default 29092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener (default 29093)
#   KAFKA_SASL_PORT        SASL_SSL client listener (default KAFKA_PORT + 2, 29094)
#   KAFKA_SASL_USER        the SASL user's name (default leadthrough; the
#                          password is random, made once, in secrets/password)
#   KAFKA_VERSION          Maven version of org.apache.kafka:kafka_2.13 (default: the pom's)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   JAVA_HOME              default /usr/lib/jvm/java-17-openjdk-amd64 when present
set -euo pipefail

SCRIPT_NAME=kafka.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POM="$SCRIPTS_DIR/kafka/pom.xml"
KAFKA_PORT="${KAFKA_PORT:-29092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-29093}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_SASL_USER="${KAFKA_SASL_USER:-leadthrough}"
KAFKA_VERSION="${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

K_DIR="$RUN_DIR/kafka"
K_LIBS="$K_DIR/libs"
K_CONF_DIR="$K_DIR/config"
K_CONF="$K_CONF_DIR/server.properties"
K_LOG4J="$K_CONF_DIR/log4j2.properties"
K_DATA="$K_DIR/data"
K_LOGS="$K_DIR/logs"
K_PIDFILE="$K_DIR/kafka.pid"
K_MARKER="$K_LIBS/.installed"
K_TLS="$K_DIR/tls"
K_SECRETS="$K_DIR/secrets"
# Written once the SCRAM credentials of the current user and password are in
# the metadata log; inside data/ so that wiping the data forgets it too.
K_SCRAM_MARKER="$K_DATA/.leadthrough-scram"
SASL_MECHANISMS="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"

if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
	JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
fi
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
	JAVA="$JAVA_HOME/bin/java"
	export JAVA_HOME
else
	JAVA="$(command -v java || true)"
fi

require_java() {
	[ -n "$JAVA" ] || die "java not found (set JAVA_HOME or put java 17+ on PATH)"
}

installed_version() {
	if [ -f "$K_MARKER" ]; then cat "$K_MARKER"; fi
}

cmd_install() {
	[ -n "$KAFKA_VERSION" ] || die "cannot determine the Kafka version from $POM"
	# kafka-tools (ConfigCommand) joined the pom later: an install without it is redone.
	if [ "$(installed_version)" = "$KAFKA_VERSION" ] && ls "$K_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 &&
		[ -f "$K_LIBS/kafka-tools-$KAFKA_VERSION.jar" ]; then
		log "kafka $KAFKA_VERSION already installed in $K_LIBS"
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven is needed to fetch Kafka from Maven Central)"
	require_java
	if is_running; then
		die "kafka is running; stop it before (re)installing"
	fi
	local t0 tmp
	t0="$(now_s)"
	mkdir -p "$K_DIR"
	tmp="$(mktemp -d "$K_DIR/libs.tmp.XXXXXX")"
	log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and runtime dependencies from Maven Central"
	mkdir -p "$K_LOGS"
	# Output goes to a log (Debian's Maven 3.8.7 prints stray ANSI resets
	# even in batch/quiet mode); shown only on failure.
	if ! mvn -B -q -Dstyle.color=never -f "$POM" \
		-Dkafka.version="$KAFKA_VERSION" -Dkafka.libs.dir="$tmp" \
		dependency:copy-dependencies </dev/null >"$K_LOGS/maven.log" 2>&1; then
		sed 's/\x1b\[[0-9;]*m//g' "$K_LOGS/maven.log" | tail -n 40 >&2
		rm -rf "$tmp"
		die "maven failed to fetch kafka $KAFKA_VERSION (full output: $K_LOGS/maven.log)"
	fi
	ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || {
		rm -rf "$tmp"
		die "kafka_2.13-$KAFKA_VERSION.jar missing after maven run"
	}
	echo "$KAFKA_VERSION" >"$tmp/.installed"
	rm -rf "$K_LIBS"
	mv "$tmp" "$K_LIBS"
	log "installed kafka $KAFKA_VERSION ($(find "$K_LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$K_LIBS" | cut -f1)) in $(($(now_s) - t0))s"
}

is_running() { pid_alive "$K_PIDFILE" "$K_CONF"; }

configured_port() {
	sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$K_CONF" 2>/dev/null | head -n1
}

# configured_sasl_port: the SASL_SSL port of the written config (empty when the
# broker was configured by a kafka.sh without that listener).
configured_sasl_port() {
	sed -n 's|^listeners=.*SASL_SSL://127.0.0.1:\([0-9]*\).*|\1|p' "$K_CONF" 2>/dev/null | head -n1
}

sasl_password() { tr -d '\n' <"$K_SECRETS/password"; }

# ensure_secrets: in tls/, the test CA and the broker's certificate (for
# 127.0.0.1 and localhost) in a PKCS12 keystore; in secrets/, what clients
# need: the CA certificate, and the SASL user and its random password. Made
# once; kept across restarts and data wipes, so clients keep trusting the CA.
ensure_secrets() {
	local t0
	t0="$(now_s)"
	mkdir -p "$K_DIR"
	if ! [ -s "$K_TLS/ca.crt" ] || ! [ -s "$K_TLS/broker.p12" ] || ! [ -s "$K_TLS/broker.p12.password" ]; then
		command -v openssl >/dev/null 2>&1 || die "openssl not found (needed to create the SASL_SSL listener's certificate)"
		local tmp
		tmp="$(mktemp -d "$K_DIR/tls.tmp.XXXXXX")"
		chmod 700 "$tmp"
		(
			umask 077
			cd "$tmp"
			printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >broker.ext
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
				-subj "/CN=leadthrough test CA" -addext "basicConstraints=critical,CA:TRUE" \
				-addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca.key -out ca.crt &&
				openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
					-subj "/CN=localhost" -keyout broker.key -out broker.csr &&
				openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
					-days 3650 -extfile broker.ext -out broker.crt &&
				openssl rand -hex 16 >broker.p12.password &&
				openssl pkcs12 -export -name broker -in broker.crt -inkey broker.key -certfile ca.crt \
					-passout "file:broker.p12.password" -out broker.p12 &&
				rm -f broker.csr broker.ext
		) </dev/null >"$tmp.log" 2>&1 || {
			cat "$tmp.log" >&2
			rm -rf "$tmp" "$tmp.log"
			die "could not create the test CA and the broker's certificate with openssl"
		}
		rm -rf "$tmp.log" "$K_TLS"
		mv "$tmp" "$K_TLS"
		log "created a test CA and the SASL_SSL listener's certificate in $K_TLS"
	fi
	mkdir -p "$K_SECRETS"
	chmod 700 "$K_SECRETS"
	(
		umask 077
		cmp -s "$K_TLS/ca.crt" "$K_SECRETS/ca.crt" || cp "$K_TLS/ca.crt" "$K_SECRETS/ca.crt"
		if [ "$(cat "$K_SECRETS/user" 2>/dev/null)" != "$KAFKA_SASL_USER" ]; then
			printf '%s\n' "$KAFKA_SASL_USER" >"$K_SECRETS/user"
		fi
		if ! [ -s "$K_SECRETS/password" ]; then
			openssl rand -hex 16 >"$K_SECRETS/password.new" && mv "$K_SECRETS/password.new" "$K_SECRETS/password"
			log "created the password of SASL user $KAFKA_SASL_USER in $K_SECRETS/password in $(($(now_s) - t0))s"
		fi
	)
}

scram_marker() { printf '%s:%s' "$KAFKA_SASL_USER" "$(sasl_password)" | sha256sum | cut -d' ' -f1; }

# ensure_scram_user: storage formatted by an older kafka.sh (or with another
# password) lacks the SCRAM credentials; add them through the running broker.
ensure_scram_user() {
	if [ "$(cat "$K_SCRAM_MARKER" 2>/dev/null)" = "$(scram_marker)" ]; then
		return 0
	fi
	local t0 m
	t0="$(now_s)"
	java_opts
	# One mechanism per call: both in one request fails with "A user credential
	# cannot be altered twice in the same request".
	for m in SCRAM-SHA-256 SCRAM-SHA-512; do
		if ! "$JAVA" "${JAVA_OPTS[@]}" -cp "$K_LIBS/*" org.apache.kafka.tools.ConfigCommand \
			--bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
			--add-config "$m=[password=$(sasl_password)]" </dev/null >"$K_LOGS/scram.log" 2>&1; then
			show_tail "$K_LOGS/scram.log" 20
			return 1
		fi
	done
	scram_marker >"$K_SCRAM_MARKER"
	log "added SCRAM-SHA-256/512 credentials of $KAFKA_SASL_USER in $(($(now_s) - t0))s"
}

# sasl_ready PORT MECHANISM: a metadata request over SASL_SSL authenticates.
# kcat (librdkafka 2.0) fails SCRAM against Kafka 4.4 where Go's kafka-go and
# Java clients succeed, so only PLAIN is checked here; the Go tests cover SCRAM.
sasl_ready() {
	timeout 10 kcat -b "127.0.0.1:$1" -L -m 3 -X security.protocol=SASL_SSL -X "sasl.mechanisms=$2" \
		-X "sasl.username=$KAFKA_SASL_USER" -X "sasl.password=$(sasl_password)" \
		-X "ssl.ca.location=$K_SECRETS/ca.crt" </dev/null 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$1"
}

write_config() {
	mkdir -p "$K_CONF_DIR" "$K_DATA" "$K_LOGS"
	chmod 700 "$K_CONF_DIR" # the SASL_SSL settings hold the keystore and PLAIN passwords
	local keystore_password sasl_password
	keystore_password="$(tr -d '\n' <"$K_TLS/broker.p12.password")"
	sasl_password="$(sasl_password)"
	# Written on every start so port changes take effect. The quorum is a
	# static voter set (controller.quorum.voters), so the storage format
	# does not pin the controller address.
	cat >"$K_CONF.new" <<EOF
# Generated by scripts/kafka.sh; edits are overwritten on start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL

# SASL_SSL: the certificate from secrets/ (test CA), no client certificate,
# PLAIN users from the JAAS line below, SCRAM users from the metadata log.
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$K_TLS/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$keystore_password
listener.name.sasl_ssl.ssl.key.password=$keystore_password
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.sasl.enabled.mechanisms=$SASL_MECHANISMS
sasl.enabled.mechanisms=$SASL_MECHANISMS
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$sasl_password";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

log.dirs=$K_DATA
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

num.network.threads=3
num.io.threads=8
log.retention.hours=168
log.segment.bytes=1073741824
EOF
	cat >"$K_LOG4J.new" <<'EOF'
# Generated by scripts/kafka.sh; edits are overwritten on start.
status = warn
name = leadthrough-kafka

appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3

rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server

logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF
	mv -f "$K_CONF.new" "$K_CONF"
	mv -f "$K_LOG4J.new" "$K_LOG4J"
}

java_opts() {
	# shellcheck disable=SC2206  # KAFKA_HEAP_OPTS is a list of flags
	JAVA_OPTS=($KAFKA_HEAP_OPTS
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
		-Dkafka.logs.dir="$K_LOGS"
		-Dlog4j2.configurationFile="$K_LOG4J")
}

format_storage() {
	if [ -f "$K_DATA/meta.properties" ]; then
		return 0
	fi
	local cluster_id
	cluster_id="$("$JAVA" -cp "$K_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
	[ -n "$cluster_id" ] || die "could not generate a cluster id (kafka.tools.StorageTool random-uuid)"
	log "formatting storage in $K_DATA (cluster id $cluster_id)"
	java_opts
	# --add-scram: a fresh cluster starts with the SASL user's SCRAM credentials.
	if ! "$JAVA" "${JAVA_OPTS[@]}" -cp "$K_LIBS/*" kafka.tools.StorageTool format \
		--config "$K_CONF" --cluster-id "$cluster_id" --ignore-formatted \
		--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$(sasl_password)]" \
		--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$(sasl_password)]" \
		</dev/null >"$K_LOGS/format.log" 2>&1; then
		show_tail "$K_LOGS/format.log" 40
		die "kafka storage format failed"
	fi
	echo "$cluster_id" >"$K_DIR/cluster.id"
	scram_marker >"$K_SCRAM_MARKER"
}

# kcat prints "1 brokers:" followed by the broker line once metadata works.
broker_ready() {
	timeout 10 kcat -b "127.0.0.1:$1" -L -m 3 </dev/null 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$1"
}

cmd_start() {
	require_java
	command -v kcat >/dev/null 2>&1 || {
		log "kcat not installed (used for the readiness check); running deps.sh"
		"$SCRIPTS_DIR/deps.sh"
	}
	if is_running; then
		local port
		port="$(configured_port)"
		local sasl_port
		sasl_port="$(configured_sasl_port)"
		log "already running (pid $(read_pid "$K_PIDFILE"), 127.0.0.1:$port, SASL_SSL 127.0.0.1:${sasl_port:-none})"
		if [ "$port" != "$KAFKA_PORT" ]; then
			warn "the running broker uses port $port, not KAFKA_PORT=$KAFKA_PORT; run 'stop' first to change it"
		fi
		if [ "$sasl_port" != "$KAFKA_SASL_PORT" ]; then
			warn "the running broker has no SASL_SSL listener on KAFKA_SASL_PORT=$KAFKA_SASL_PORT (started by an older kafka.sh?); run 'stop' first to add it"
		fi
		return 0
	fi
	rm -f "$K_PIDFILE"
	cmd_install
	local p
	for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT"; do
		port_open "$p" && die "port $p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_SASL_PORT)"
	done

	ensure_secrets
	write_config
	format_storage
	java_opts

	local t0 pid
	t0="$(now_s)"
	log "starting kafka $(installed_version) (127.0.0.1:$KAFKA_PORT, SASL_SSL 127.0.0.1:$KAFKA_SASL_PORT, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, dir $K_DIR)"
	if [ -f "$K_LOGS/stdout.log" ]; then
		mv -f "$K_LOGS/stdout.log" "$K_LOGS/stdout.log.1"
	fi
	# setsid: own session, so the broker outlives the calling shell/CI step.
	(cd "$K_DIR" && exec setsid "$JAVA" "${JAVA_OPTS[@]}" -cp "$K_LIBS/*" kafka.Kafka "$K_CONF" \
		</dev/null >"$K_LOGS/stdout.log" 2>&1) &
	pid=$!
	echo "$pid" >"$K_PIDFILE"

	local deadline=$((t0 + KAFKA_START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			warn "kafka (pid $pid) exited during startup"
			break
		fi
		if port_open "$KAFKA_PORT" && broker_ready "$KAFKA_PORT" && is_running; then
			if ensure_scram_user && sasl_ready "$KAFKA_SASL_PORT" PLAIN; then
				log "ready in $(($(now_s) - t0))s (pid $pid); SASL_SSL credentials in $K_SECRETS"
				return 0
			fi
			warn "the SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_PORT does not authenticate $KAFKA_SASL_USER (yet)"
		fi
		if [ "$(now_s)" -ge "$deadline" ]; then
			warn "kafka did not answer metadata requests within ${KAFKA_START_TIMEOUT}s"
			break
		fi
		sleep 1
	done
	show_tail "$K_LOGS/server.log" 40
	show_tail "$K_LOGS/stdout.log" 20
	if kill -0 "$pid" 2>/dev/null; then
		warn "stopping the unresponsive broker"
		stop_pid "$pid" kafka 30
	fi
	rm -f "$K_PIDFILE"
	die "kafka failed to start (logs: $K_LOGS)"
}

cmd_stop() {
	if ! is_running; then
		rm -f "$K_PIDFILE"
		log "not running"
		return 0
	fi
	local pid t0
	pid="$(read_pid "$K_PIDFILE")"
	t0="$(now_s)"
	log "stopping kafka (pid $pid)"
	stop_pid "$pid" kafka 60
	rm -f "$K_PIDFILE"
	log "stopped in $(($(now_s) - t0))s"
}

cmd_status() {
	if is_running; then
		local port
		port="$(configured_port)"
		if command -v kcat >/dev/null 2>&1 && broker_ready "$port"; then
			local sasl_port sasl=none
			sasl_port="$(configured_sasl_port)"
			if [ -n "$sasl_port" ]; then
				sasl="127.0.0.1:$sasl_port"
				sasl_ready "$sasl_port" PLAIN || sasl+=" (not authenticating)"
			fi
			log "running (pid $(read_pid "$K_PIDFILE"), kafka $(installed_version), 127.0.0.1:$port, SASL_SSL $sasl, dir $K_DIR)"
		else
			log "running but not answering metadata (pid $(read_pid "$K_PIDFILE"), 127.0.0.1:$port)"
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
