# The two commands of the README:
#   make run    install into .venv and run the connector on the embedded default config
#   make test   install (Python test extra + the npm packages of the interop tests) and run every test
#   make lint   ruff and mypy (CI runs it before the tests)
#   make test-pypy   the unit tests on PyPy (Debian's pypy3, Python 3.9) in .venv-pypy
# CONFIG=path/to/connector.yml make run   runs on another config file.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# contrib_plugins/*: third-party-style ledger plugin distributions, each installed as a package
# and tested in its own pytest run (its own rootdir and config: test module names may repeat).
CONTRIB = $(wildcard contrib_plugins/*/)

.PHONY: run test test-pypy system-deps lint install install-test npm bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet .

install-test: $(PY)
	$(PY) -m pip install --quiet '.[test,lint]'
	for d in $(CONTRIB); do $(PY) -m pip install --quiet "$$d" || exit 1; done

npm:
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	cd ilptx/admin/ui && npm ci --no-audit --no-fund --loglevel=error
	for d in $(wildcard contrib_plugins/*/tests/js/); do (cd "$$d" && npm ci --no-audit --no-fund --loglevel=error) || exit 1; done

run: install
	$(VENV)/bin/twistd --nodaemon --pidfile= ilpconnector $(if $(CONFIG),--config $(CONFIG))

# tools/install-system-deps.sh: what pip and npm cannot install (apt packages, the regtest network),
# only when missing
system-deps:
	bash tools/install-system-deps.sh

test: system-deps install-test npm
	$(PY) -m pytest
	for d in $(CONTRIB); do $(PY) -m pytest -c "$${d}pyproject.toml" --rootdir "$$d" "$${d}tests" || exit 1; done

# PyPy is a supported interpreter (issue 12): its own venv, the core with the test extra, the unit
# tests only (the integration, interop and contrib suites run on CPython).
PYPY      ?= pypy3
PYPY_VENV ?= .venv-pypy

$(PYPY_VENV)/bin/python:
	$(PYPY) -m venv $(PYPY_VENV)
	$(PYPY_VENV)/bin/python -m pip install --quiet --upgrade pip

test-pypy: $(PYPY_VENV)/bin/python
	$(PYPY_VENV)/bin/python -m pip install --quiet '.[test]'
	$(PYPY_VENV)/bin/python -m pytest -p no:cacheprovider tests/unit

# ruff (pyflakes, pycodestyle, bugbear) over the tree; mypy on ilptx/codec, ilptx/core, ilptx/interfaces.py
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install npm
	bash bench/run.sh

clean:
	rm -rf $(VENV) $(PYPY_VENV) build *.egg-info twisted/plugins/dropin.cache
