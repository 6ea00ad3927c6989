# Bootstrap and everyday targets. `make demo` and `make test` are the two
# commands the README promises work on a fresh machine: both build the venv
# first (idempotent: it is rebuilt only when setup.py or the constraints change).

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganpipe-installed
PYTEST_ARGS ?=

# TFX 1.16 needs Python 3.10. Take $PYTHON if set, else the first 3.10 found on
# PATH or under pyenv (whose `python3.10` shim may refuse to run).
PYTHON ?= $(shell for p in python3.10 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10 2>/dev/null | sort -Vr) /usr/bin/python3.10 /usr/local/bin/python3.10; do \
	  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: venv demo test bench fashion-mnist clean-venv

venv: $(STAMP) fashion-mnist

$(STAMP): setup.py pyproject.toml requirements/constraints.txt
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: Python 3.10 not found (TFX 1.16 needs it). Install it, or run: make PYTHON=/path/to/python3.10" >&2; exit 2; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.3.1" 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[test]" 2>&1 | grep -v "^WARNING: Location"; exit $${PIPESTATUS[0]}
	$(BIN)/python -c "import tfx.v1, tensorflow_data_validation, tfx_bsl.beam, ganpipe.pipeline.pipeline, ganpipe.cli.main"
	touch $@

# checkov (the manifest security scan the k8s tests run) pins packages that
# conflict with the TFX working set, so it gets a venv of its own.
CHECKOV_VENV := $(VENV)/tools-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements/checkov.txt | $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade "pip==24.3.1" 2>&1 | grep -v "^WARNING: Location" || true
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt 2>&1 | grep -v "^WARNING: Location"; exit $${PIPESTATUS[0]}
	touch $@

# Fashion-MNIST (`--data fashion-mnist`, the benchmarks) comes from Debian's
# dataset-fashion-mnist package. Installed where apt-get and root are at hand;
# elsewhere the run that needs it says how to get it. Never fatal here.
fashion-mnist:
	@if [ -d $(FASHION_MNIST_DIR) ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian package dataset-fashion-mnist (31 MB)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "note: could not install dataset-fashion-mnist; --data fashion-mnist will not be available"; \
	else echo "note: dataset-fashion-mnist not installed (needs apt-get as root); --data fashion-mnist unavailable"; fi

demo: venv
	$(BIN)/ganpipe run

test: venv $(CHECKOV_STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
