# ResNet Lab: two commands do all the set-up (see README.md).
#   make book   build the HTML book into _build/html (executes every chapter)
#   make test   lint, unit tests, nbval over every chapter, the book build, browser test
# Both create or reuse the virtual environment in .venv; a second run reinstalls nothing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

# Tools in the venv come first; notebook kernels then find the venv's Python too.
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED ?= 0

# The offline CIFAR-10 copy that sits beside the repository on development and
# CI machines (read in place, never copied; see ../shared/data/README.md).
SHARED_DATA := $(abspath ../shared/data/cifar10-jpeg.zip)
ifeq ($(strip $(RESNET_LAB_DATA)),)
ifneq ($(wildcard $(SHARED_DATA)),)
export RESNET_LAB_DATA := $(SHARED_DATA)
endif
endif

JB_FLAGS := -W --keep-going
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=600

.PHONY: help book test lint unit notebooks-test browser-deps browser-test notebooks clean

help:
	@echo "make book   - build the HTML book into _build/html"
	@echo "make test   - run the whole test suite (lint, pytest, nbval, book build, browser test)"
	@echo "make notebooks - re-execute every chapter in place (quick tier) to refresh stored outputs"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -r requirements-dev.txt -e .
	@touch $@

# The book. Executed outputs are cached by jupyter-cache, which only looks at
# notebook code: tools/book_cache_key.py folds in the tier, the package code and the
# results store, and the cache is dropped when that key changes.
book: $(STAMP)
	$(PY) tools/book_cache_key.py _build
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "The book is in _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(PY) tools/pytest_strict.py tests -m "not browser"

# nbval runs the chapters with the engine forced to fp32 (RESNET_LAB_AMP=off), while
# `make book` inside `make test` executes them in the machine's own precision (bf16 where
# the CPU has it) and fails on any cell error: one test run proves both paths.
notebooks-test: $(STAMP)
	RESNET_LAB_TIER=quick RESNET_LAB_AMP=off $(PY) tools/pytest_strict.py $(NBVAL_FLAGS) book

browser-deps:
	@$(PY) tools/ensure_chromium.py

browser-test: $(STAMP) browser-deps
	$(PY) tools/pytest_strict.py tests -m browser

test: $(STAMP) browser-deps
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory notebooks-test
	RESNET_LAB_TIER=quick $(MAKE) --no-print-directory book
	$(MAKE) --no-print-directory browser-test
	@echo "make test: all checks passed"

notebooks: $(STAMP)
	RESNET_LAB_TIER=quick $(PY) tools/execute_notebooks.py book/*.ipynb

clean:
	rm -rf _build
