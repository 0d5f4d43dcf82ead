# dac4rec_lite — developer / student commands.  Run `make` (or `make help`) for the list.
#
# Everything runs inside a local virtual environment ($(VENV), default .venv),
# created on first use with $(PYTHON).  Override e.g.:  make test VENV=/tmp/venv PYTHON=python3.11

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PRESET ?= quick

BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.setup-stamp

KERNEL_NAME    := dac4rec-lite
KERNEL_DISPLAY := Python (dac4rec_lite)
NB_OUT         := build/notebooks

.PHONY: help setup lab test test-fast test-browser notebooks benchmark clean distclean

help:
	@echo "dac4rec_lite — available commands:"
	@echo "  make setup      create/reuse $(VENV), install requirements.txt + the package (editable),"
	@echo "                  register the Jupyter kernel '$(KERNEL_NAME)'"
	@echo "  make lab        start JupyterLab at the repository root with notebooks/00_welcome.ipynb open"
	@echo "  make test       run the whole test suite (unit + notebook execution)"
	@echo "  make test-fast  run unit tests only (no notebooks, no slow tests, no browser)"
	@echo "  make test-browser  run every notebook in JupyterLab in chromium (screenshots in build/browser/)"
	@echo "  make notebooks  execute every notebook headless into $(NB_OUT)/ (PRESET=$(PRESET))"
	@echo "  make benchmark  run benchmarks/sampling.py, training.py and sampler_quality.py"
	@echo "  make clean      remove build/ and caches (keeps the venv)"
	@echo "  make distclean  clean + remove the venv"
	@echo "Variables: VENV=$(VENV)  PYTHON=$(PYTHON)  PRESET=$(PRESET)"

# --- environment ------------------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-run the install only when the dependency files change (or the venv is new).
$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -e . --no-build-isolation --no-deps
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)"
	@touch $@

setup: $(STAMP)

# --- everyday commands ------------------------------------------------------

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not notebooks and not slow and not browser"

test-browser: setup
	$(PY) -m pytest -m browser tests/test_browser.py

notebooks: setup
	DAC4REC_PRESET=$(PRESET) $(PY) scripts/run_notebooks.py --preset $(PRESET) --out $(NB_OUT) --kernel $(KERNEL_NAME)

benchmark: setup
	$(PY) benchmarks/sampling.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/sampler_quality.py

# --- cleaning ---------------------------------------------------------------

clean:
	rm -rf build .pytest_cache
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o \
		\( -name __pycache__ -o -name .ipynb_checkpoints -o -name '*.egg-info' \) -type d -print \
		| xargs -r rm -rf

distclean: clean
	rm -rf $(VENV)
