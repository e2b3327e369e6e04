# A newcomer's entry points. Each target creates the virtualenv and installs the project when
# the virtualenv is missing or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test lint demo emulator bench bench-smoke wrk clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $@

install: $(INSTALLED)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/pytest

# DEMO_ARGS passes options, e.g. make demo DEMO_ARGS='--changes-every 30'.
demo: $(INSTALLED)
	$(BIN)/poster-pipeline demo $(DEMO_ARGS)

emulator: $(INSTALLED)
	$(BIN)/poster-pipeline emulator

# The webhook-ingest benchmark drives the receiver with wrk (Debian's package).
wrk:
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench: $(INSTALLED) wrk
	$(BIN)/python -m benchmarks.run_all

bench-smoke: $(INSTALLED) wrk
	$(BIN)/python -m benchmarks.run_all --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
