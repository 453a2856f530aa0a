# shield-mcp: `make serve` runs the server on the embedded default, `make test` checks everything.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install tools serve test test-fast lint typecheck pytest bench fuzz clean

# Re-runs only when the dependency declarations change; `make install` is then a no-op.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

install: $(STAMP)

# The operators' checkers the deployment tests run: promtool and prometheus (Debian's
# prometheus), amtool (prometheus-alertmanager). Installed from apt when missing and this is
# root on Debian; otherwise those tests say how to install them (and fail in CI).
OPS_TOOLS := promtool amtool prometheus
tools:
	@missing=""; for t in $(OPS_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing prometheus and prometheus-alertmanager (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus prometheus-alertmanager >/dev/null; \
	  else \
	    echo "missing:$$missing -- install Debian's prometheus and prometheus-alertmanager"; \
	  fi; \
	fi

serve: install
	$(VENV)/bin/shield-mcp serve --transport http --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install tools
	$(PY) -m pytest

test: lint typecheck pytest

# The quick loop while editing: every test but those marked slow (server processes, the
# transports, the distributed cluster, the browser, long conversions); no lint, no mypy.
# Two pytest workers: the loop is mostly waiting on subprocesses and sockets.
test-fast: install tools
	$(PY) -m pytest -m "not slow" -n 2

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
