# shield-mcp: `make serve` runs the server on the embedded default, `make test` checks everything.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install serve test test-fast lint typecheck pytest bench fuzz clean

# Re-runs only when the dependency declarations change; `make install` is then a no-op.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

install: $(STAMP)

serve: install
	$(VENV)/bin/shield-mcp serve --transport http --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest

test: lint typecheck pytest

# The quick loop while editing: every test but those marked slow (server processes, the
# transports, the distributed cluster, the browser, long conversions); no lint, no mypy.
test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) -m benchmarks.search.run
	$(PY) -m benchmarks.ingestion.run
	$(PY) -m benchmarks.lightrag.run
	$(PY) -m benchmarks.memory.run
	$(PY) -m benchmarks.load.run

# The nightly profile of the generated-input tests: many more examples than `make test` runs.
fuzz: install
	SHIELD_FUZZ_PROFILE=long $(PY) -m pytest -m fuzz tests/mcp_server/test_generated_inputs.py
	SHIELD_FUZZ_EXAMPLES=500 SHIELD_FUZZ_STEPS=10 $(PY) -m pytest tests/orchestrator/http/test_openapi_fuzz.py

clean:
	rm -rf $(VENV) .bench .mypy_cache .ruff_cache .pytest_cache
