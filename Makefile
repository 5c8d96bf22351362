# The two commands of the README:
#   make run    install into .venv and run the connector on the embedded default config
#   make test   install (Python test extra + the npm packages of the interop tests) and run every test
# CONFIG=path/to/connector.yml make run   runs on another config file.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: run test install install-test npm bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet .

install-test: $(PY)
	$(PY) -m pip install --quiet '.[test]'

npm:
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error

run: install
	$(VENV)/bin/twistd --nodaemon --pidfile= ilpconnector $(if $(CONFIG),--config $(CONFIG))

test: install-test npm
	$(PY) -m pytest

bench: install npm
	bash bench/run.sh

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache
