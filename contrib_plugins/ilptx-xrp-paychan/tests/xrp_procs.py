"""Real processes for the tests that need them (only those may wait): the rippled double as its own process
(``python -m rippled_double``), ``twistd -n ilpconnector`` children with this distribution installed by pip, free
ports, and polling the real reactor."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent
ILPTX_TREE = TESTS.parents[2]  # twistd runs from the ilptx source tree (its dropin, ilptx)
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]


def free_ports(count: int = 1) -> list:
    """:returns: ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


class Child:
    """A child process, stdout + stderr in a log file, stopped by its PID."""

    def __init__(self, argv: list, *, env: dict = None, cwd: Path = ILPTX_TREE, prefix: str = "ilptx-xrp-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.log = open(self.dir / "out.log", "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.flush()
        return (self.dir / "out.log").read_text(errors="replace")

    def wait_for_ports(self, *ports: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                assert self.proc.poll() is None, f"{self.proc.args[-1]} exited with {self.proc.returncode}:\n" \
                                                 f"{self.output()}"
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, f"port {port} did not open:\n{self.output()}"
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit. :raises AssertionError: still running after 60 s (killed, with
        its output)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.proc.args[-1]:.80} did not stop within 60 s:\n{self.output()}") from None
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_double(port: int, funds: dict, close_interval: float = 0.25) -> Child:
    """``python -m rippled_double`` on 127.0.0.1:``port`` closing a ledger every ``close_interval`` s, with
    ``funds`` (r-address → drops)."""
    argv = [sys.executable, "-m", "rippled_double", "--port", str(port), "--close-interval", str(close_interval)]
    for address, drops in funds.items():
        argv += ["--fund", f"{address}={drops}"]
    double = Child(argv, env={"PYTHONPATH": str(TESTS)}, cwd=TESTS, prefix="ilptx-xrp-double-")
    double.wait_for_ports(port)
    return double


def start_connector(config: dict, site: Path) -> Child:
    """``twistd -n ilpconnector --config <json of config>`` with ``site`` (this distribution, pip-installed)
    first on the path."""
    work = Path(tempfile.mkdtemp(prefix="ilptx-xrp-config-"))
    (work / "connector.json").write_text(json.dumps(config))
    return Child(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", "--config", str(work / "connector.json")],
                 env={"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)},
                 prefix="ilptx-xrp-twistd-")


@pytest_twisted.inlineCallbacks
def until(predicate, what: str, timeout: float = 60.0):
    """Poll ``predicate()`` (a truth value or a Deferred of one) every 100 ms on the real reactor.
    :raises AssertionError: not true within ``timeout`` seconds (naming ``what``)."""
    for _ in range(int(timeout / 0.1)):
        if (yield maybeDeferred(predicate)):
            return
        yield deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class JsPlugin:
    """``node tests/js/run_js_plugin.js <config>``: one ilp-plugin-xrp-paychan 2.4.1; its JSON events (stdout) are
    collected by a thread into :attr:`events`; :meth:`command` writes one command line; stderr goes to a log."""

    def __init__(self, node: str, config: dict, script: str = "run_js_plugin.js") -> None:
        import threading

        self.dir = Path(tempfile.mkdtemp(prefix="ilptx-xrp-js-"))
        self.log = open(self.dir / "err.log", "wb")
        self.proc = subprocess.Popen([node, str(TESTS / "js" / script), json.dumps(config)],
                                     cwd=TESTS / "js", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env={**os.environ, "DEBUG": os.environ.get("XRP_JS_DEBUG", "")})
        self.events: list = []
        self._ids = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "unparsed", "line": line.decode(errors="replace")})

    def output(self) -> str:
        self.log.flush()
        return (self.dir / "err.log").read_text(errors="replace") + "\n" + json.dumps(self.events)[-4000:]

    def command(self, cmd: str, **args) -> int:
        self._ids += 1
        self.proc.stdin.write((json.dumps({"id": self._ids, "cmd": cmd, **args}) + "\n").encode())
        self.proc.stdin.flush()
        return self._ids

    def answer(self, command_id: int):
        """The ``done``/``failed`` event of ``command_id``, or ``None`` yet."""
        for event in self.events:
            if event.get("id") == command_id and event["event"] in ("done", "failed"):
                return event
        return None

    def has(self, name: str) -> bool:
        return any(e["event"] == name for e in self.events)

    def money(self) -> list:
        """The amounts (``int``) the plugin's money handler got, in order."""
        return [int(e["amount"]) for e in self.events if e["event"] == "money"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
