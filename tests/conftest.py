"""Shared fixtures."""

from __future__ import annotations

import pytest

from procs import Connector


@pytest.fixture
def run_connector():
    """Factory fixture: ``run_connector(args, env)`` starts a twistd connector; all are killed at teardown."""
    started: list[Connector] = []

    def start(args: list[str], env: dict | None = None) -> Connector:
        connector = Connector(args, env)
        started.append(connector)
        return connector

    yield start
    for connector in started:
        connector.close()
