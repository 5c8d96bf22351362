"""Helpers for tests that run real processes: twistd connectors, node scripts, free ports.

Imported as ``integration.procs`` (``tests/conftest.py`` puts ``tests/`` on ``sys.path``). It lives with the
integration tests because only tests of real processes may wait (``time.sleep``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: ``twistd`` run by this interpreter from the source tree: the dropin in ./twisted/plugins
#: and the ilptx package in ./ilptx are found through the working directory.
#: (``python -m twisted`` would be ``twist``, which takes neither ``-n`` nor ``--pidfile``.)
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]

#: twistd logs this after every service stopped; it then re-raises the stop signal on itself,
#: so a clean stop exits with status 0 or -signal.
TWISTD_CLEAN_SHUTDOWN = "Server Shut Down."


def free_port() -> int:
    """:returns: a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """:returns: ``count`` distinct free ports (all held open while choosing)."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def wait_for_port(port: int, proc: "Process | None" = None, timeout: float = 20.0) -> None:
    """Poll until ``port`` accepts TCP connections (bounded by ``timeout`` seconds).

    :raises AssertionError: the deadline passed or ``proc`` exited first (with its output).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.proc.returncode} before port {port} opened\n"
                                 f"{proc.output()}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} did not open within {timeout} s\n{proc.output() if proc else ''}")


class Process:
    """A child process whose stdout and stderr go to one temporary log file."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd: Path = REPO, inherit: bool = True) -> None:
        """:param env: variables to set; :param inherit: start from this process's environment."""
        self.argv = argv
        self._log = tempfile.NamedTemporaryFile(prefix="ilptx-test-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        full_env = {**(os.environ if inherit else {}), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def output(self, limit: int = 20000) -> str:
        """:returns: the command and the tail of what it printed (for assertion messages)."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return f"$ {' '.join(self.argv)}\n{text}"

    def full_output(self) -> str:
        """:returns: everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait; :returns: the exit status.

        :raises AssertionError: it did not exit within ``timeout`` seconds (it is then killed).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"process did not stop within {timeout} s of signal {sig}\n{self.output()}") from None
        return self.proc.returncode

    def close(self) -> None:
        """Kill it if still running and remove the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def twistd_connector(args: list[str], env: dict | None = None) -> Process:
    """Start ``twistd --nodaemon ilpconnector ARGS`` from the source tree."""
    return Process(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", *args], env)


def assert_clean_twistd_stop(status: int, sig: int, process: Process) -> None:
    """A clean stop: status 0 or -sig, twistd's shutdown line logged, no traceback."""
    out = process.full_output()
    assert status in (0, -sig), f"exit status {status}\n{process.output()}"
    assert TWISTD_CLEAN_SHUTDOWN in out, f"no {TWISTD_CLEAN_SHUTDOWN!r} logged\n{process.output()}"
    assert "Traceback" not in out, f"a traceback was logged\n{process.output()}"


def start_either_connector(kind: str, config: dict, directory: Path, processes) -> "Process":
    """Start ``twistd -n ilpconnector`` (``kind="ilptx"``) or the JS reference connector
    (``kind="reference"``, ilp-connector 23.0.2 from tests/interop) on the same config.

    :param processes: the ``processes`` fixture (kills them at teardown).
    """
    import json
    import shutil

    if kind == "ilptx":
        path = Path(directory) / "ilptx.json"
        path.write_text(json.dumps(config))
        return processes.connector(["--config", str(path)])
    node = shutil.which("node")
    assert node is not None, "the reference connector needs node"
    path = Path(directory) / "reference.json"
    path.write_text(json.dumps({"store": "memory", **config}))
    return processes.run([node, str(REPO / "tests" / "interop" / "run_reference_connector.js"), "--config", str(path)])


def stop_either_connector(kind: str, process: "Process") -> None:
    """Stop it and check it stopped cleanly (twistd: 0 or -SIGTERM with its shutdown line; node: 0)."""
    status = process.stop()
    if kind == "ilptx":
        assert_clean_twistd_stop(status, signal.SIGTERM, process)
    else:
        assert status == 0, process.output()
