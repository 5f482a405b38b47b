# The README's two commands: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench up down clean

install: $(STAMP)

# Reinstall whenever the pinned dependencies change. torch comes first and alone so that no
# dependency range can pull a CUDA build of it.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/tuneflow demo

# CI runs exactly this. scripts/ensure_services.sh starts Redis / PostgreSQL when they are absent.
test: install
	scripts/ensure_services.sh
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not gpu and not slow and not integration" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy shared

bench: install
	$(BIN)/python benchmarks/run_all.py

up: install
	$(BIN)/tuneflow dev up

down:
	$(BIN)/tuneflow dev down

clean:
	rm -rf $(VENV) .tuneflow build *.egg-info
