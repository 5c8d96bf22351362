"""Real processes for the tests that need them (only those may wait): the rippled double as its own process
(``python -m rippled_double``), ``twistd -n ilpconnector`` children with this distribution installed by pip, free
ports, and polling the real reactor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ilptx.testing_procs import ILPTX_ROOT, Process, free_ports, twistd_connector, until  # noqa: F401

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent
ILPTX_TREE = ILPTX_ROOT  # twistd and the ilptx CLI run there (this ilptx, its dropin)


class Child(Process):
    """A child process (:class:`ilptx.testing_procs.Process`) whose :meth:`output` is everything it printed: the
    tests search it for the lines they wait for."""

    def __init__(self, argv: list, env: dict = None, *, cwd: Path = None, prefix: str = "") -> None:
        super().__init__(argv, env, cwd=cwd)

    def output(self) -> str:
        return self.full_output()


def start_double(port: int, funds: dict, close_interval: float = 0.25) -> Child:
    """``python -m rippled_double`` on 127.0.0.1:``port`` closing a ledger every ``close_interval`` s, with
    ``funds`` (r-address → drops)."""
    argv = [sys.executable, "-m", "rippled_double", "--port", str(port), "--close-interval", str(close_interval)]
    for address, drops in funds.items():
        argv += ["--fund", f"{address}={drops}"]
    double = Child(argv, env={"PYTHONPATH": str(TESTS)}, cwd=TESTS, prefix="ilptx-xrp-double-")
    double.wait_for_ports(port)
    return double


def start_connector(config: dict, site: Path) -> Process:
    """``twistd -n ilpconnector --config <json of config>`` with ``site`` (this distribution, pip-installed)
    first on the path (:func:`ilptx.testing_procs.twistd_connector`)."""
    work = Path(tempfile.mkdtemp(prefix="ilptx-xrp-config-"))
    (work / "connector.json").write_text(json.dumps(config))
    return twistd_connector(["--config", str(work / "connector.json")], site=site, process_class=Child)


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
