# Two commands on a fresh machine (Python 3.11 + package registries):
#   make demo   — set everything up and serve the Gradio demo on the bundled default tokenizer (http://127.0.0.1:7860)
#   make test   — install the test dependencies and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vistok-installed

.PHONY: setup demo test lint browser bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision pair that installs from this machine's disk (see README "Installation").
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# `make test` runs the browser test and fails it when Chromium is missing; `make test VISTOK_REQUIRE_BROWSER=0`
# (or a plain `pytest`) skips it instead.
VISTOK_REQUIRE_BROWSER ?= 1
export VISTOK_REQUIRE_BROWSER

# Debian's Chromium for the browser test (Playwright drives it; never `playwright install`). As root SUDO is empty,
# so the variable assignment goes through `env`: a bare `VAR=value command` after an empty $$SUDO is not parsed as
# an assignment but run as a command named "DEBIAN_FRONTEND=noninteractive".
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: could not install chromium (apt-get install -y chromium); the browser test will fail" \
			"under VISTOK_REQUIRE_BROWSER=1 (make test's default) and be skipped otherwise" >&2

demo: setup
	$(BIN)/python spaces/vistok-demo/app.py

test: setup browser
	$(BIN)/ruff check vistok vistok_cli.py training tests benchmarks spaces metrics
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check vistok vistok_cli.py training tests benchmarks spaces metrics

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
