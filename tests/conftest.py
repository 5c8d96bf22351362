"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess

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


@pytest.fixture
def read_only_file(tmp_path):
    """An empty file no one may write: mode 0444, and immutable (``chattr +i``) when running as
    root, whom modes do not stop; made writable again at teardown."""
    path = tmp_path / "ro.sqlite"
    path.write_bytes(b"")
    path.chmod(0o444)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
