"""A throwaway ``redis-server`` for store tests: own port, own directory, AOF fsynced always.

Imported as ``integration.stores.redis_server`` (``tests/`` is on ``sys.path``, see ``tests/conftest.py``).
"""

from __future__ import annotations

import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from integration.procs import Process, free_port

MISSING = ("redis-server is not on PATH: the Redis store tests need it "
           "(apt-get install redis-server; .ci/run installs it)")


def redis_server_binary() -> str:
    """:returns: the path of ``redis-server``; fails the test (never skips) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail(MISSING, pytrace=False)
    return path


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` with its data in ``directory``.

    Persistence is ``appendonly yes`` + ``appendfsync always`` (what the Redis store's
    durability promise needs) and no RDB snapshots.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.binary = redis_server_binary()
        self.process: Process | None = None

    def start(self, timeout: float = 20.0) -> "RedisServer":
        """Start it and wait until it answers PING (bounded by ``timeout`` seconds)."""
        self.process = Process([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                                "--dir", str(self.directory), "--daemonize", "no"])
        deadline = time.monotonic() + timeout
        while True:
            if self.process.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.proc.returncode}\n"
                                     f"{self.process.output()}")
            if self._ping():
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not answer PING within {timeout} s\n"
                                     f"{self.process.output()}")
            time.sleep(0.02)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Send one command on a fresh socket; :returns: the raw reply's first line."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload)
            return s.recv(4096)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write (a crash)."""
        if self.process is not None:
            self.process.stop(signal.SIGKILL)
            self.process.close()
            self.process = None

    def stop(self) -> None:
        """Stop it (SIGTERM) and remove its log."""
        if self.process is not None:
            self.process.stop(signal.SIGTERM)
            self.process.close()
            self.process = None
