# Developer commands. On a fresh clone with Python >= 3.10 and nothing else:
#   make demo    virtualenv, install, meltano install, fake tenant + embedded PostgreSQL, the daily job
#                (load, then dbt build of the marts in transform/), and the marts' row counts
#   make test    the whole test suite (unit, sandbox, tap, dbt, end-to-end through meltano)
# `make help` lists the rest.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PYTEST_ARGS ?=

# Plugins and the project get compiled bytecode at install time, so that every tap, target and
# meltano start-up does not recompile (PYTHONDONTWRITEBYTECODE=1 is common in CI and containers).
export UV_COMPILE_BYTECODE := 1
export MELTANO_CLI_DISABLE_VERSION_CHECK := true
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv install demo demo-reset test test-fast e2e lint bench bench-target bench-sandbox bench-scale soak \
        sandbox sandbox-start sandbox-stop pg-start pg-stop pg-status psql clean docs orchestration-deps \
        orchestrate ui-check

help:
	@echo "make demo         run the daily job on the fake tenant into an embedded PostgreSQL,"
	@echo "                  dbt build included (again: change the tenant, run incrementally)"
	@echo "make demo-reset   forget the demo's runs, warehouse and state"
	@echo "make docs         dbt docs generate (transform/target/index.html) on the demo's warehouse"
	@echo "make test         the whole suite, end-to-end tests included"
	@echo "make test-fast    everything but the end-to-end tests"
	@echo "make e2e          only the end-to-end tests (tests/e2e)"
	@echo "make install      virtualenv + project + meltano install"
	@echo "make sandbox      serve the fake tenant on 127.0.0.1:8642 (dev environment's api_url), until Ctrl-C"
	@echo "make sandbox-start / sandbox-stop   the same in the background"
	@echo "make pg-start / pg-stop / pg-status / psql   the embedded PostgreSQL in .pgdata"
	@echo "make bench        fan-out vs the rate-limit floor, records/s, memory (BENCH_ARGS=--quick)"
	@echo "make soak         long fault/kill/mutation loop with checks (SOAK_ARGS='--minutes 30')"
	@echo "make bench-target rows/s of target-postgres per loader setting"
	@echo "make bench-sandbox the fake tenant at full size: start, peak RSS, pages/s (1.0 vs 0.01)"
	@echo "make bench-scale  daily runs under the request budget: plan at full size, 14 simulated days"
	@echo "                  at 0.1 (BENCH_SCALE_ARGS='--scale 0.01 --days 3 --skip-plan' for a quick run)"
	@echo "make orchestrate  Dagster UI over two fake tenants + embedded PostgreSQL (orchestration/)"
	@echo "make ui-check     headless Chromium opens that UI, checks it, saves a screenshot"
	@echo "make lint         ruff, and mypy --strict on tap_clinical_conductor/"
	@echo "make clean        remove .venv, .meltano, .pgdata, .sandbox"

# --- install --------------------------------------------------------------------------------
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.10 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

# Dagster, dagster-dbt and their dbt: only `make test`, `make orchestrate` and `make ui-check`
# need them, so `make demo` stays free of them.
$(VENV)/.orchestration: pyproject.toml $(VENV)/.installed
	$(BIN)/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[dev,orchestration]'
	@touch $@

orchestration-deps: $(VENV)/.orchestration

.meltano/.installed: $(VENV)/.installed meltano.yml $(wildcard *.meltano.yml)
	$(BIN)/meltano install
	@touch $@

install: .meltano/.installed

# --- the two commands ---------------------------------------------------------------------
demo: install
	$(PY) -m cc_dev.demo

demo-reset: venv
	$(PY) -m cc_dev.demo --reset

# dbt's documentation site of transform/, with the catalog of the demo's warehouse (or of
# TARGET_POSTGRES_SQLALCHEMY_URL's server). Not while `make demo` runs.
docs: install
	$(PY) -m cc_dev.dbt_docs

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: install orchestration-deps
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-fast: venv
	@$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && exit 1; exit $$rc

e2e: install
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# mypy reads its settings (strict, the tap's package) from pyproject.toml.
lint: venv
	$(BIN)/ruff check tap_clinical_conductor cc_sandbox cc_dev benchmarks tests orchestration
	$(BIN)/mypy

bench-target: install
	$(PY) -m cc_dev.bench_target

bench: install
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

# The fake tenant at full size: start time, peak RSS, pages/s at scale 1.0 vs 0.01.
bench-sandbox: venv
	$(PY) -m benchmarks.bench_sandbox $(BENCH_SANDBOX_ARGS)

# Issue 14: the daily job's plan at full size and 14 simulated days at scale 0.1, checked against
# the change log and the tenant's truth. Long (the day-0 full load alone is ~600k requests).
bench-scale: venv
	$(PY) -m benchmarks.bench_scale $(BENCH_SCALE_ARGS)

soak: install
	$(PY) -m benchmarks.soak $(SOAK_ARGS)

# --- Dagster (orchestration/, README "Orchestration with Dagster") ---------------------------
orchestrate: install orchestration-deps
	$(PY) -m orchestration.dev $(ORCHESTRATE_ARGS)

# Needs Debian's chromium (apt-get update && apt-get install -y chromium); Playwright drives it.
# UI_CHECK_ARGS: --url URL (a running `make orchestrate`), --out DIR (screenshots).
ui-check: install orchestration-deps
	$(BIN)/uv pip install --quiet --python $(PY) -e '.[dev,orchestration,ui-check]'
	$(PY) -m orchestration.ui_check $(UI_CHECK_ARGS)

# --- services for running meltano by hand --------------------------------------------------
# The fake tenant on the dev environment's api_url (meltano.yml), key dev-key. `make sandbox`
# holds the terminal until Ctrl-C; sandbox-start runs it in the background (.sandbox/sandbox.log)
# until sandbox-stop. SANDBOX_PORT moves it (then set TAP_CLINICAL_CONDUCTOR_API_URL to match).
SANDBOX_PORT ?= 8642
SANDBOX_ARGS = serve --port $(SANDBOX_PORT) --scale 0.001 --profile plan --api-key dev-key

sandbox: venv
	$(BIN)/cc-sandbox $(SANDBOX_ARGS)

sandbox-start: venv
	@$(PY) -m cc_dev.sandbox_service start -- $(SANDBOX_ARGS)

sandbox-stop: venv
	@$(PY) -m cc_dev.sandbox_service stop

pg-start: venv
	$(PY) -m cc_dev.pg start

pg-stop: venv
	$(PY) -m cc_dev.pg stop

pg-status: venv
	$(PY) -m cc_dev.pg status

# `make psql` opens psql; `make psql SQL='select ...'` runs one statement.
psql: venv
	$(PY) -m cc_dev.pg psql $(if $(SQL),"$(SQL)")

clean:
	-[ -x $(PY) ] && $(PY) -m cc_dev.pg stop
	rm -rf $(VENV) .meltano .pgdata .sandbox
