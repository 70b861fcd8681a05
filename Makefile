# Two commands for a newcomer: `make demo` and `make test`. Everything else is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint typecheck system services install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

system:
	bash .ci/system-deps

install: system $(STAMP)

services: system
	bash .ci/services

# The demo city, alive: the server (with the scheduler inside it) and 300 simulated speakers.
DEMO_SPEAKERS ?= 300
demo: install
	$(BIN)/broadcast db upgrade
	$(BIN)/broadcast seed-demo
	$(BIN)/broadcast devices provision --all --out data/demo-tokens.csv
	BROADCAST_SCHEDULER_EMBEDDED=true $(BIN)/broadcast serve & server=$$!; \
	trap 'kill $$server $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	until $(BIN)/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/v1/health')" 2>/dev/null; \
	do kill -0 $$server || exit 1; sleep 1; done; \
	$(BIN)/broadcast simulate --endpoints $(DEMO_SPEAKERS) --tokens data/demo-tokens.csv --faults 0.02 & \
	wait $$server

lint: install
	$(BIN)/ruff check broadcast tests
	$(BIN)/ruff format --check broadcast tests

typecheck: install
	$(BIN)/mypy broadcast

# pytest exits 5 when it collected no test: that is a broken suite, not a pass. Two workers: much
# of a test's time is spent waiting on ffmpeg, servers and browsers, so a second core pays off.
test: install services lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

bench: install services
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
