# The two commands in the README: `make test` and `make demo`. Both create/refresh .venv themselves.
SHELL := /bin/sh
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv services lint typecheck rules test test-fast demo bench clean

venv:
	@./scripts/venv.sh

services:
	@./scripts/ensure-services.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

rules: services
	@if [ -f prometheus/alerts_test.yml ]; then promtool test rules prometheus/alerts_test.yml; fi

test: venv services lint typecheck rules
	$(PY) -m pytest $(PYTEST_ARGS)

# Unit tests only (no slow end-to-end ones), for a quick loop while editing.
test-fast: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: venv services
	$(PY) -m supervisor.demo

# Benchmarks print their figures (they assert nothing about time).
bench: venv services
	$(PY) bench/detect_restart.py
	$(PY) bench/emulator.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
