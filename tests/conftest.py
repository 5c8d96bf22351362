"""Shared fixtures."""

from __future__ import annotations

import pytest

from integration.procs import Process, twistd_connector


@pytest.fixture
def processes():
    """Start processes with ``processes.connector(args, env)`` / ``processes.run(argv, env)``;
    every one still running is killed at teardown."""

    class Started(list):
        def connector(self, args, env=None) -> Process:
            self.append(twistd_connector(args, env))
            return self[-1]

        def run(self, argv, env=None, inherit=True) -> Process:
            self.append(Process(argv, env, inherit=inherit))
            return self[-1]

    started = Started()
    yield started
    for process in started:
        process.close()
