# copyguard — `make run` and `make test` do all their own set-up (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean bench-identify bench-shared-index bench-crawl bench-litigation bench-workers bench-soak

$(STAMP): pyproject.toml
	@scripts/system-deps.sh run
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "copyguard needs Python 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	@touch $(STAMP)

## install: the virtual environment with copyguard and every dependency (.venv/bin/copyguard)
install: $(STAMP)
	@scripts/system-deps.sh run

## run: the demonstration on the embedded default (SQLite and files under ./copyguard-data)
run: install
	$(BIN)/copyguard demo

## test: the whole test suite (PostgreSQL tests skip with a reason where no server runs, never in CI)
test: install
	@scripts/system-deps.sh test
	$(BIN)/pytest

## lint: ruff and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench-identify: the identification benchmark (wesnoth music corpus); figures go to BENCHMARKS.md
bench-identify: install
	$(BIN)/python -m bench.identify $(BENCH_ARGS)

## bench-shared-index: the local index replica against the PostgreSQL index; figures go to BENCHMARKS.md
bench-shared-index: install
	$(BIN)/python -m bench.shared_index $(BENCH_ARGS)

## bench-crawl: crawl throughput on generated local sites, identification included; figures go to BENCHMARKS.md
bench-crawl: install
	$(BIN)/python -m bench.crawl $(BENCH_ARGS)

## bench-litigation: the case queue and a dossier export on a large generated ledger; figures go to BENCHMARKS.md
bench-litigation: install
	$(BIN)/python -m bench.litigation $(BENCH_ARGS)

## bench-workers: identify throughput with 1, 2 and 4 worker processes on PostgreSQL; figures go to BENCHMARKS.md
bench-workers: install
	$(BIN)/python -m bench.workers $(BENCH_ARGS)

## bench-soak: the daemon over thousands of crawl cycles, its memory watched (about an hour); figures go to BENCHMARKS.md
bench-soak: install
	$(BIN)/python -m bench.soak $(BENCH_ARGS)

## clean: remove the virtual environment and the demo data
clean:
	rm -rf $(VENV) copyguard-data
