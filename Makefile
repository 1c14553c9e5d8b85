# Two entry points for a fresh machine: `make run` and `make test`.
# The environment lives in .venv/ and is rebuilt when the lock file changes.
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled
SOURCES := $(shell find src flows benchmarks -name '*.py' 2>/dev/null)
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: run test env clean browser

env: $(STAMP) $(COMPILED)

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as in many containers) Python
# never caches it, and every process would compile Prefect, pandas, spaCy and Great Expectations from
# source again, which doubles the 5 s their imports take.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# The project's own modules, compiled again whenever one changes (the editable install is not compiled).
$(COMPILED): $(STAMP) $(SOURCES)
	$(BIN)/python -m compileall -q src flows benchmarks
	touch $(COMPILED)

# The whole pipeline once on raw/ (Prefect's temporary local server); the last
# line printed says which release was published, or that nothing changed.
run: $(STAMP) $(COMPILED)
	$(BIN)/armsledger run
	@echo "Releases are in $(CURDIR)/processed/releases/ (latest.json names the newest)."

# The browser tests (tests/test_site.py) open the release pages in Debian's chromium; installed once.
test: $(STAMP) $(COMPILED) browser
	$(BIN)/python -m pytest

browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

clean:
	rm -rf $(VENV) .prefect .pytest_cache
