# SMR — two commands: `make run` starts the service, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest install bench-ingest bench-cost bench-dispatch bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

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

## Ingest throughput against a bare asyncpg endpoint, on the local PostgreSQL.
bench-ingest: install
	$(BIN)/python bench/ingest.py

## Instructions per single event, SMR's app and the bare endpoint, counted by callgrind.
bench-cost: install
	$(BIN)/python bench/ingest_cost.py

## Dispatch throughput (claim, mock send, bookkeeping) against APScheduler 3, on the local PostgreSQL.
bench-dispatch: install
	$(BIN)/python bench/dispatch.py

## A million future rows: claim latency, worker RSS and lateness, cron fan-out (several minutes).
bench-scale: install
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
