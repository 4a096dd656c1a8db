# leadthrough — the two commands that matter:
#   make demo   run the whole pipeline on this machine (installs ClickHouse if needed)
#   make test   run every test against real ClickHouse (18.16, and 26.9 in chdb), Apache Kafka and promtool
#               (installs and starts them)

SHELL := /bin/bash
GO ?= go
CLICKHOUSE_TCP_PORT ?= 9000
KAFKA_PORT ?= 29092
CHDB_HTTP_PORT ?= 8124
# ClickHouse's secure (TLS) native port: 440 above the plaintext one, as 9440 is to 9000
CLICKHOUSE_SECURE_PORT ?= $(shell echo $$(($(CLICKHOUSE_TCP_PORT) + 440)))
# Kafka's SASL_SSL listener: 2 above the plaintext one (the KRaft controller has the port in between)
KAFKA_SASL_PORT ?= $(shell echo $$(($(KAFKA_PORT) + 2)))
# The local cluster of scripts/cluster.sh (2 shards × 2 replicas): node N's native port is CLUSTER_TCP_PORT_BASE + N
CLUSTER_TCP_PORT_BASE ?= 19100
CLUSTER_NODES := $(shell b=$(CLUSTER_TCP_PORT_BASE); echo 127.0.0.1:$$((b+1)),127.0.0.1:$$((b+2)),127.0.0.1:$$((b+3)),127.0.0.1:$$((b+4)))
export CLICKHOUSE_TCP_PORT CLICKHOUSE_SECURE_PORT KAFKA_PORT KAFKA_SASL_PORT CHDB_HTTP_PORT CLUSTER_TCP_PORT_BASE
# The test CA, user and password that scripts/clickhouse.sh generates for the secure port
CLICKHOUSE_SECRETS := $(or $(LEADTHROUGH_RUN_DIR),$(CURDIR)/.run)/clickhouse/secrets
# The test CA, SASL user and password that scripts/kafka.sh generates for the SASL_SSL listener
KAFKA_SECRETS := $(or $(LEADTHROUGH_RUN_DIR),$(CURDIR)/.run)/kafka/secrets

TEST_ENV := LEADTHROUGH_REQUIRE_SERVICES=1 \
	LEADTHROUGH_TEST_CLICKHOUSE=127.0.0.1:$(CLICKHOUSE_TCP_PORT) \
	LEADTHROUGH_TEST_CLICKHOUSE_SECURE=127.0.0.1:$(CLICKHOUSE_SECURE_PORT) \
	LEADTHROUGH_TEST_CLICKHOUSE_SECRETS=$(CLICKHOUSE_SECRETS) \
	LEADTHROUGH_TEST_CHDB=127.0.0.1:$(CHDB_HTTP_PORT) \
	LEADTHROUGH_TEST_KAFKA=127.0.0.1:$(KAFKA_PORT) \
	LEADTHROUGH_TEST_KAFKA_SASL=127.0.0.1:$(KAFKA_SASL_PORT) \
	LEADTHROUGH_TEST_KAFKA_SECRETS=$(KAFKA_SECRETS) \
	LEADTHROUGH_TEST_CLICKHOUSE_CLUSTER=$(CLUSTER_NODES)

.PHONY: demo test build vet unit bench fuzz dashboards kubernetes deps services-up services-down \
	clickhouse-up clickhouse-down chdb-up chdb-down kafka-up kafka-down cluster-up cluster-down promtool clean

## demo: install and start ClickHouse if needed, then run `leadthrough demo` (Ctrl-C to stop)
demo: clickhouse-up
	$(GO) run ./cmd/leadthrough demo --clickhouse-addr 127.0.0.1:$(CLICKHOUSE_TCP_PORT)

## test: vet, then every test with real services (fails, never skips, when one is missing); -count=1 because the
## Go test cache cannot see the services, so a cached pass would prove nothing about them
test: deps services-up cluster-up promtool vet
	$(TEST_ENV) $(GO) test -count=1 -timeout 20m ./...

## unit: the tests that need no service (service tests skip and say so)
unit:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build -o bin/leadthrough ./cmd/leadthrough

## bench: benchmarks (results are recorded in docs/benchmarks.md)
## (the first run loads the scale benchmark's simulated orgs, ~23M events, into ClickHouse: about 10 minutes; later
## runs reuse them; BenchmarkIngestVsPipe simulates ~1M events into an embedded broker of its own and drains them in
## three rounds of the pipe and ours, about 1.5 minutes; LEADTHROUGH_BENCH_ROUNDS sets the rounds,
## LEADTHROUGH_BENCH_DAYS=1440 makes a 10M backlog). -p 1: benchmarks never share the machine's two
## cores with each other.
bench: services-up
	$(TEST_ENV) $(GO) test -p 1 -timeout 90m -run '^$$' -bench . -benchmem ./...

## fuzz: run every fuzz target (the event contract and each CRM decoder) for FUZZTIME (default 30s) each
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzzing $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## dashboards: regenerate the committed Grafana JSON
dashboards:
	$(GO) run ./dashboards/cmd/gen

## kubernetes: regenerate the committed PrometheusRule of deploy/kubernetes from deploy/prometheus/alerts.yml
kubernetes:
	$(GO) run ./deploy/kubernetes/gen

deps:
	scripts/deps.sh

services-up:
	scripts/services.sh up

services-down: cluster-down
	scripts/services.sh down

clickhouse-up:
	scripts/clickhouse.sh start

clickhouse-down:
	scripts/clickhouse.sh stop

chdb-up:
	scripts/chdb.sh start

chdb-down:
	scripts/chdb.sh stop

kafka-up:
	scripts/kafka.sh start

kafka-down:
	scripts/kafka.sh stop

## cluster-up: the local ClickHouse cluster the cluster tests run on (ZooKeeper + four 18.16 servers, 2 shards ×
## 2 replicas; docs/scaling.md)
cluster-up:
	scripts/cluster.sh start

cluster-down:
	scripts/cluster.sh stop

promtool:
	scripts/prometheus.sh check

clean: services-down
	rm -rf .run bin
