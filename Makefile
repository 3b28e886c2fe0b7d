# Strongroom: `make run` starts a dev server, `make test` runs ruff, mypy, import-linter and pytest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

WORKERS ?=

.PHONY: run test lint typecheck pytest bench clean venv ui-screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## make run WORKERS=2: two worker processes (one active, one standby)
	$(BIN)/strongroom server -dev$(if $(WORKERS), -workers=$(WORKERS))

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/transit.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/database.py
	test ! -f bench/audit.py || $(BIN)/python bench/audit.py
	$(BIN)/python bench/otp.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/ui.py

# screenshots of the web UI's main screens into docs/ui/ (needs /usr/bin/chromium)
ui-screenshots: $(STAMP)
	$(BIN)/python -m tests.ui.screenshots

clean:
	rm -rf $(VENV) .strongroom .pytest_cache .mypy_cache .ruff_cache
