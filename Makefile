# `make run` starts everything on embedded defaults; `make test` runs the suite. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: run test lint bench clean

$(STAMP): requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py run_system

# The dashboard's browser tests drive Debian's chromium; install it when missing and apt-get can.
CHROMIUM := /usr/bin/chromium
test: $(STAMP)
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmarks, each on its own private system (see their docstrings); BENCH_BOTS bots in the fleet run.
BENCH_BOTS ?= 20
bench: $(STAMP)
	$(BIN)/python benchmarks/streams.py
	$(BIN)/python benchmarks/fleet.py --bots $(BENCH_BOTS)
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/freqai.py
	$(BIN)/python benchmarks/realtime.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
