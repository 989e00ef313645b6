# Two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint clean

demo: $(VENV)/.installed
	$(BIN)/deepscope demo

test: $(VENV)/.installed-dev $(VENV)/.installed-browser
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e ".[dev]"
	touch $@

# Debian's Chromium for the browser tests of the web app (Playwright drives it)
$(VENV)/.installed-browser: tools/install_chromium.sh
	tools/install_chromium.sh
	touch $@

clean:
	rm -rf $(VENV) demo_output
