# The two commands of the README:
#   make run    install into .venv and run the connector on the embedded default config
#   make test   install (Python test extra + the npm packages of the interop tests) and run every test
#   make lint   ruff and mypy (CI runs it before the tests)
# CONFIG=path/to/connector.yml make run   runs on another config file.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# contrib_plugins/*: third-party-style ledger plugin distributions, each installed as a package
# and tested in its own pytest run (its own rootdir and config: test module names may repeat).
CONTRIB = $(wildcard contrib_plugins/*/)

.PHONY: run test lint install install-test npm bench clean

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

test: install-test npm
	$(PY) -m pytest
	for d in $(CONTRIB); do $(PY) -m pytest -c "$${d}pyproject.toml" --rootdir "$$d" "$${d}tests" || exit 1; done

# ruff (pyflakes, pycodestyle, bugbear) over the tree; mypy on ilptx/codec, ilptx/core, ilptx/interfaces.py
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install npm
	bash bench/run.sh

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache
