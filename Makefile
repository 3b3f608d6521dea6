# Backprop through batch norm, in matrix form: executable derivations.
#
#   make book    build the website into _build/html (creates .venv on first use),
#                with the project's source archive (git archive HEAD) inside it
#   make test    install Debian's chromium if it is missing (or stop, saying what
#                to run), lint, build the book (warnings are errors), then run the
#                unit tests, the browser test and every chapter notebook (nbval)
#   make chromium  only the first step of `make test`
#   make serve   serve _build/html on http://127.0.0.1:$(PORT)/ (PORT=8000)
#   make clean   remove build outputs and caches (keeps .venv)
#   make distclean  also remove .venv
#   make help    print this list

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := book

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
HTML := _build/html

# Notebooks run on the venv's own kernel: ipykernel installed in .venv
# provides the `python3` kernelspec under .venv/share/jupyter, and with this
# set Jupyter prefers it over any kernelspec in the user's home directory.
export JUPYTER_PREFER_ENV_PATH := 1
# Silences debugpy's "frozen modules" warning when kernels start.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

NOTEBOOKS := $(sort $(wildcard chapters/*.ipynb))

.PHONY: book build-book serve test lint pytest chromium venv clean distclean help

## The virtual environment --------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when the pinned requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(STAMP)

## The book ------------------------------------------------------------------

book: $(STAMP)
	@$(MAKE) --no-print-directory build-book
	@echo
	@echo "The book is built. Open it with either of:"
	@echo "    $(CURDIR)/$(HTML)/index.html"
	@echo "    make serve    (then http://127.0.0.1:$(PORT)/)"
	@echo "The whole project, for a reader to download, is in $(HTML)/bnbackprop-source.tar.gz."

# -W: warnings are errors; -n: nitpicky (every unresolved reference warns);
# --keep-going: report all warnings before failing.
build-book:
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

serve:
	@test -f $(HTML)/index.html || { echo "No $(HTML)/index.html: run 'make book' first." >&2; exit 1; }
	@echo "Serving $(HTML) on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory $(HTML)

## Tests ---------------------------------------------------------------------

# The browser test needs Debian's chromium, which pip cannot install: install it with
# apt-get (as root, or through password-less sudo), or stop before anything runs with one
# line saying what to run. .ci/run calls the same script.
chromium:
	@bash tools/ensure_chromium.sh

# The library and tests at ruff's configured 120 columns; the chapters'
# notebooks (ruff reads .ipynb) at 88, so that no code line is cut off on the page.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff check --line-length 88 chapters

# One pytest run: the unit tests and the browser test (tests/), and every
# chapter notebook, re-executed and compared cell by cell with its committed
# outputs (strict --nbval; volatile text is sanitized by
# tests/nbval_sanitize.cfg). nbval collects only the .ipynb files.
pytest: chromium $(STAMP)
	$(PY) -m pytest tests $(NOTEBOOKS) \
	    --nbval --nbval-current-env --nbval-cell-timeout 600 \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg

test: chromium $(STAMP)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory build-book
	@$(MAKE) --no-print-directory pytest

## Housekeeping --------------------------------------------------------------

help:
	@sed -n '3,/^$$/{/^$$/d;s/^# \{0,1\}//;p}' $(firstword $(MAKEFILE_LIST))

clean:
	rm -rf _build .jupyter_cache .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
