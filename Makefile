# Switchboard: every target works on a fresh clone (it creates .venv when missing).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SB_DATA_DIR ?= $(CURDIR)/.data
# Test infrastructure: its own ports and data, so it never touches a running `make up`.
TEST_ENV := SB_DATA_DIR=$(CURDIR)/.data/test SB_KAFKA_PORT=19092 SB_PG_PORT=15432

.PHONY: venv run up down test test-fast bench chaos fuzz lint contracts manifests migrate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create the virtual environment and install everything

run: $(STAMP) ## embedded mode: all five services on 127.0.0.1:8000, nothing but Python
	$(BIN)/switchboard run

up: $(STAMP) ## local stack: PostgreSQL + Kafka + five services on 127.0.0.1:8001-8005
	bash deploy/local/stack.sh up

down: ## stop the local stack
	bash deploy/local/stack.sh down

test: $(STAMP) ## everything CI runs: real PostgreSQL and Kafka are started for the tests
	$(TEST_ENV) SB_KAFKA_FAST=1 bash deploy/local/kafka.sh start
	$(TEST_ENV) bash deploy/local/postgres.sh start
	$(BIN)/python -m sbcontracts.generate --check
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP) ## unit and contract tests only (no broker, no database server)
	$(BIN)/python -m pytest -q tests/unit tests/contract

BENCH_ENV := SB_DATA_DIR=$(CURDIR)/.data/bench SB_KAFKA_PORT=29092 SB_PG_PORT=25432 SB_API_RATE_PER_S=1000000 SB_API_RATE_BURST=1000000
BENCHES := bench.bus_throughput bench.ingest_webhooks bench.crm_attribution bench.routing_decisions bench.notifier_alerts bench.pipeline bench.analytics_kpis

bench: $(STAMP) ## benchmarks against real Kafka and PostgreSQL, with same-run baselines
	$(BENCH_ENV) SB_KAFKA_HEAP=1g bash deploy/local/kafka.sh start
	$(BENCH_ENV) bash deploy/local/postgres.sh start
	@# every bench runs and the servers are stopped even when one fails; make reports the failure
	rc=0; for b in $(BENCHES); do echo "== $$b"; $(BENCH_ENV) $(BIN)/python -m $$b || rc=$$?; done; \
	  $(BENCH_ENV) bash deploy/local/kafka.sh stop; $(BENCH_ENV) bash deploy/local/postgres.sh stop; exit $$rc

CHAOS_ENV := SB_DATA_DIR=$(CURDIR)/.data/chaos SB_KAFKA_PORT=29792 SB_PG_PORT=26132 SB_STACK_BASE_PORT=8800

chaos: $(STAMP) ## faults under load on a stack of its own (100k messages, 30 kills, 3+3 restarts); CHAOS_ARGS=--help
	$(CHAOS_ENV) $(BIN)/python -m tests.reliability.chaos $(CHAOS_ARGS)

fuzz: $(STAMP) ## every ingest parser, 100,000 mutated inputs each (FUZZ_ARGS="--inputs N target...")
	$(BIN)/python -m tests.fuzz.ingest_parsers $(FUZZ_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs contracts/sbcontracts services deploy/tools
# separately: bench and tests import deploy.tools, which the run above lists as files (found
# twice in one run); services are listed so that their imports resolve instead of being Any
	$(BIN)/mypy services bench tests

contracts: $(STAMP) ## regenerate JSON Schemas and the AsyncAPI document from the models
	$(BIN)/python -m sbcontracts.generate

manifests: $(STAMP) ## regenerate deploy/ (Kubernetes) from services, settings, consumers and topics
	$(BIN)/python -m deploy.tools.gen

migrate: $(STAMP) ## apply every service's migrations to SB_DATABASE_URL
	$(BIN)/switchboard migrate

clean: down ## stop everything and remove local data
	$(TEST_ENV) bash deploy/local/kafka.sh stop
	$(TEST_ENV) bash deploy/local/postgres.sh stop
	rm -rf .data
