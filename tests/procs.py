"""Helpers for tests that run real processes: twistd connectors, free ports.

Imported by ``tests/conftest.py`` (which puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: ``twistd`` run by this interpreter from the source tree (the dropin in ./twisted/plugins
#: and the ilptx package in ./ilptx are found through the working directory).
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    """:returns: a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Poll until ``port`` accepts TCP connections (bounded by ``timeout`` seconds).

    :raises AssertionError: the deadline passed or ``proc`` exited first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} did not open within {timeout} s")


class Connector:
    """A connector running as ``twistd -n ilpconnector`` in a subprocess."""

    def __init__(self, args: list[str], env: dict | None = None, cwd: Path = REPO) -> None:
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ilptx-{os.getpid()}-{id(self)}.log"
        self._log = open(self.log_path, "w+b")
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", *args],
                                     cwd=cwd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        """:returns: everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=15, timeout: float = 15.0) -> int:
        """Send ``sig`` (default SIGTERM) and wait; :returns: the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"connector did not stop within {timeout} s:\n{self.output()}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


