# tether — two commands: `make run` (set up + serve the demo) and `make test` (set up + test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean demo-agent

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tether serve --estate examples/agents

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy examples/mcp-agent/demo.py examples/mcp-agent/invoice_server.py

# A scripted agent governed through the MCP gateway (README "Govern an agent").
demo-agent: $(STAMP)
	$(BIN)/python examples/mcp-agent/demo.py

# The dashboard and report tests drive Debian's Chromium (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	  || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null); \
	else echo "install Debian's chromium (sudo apt-get install chromium): the browser tests need it" >&2; exit 1; fi

# Two workers (one per core here), a test file kept on one worker: its fixtures and servers stay together.
test: lint typecheck $(CHROMIUM)
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=15

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache

-include bench/Makefile.inc
