# SMR — two commands: `make run` starts the service, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# Pinned, hashed versions for Python 3.11 on Linux: the Dockerfile installs requirements.lock,
# `make install` (so `make run`, `make test` and CI) requirements-dev.lock. `make lock` writes both.
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
UV       := $(BIN)/uv
UV_VERSION ?= 0.13.9
LOCK_FLAGS := --quiet --python-version 3.11 --python-platform linux --generate-hashes \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

.PHONY: run test lint typecheck pytest install lock bench-ingest bench-process bench-cost bench-dispatch bench-scale bench-wake bench-segments bench-import bench-reports clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@if $(BIN)/pip check | grep '^smr '; then \
		echo "$(DEV_LOCK) does not cover pyproject.toml: run 'make lock'"; exit 1; fi
	touch $(STAMP)

install: $(STAMP)

$(UV): | $(BIN)/python
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'

## Pin every dependency of pyproject.toml (with hashes) into the two lock files; keeps the
## current pins where they still fit. `make lock UPGRADE=1` moves everything to the newest.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --extra bench $(LOCK_FLAGS) -o $(DEV_LOCK)
	$(UV) pip compile pyproject.toml --constraint $(DEV_LOCK) $(LOCK_FLAGS) -o $(LOCK)

## Start API + scheduler on SQLite with the bundled playbooks and the mock channel.
run: install
	$(BIN)/smr serve --host $(HOST) --port $(PORT)

## ruff, mypy --strict and the whole pytest suite.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## Accept rate (single and batch) against a bare asyncpg endpoint, on the local PostgreSQL.
bench-ingest: install
	$(BIN)/python bench/ingest.py

## Processing: one worker's throughput on a backlog, then lag and memory under a steady rate.
bench-process: install
	$(BIN)/python bench/process.py

## Instructions per single event, SMR's app and the bare endpoint, counted by callgrind.
bench-cost: install
	$(BIN)/python bench/ingest_cost.py

## Dispatch throughput (claim, mock send, bookkeeping) against APScheduler 3, on the local PostgreSQL.
bench-dispatch: install
	$(BIN)/python bench/dispatch.py

## A million future rows: claim latency, worker RSS and lateness, cron fan-out (several minutes).
bench-scale: install
	$(BIN)/python bench/scale.py

## Waking runs: one smr worker takes 50,000 runs due at once through their send, against APScheduler 3.
bench-wake: install
	$(BIN)/python bench/wake.py

## Segments: a member count over a million customers, and the hourly pass's rate.
bench-segments: install
	$(BIN)/python bench/segments.py

## Import: customers per second from a JSON Lines file, against a bare COPY of the same rows.
bench-import: install
	$(BIN)/python bench/imports.py

bench-reports: install
	$(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
