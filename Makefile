# BigBrotr developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
# The dev database is started only when no database is configured: with DB_HOST
# set, every command uses that database and nothing is started.
ifeq ($(strip $(DB_HOST)),)
DB_NEEDED := db-up
endif
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

RUN_SERVICES ?= monitor finder synchronizer refresher relay

.PHONY: help run build test test-unit bench bench-soak bench-refresh bench-relay doc fmt fmt-check clippy ci coverage db-up db-down db-reset db-status clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: $(DB_NEEDED) ## The archive: schema, seed relays, then monitor + finder + synchronizer + refresher + relay (Ctrl-C stops)
	$(CARGO) build --release -q -p bigbrotr
	$(CARGO) run --release -q -p bigbrotr -- db init
	$(CARGO) run --release -q -p bigbrotr -- run initializer
	$(CARGO) run --release -q -p bigbrotr -- run $(RUN_SERVICES)

build: ## Build every crate
	$(CARGO) build --workspace --all-targets

test: $(DB_NEEDED) ## Run the whole suite (unit, integration through PgBouncer, doc tests)
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast --all-targets
endif
	$(CARGO) test --workspace --doc

test-unit: ## Run the tests that need no database
	$(CARGO) test --workspace --lib

# The large import (1 000 000 events) takes minutes: `make bench BENCH_LARGE=0` skips it.
# The relay benchmark follows the ingest benchmark: `make bench BENCH_RELAY=0` skips it.
BENCH_LARGE ?= 1
BENCH_RELAY ?= 1
bench: $(DB_NEEDED) ## Ingest benchmark in release: events/s and peak memory, through PgBouncer; then the relay benchmark
	$(CARGO) build --release -p bigbrotr -p bigbrotr-bench
	BENCH_LARGE=$(BENCH_LARGE) $(CARGO) run --release -q -p bigbrotr-bench
	@if [ "$(BENCH_RELAY)" != 0 ]; then $(CARGO) run --release -q -p bigbrotr-bench -- relay; fi

bench-soak: $(DB_NEEDED) ## Soak benchmark: the synchronizer archiving from local relays for minutes; events/s and RSS over time
	$(CARGO) build --release -p bigbrotr -p bigbrotr-bench
	$(CARGO) run --release -q -p bigbrotr-bench -- soak

bench-refresh: $(DB_NEEDED) ## Refresh benchmark: seconds per statistics view on 1 000 000 archived events
	$(CARGO) build --release -p bigbrotr-bench
	$(CARGO) run --release -q -p bigbrotr-bench -- refresh

bench-relay: $(DB_NEEDED) ## Relay benchmark: the archive relay and nostr-rs-relay, qps and latency per filter shape on 1 000 000 events
	$(CARGO) build --release -p bigbrotr -p bigbrotr-bench
	$(CARGO) run --release -q -p bigbrotr-bench -- relay

doc: ## Build the documentation, warnings denied
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Check the formatting
	$(CARGO) fmt --all -- --check

clippy: ## Lint, warnings denied
	$(CARGO) clippy --workspace --all-targets -- -D warnings

ci: fmt-check clippy doc test coverage ## What CI runs: fmt check, clippy, docs, the whole suite, coverage gate

# Line coverage of every crate under crates/ (tests excluded), at least COVERAGE_MIN %.
COVERAGE_MIN ?= 80
coverage: $(DB_NEEDED) ## Line coverage per crate, failing under COVERAGE_MIN % (needs cargo-tarpaulin)
	@$(CARGO) tarpaulin --version >/dev/null 2>&1 || { echo "install it with: cargo install cargo-tarpaulin --locked"; exit 1; }
	$(CARGO) tarpaulin --workspace --exclude bigbrotr-bench --engine llvm --skip-clean \
	  --target-dir target/coverage-build --out Lcov --out Html --output-dir target/coverage \
	  --exclude-files 'tests/*' --exclude-files 'crates/*/tests/*' --exclude-files 'bench/*' --exclude-files 'examples/*' \
	  --timeout 300 --color never
	scripts/coverage-gate.sh target/coverage/lcov.info $(COVERAGE_MIN)

db-up: ## Start the dev database (PostgreSQL + PgBouncer), idempotent
	@scripts/dev-db.sh up

db-down: ## Stop the dev database that db-up started
	@scripts/dev-db.sh down

db-reset: ## Stop the dev database and wipe its data
	@scripts/dev-db.sh reset

db-status: ## Say whether the dev database runs
	@scripts/dev-db.sh status

clean: ## Remove build output
	$(CARGO) clean
