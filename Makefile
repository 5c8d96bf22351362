# The two commands of the README:
#   make run    install into .venv and run the connector on the embedded default config
#   make test   install (Python test extra + the npm packages of the interop tests) and run every test
#   make lint   ruff and mypy (CI runs it before the tests)
# CONFIG=path/to/connector.yml make run   runs on another config file.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: run test lint install install-test npm bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet .

install-test: $(PY)
	$(PY) -m pip install --quiet '.[test,lint]'

npm:
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error

run: install
	$(VENV)/bin/twistd --nodaemon --pidfile= ilpconnector $(if $(CONFIG),--config $(CONFIG))

test: install-test npm
	$(PY) -m pytest

# ruff (pyflakes, pycodestyle, bugbear) over the tree; mypy on ilptx/codec, ilptx/core, ilptx/interfaces.py
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install npm
	bash bench/run.sh

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache
