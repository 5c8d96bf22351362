"""Test helpers for plugin authors whose tests run real processes: a ``twistd -n ilpconnector``
with your distribution installed, free ports, waiting for a port or a condition, the log lines of
a test, and the rules of a plugin distribution's test tree.

Unlike :mod:`ilptx.testing` (fakes only, never waits), these helpers start processes and poll:
use them in integration and interop tests only. ilptx's own tests use them too
(``tests/integration/procs.py``).

Typical use in a plugin's ``conftest.py`` and tests::

    from ilptx.testing_procs import free_ports, install_distribution, start_connector

    @pytest.fixture(scope="session")
    def installed(tmp_path_factory):
        return install_distribution(PACKAGE_DIR, tmp_path_factory.mktemp("site"),
                                    entry_point="my-ledger = my_plugin.hooks")

    def test_two_connectors(installed, tmp_path):
        admin, btp = free_ports(2)
        connector = start_connector({...config...}, site=installed, directory=tmp_path)
        try:
            connector.wait_for_ports(admin, btp)
            ...
        finally:
            connector.close()

Durations are in seconds here (they bound the test's waiting, not the connector).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Optional

from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher

import ilptx

__all__ = ["ILPTX_ROOT", "TWISTD", "TWISTD_CLEAN_SHUTDOWN", "free_port", "free_ports", "wait_for_port", "Process",
           "twistd_connector", "start_connector", "assert_clean_twistd_stop", "install_distribution", "until",
           "LogLines", "die", "CRASH_POINTS", "run_crash_child", "PUBLIC_PLUGIN_API", "distribution_problems",
           "module_imports", "ilptx_imports", "undocumented_tests", "repeated_test_modules"]

#: The directory holding the ``ilptx`` package that is imported (the source tree, or site-packages).
#: twistd runs there, so it finds this ilptx and its ``twisted/plugins/ilpconnector.py`` dropin.
ILPTX_ROOT = Path(ilptx.__file__).resolve().parents[1]

#: ``twistd`` run by this interpreter. (``python -m twisted`` would be ``twist``, which takes
#: neither ``-n`` nor ``--pidfile``.)
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]

#: twistd logs this after every service stopped; it then re-raises the stop signal on itself,
#: so a clean stop exits with status 0 or -signal.
TWISTD_CLEAN_SHUTDOWN = "Server Shut Down."


def free_port() -> int:
    """:returns: a TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def free_ports(count: int = 1) -> list[int]:
    """:returns: ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago (all held
    open while choosing, so they differ)."""
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


def wait_for_port(port: int, proc: Optional["Process"] = None, timeout: float = 20.0) -> None:
    """Poll every 50 ms until ``port`` on 127.0.0.1 accepts TCP connections.

    :raises AssertionError: ``timeout`` seconds passed, or ``proc`` exited first (with its output).
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
    """A child process whose stdout and stderr go to one temporary log file; stopped by its PID.

    :param argv: the command. :param env: variables to set (over this process's environment when
        ``inherit``). :param cwd: its working directory (default :data:`ILPTX_ROOT`).

    :ivar proc: the :class:`subprocess.Popen`. :ivar log_path: the log file (:class:`~pathlib.Path`).
    """

    def __init__(self, argv: list, env: Optional[dict] = None, cwd: Optional[Path] = None, inherit: bool = True) -> None:
        self.argv = [str(a) for a in argv]
        self._log = tempfile.NamedTemporaryFile(prefix="ilptx-test-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        full_env = {**(os.environ if inherit else {}), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(self.argv, cwd=cwd or ILPTX_ROOT, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, limit: int = 20000) -> str:
        """:returns: the command and the tail (``limit`` characters) of what it printed, for
        assertion messages."""
        text = self.full_output()
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return f"$ {' '.join(self.argv)}\n{text}"

    def full_output(self) -> str:
        """:returns: everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_ports(self, *ports: int, timeout: float = 60.0) -> None:
        """:func:`wait_for_port` for each of ``ports``, failing at once if this process exits."""
        deadline = time.monotonic() + timeout
        for port in ports:
            wait_for_port(port, self, max(0.1, deadline - time.monotonic()))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait. :returns: the exit status.

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
        """Kill it (SIGKILL) if still running and remove the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def _path_with(site: Optional[Path]) -> dict:
    if site is None:
        return {}
    rest = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join([str(site), rest]) if rest else str(site)}


def twistd_connector(args: list, env: Optional[dict] = None, *, site: Optional[Path] = None,
                     cwd: Optional[Path] = None, process_class: type = Process) -> Process:
    """Start ``twistd --nodaemon --pidfile= ilpconnector ARGS`` (with ``site``, e.g. from
    :func:`install_distribution`, first on ``PYTHONPATH``). :returns: the :class:`Process`
    (an instance of ``process_class``, a subclass taking the same arguments)."""
    return process_class(TWISTD + ["--nodaemon", "--pidfile=", "ilpconnector", *args],
                         {**_path_with(site), **(env or {})}, cwd=cwd)


def start_connector(config: dict, *, site: Optional[Path] = None, directory: Optional[Path] = None,
                    env: Optional[dict] = None) -> Process:
    """Write ``config`` (the connector's configuration, a ``dict``) as ``connector.json`` in
    ``directory`` (default: a new temporary one) and start :func:`twistd_connector` on it.
    It does not wait: call :meth:`Process.wait_for_ports`. :returns: the :class:`Process`."""
    directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="ilptx-connector-"))
    path = directory / "connector.json"
    path.write_text(json.dumps(config))
    return twistd_connector(["--config", str(path)], env, site=site)


def assert_clean_twistd_stop(status: int, sig: int, process: Process) -> None:
    """A clean stop: status 0 or ``-sig``, twistd's shutdown line logged, no traceback.

    :raises AssertionError: otherwise, with the process's output."""
    out = process.full_output()
    assert status in (0, -sig), f"exit status {status}\n{process.output()}"
    assert TWISTD_CLEAN_SHUTDOWN in out, f"no {TWISTD_CLEAN_SHUTDOWN!r} logged\n{process.output()}"
    assert "Traceback" not in out, f"a traceback was logged\n{process.output()}"


def install_distribution(source: Path, target: Path, *, entry_point: Optional[str] = None) -> Path:
    """``pip install --no-deps --target target`` of the distribution in ``source``, built from a
    copy (so the build leaves nothing in the source tree; ``tests``, ``build`` and ``*.egg-info``
    are not copied). Its dependencies must already be in this interpreter's environment.

    :param entry_point: a line its ``entry_points.txt`` must hold (e.g. ``"xrp-paychan =
        ilptx_xrp_paychan.hooks"``): proves the plugin is found the way an operator's is.
    :returns: ``target``, to pass as ``site`` to :func:`start_connector`.
    :raises AssertionError: pip failed (with its output), or the entry point is missing.
    """
    source, target = Path(source), Path(target)
    copy = Path(tempfile.mkdtemp(prefix="ilptx-dist-")) / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               str(target), str(copy)], capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)
    assert done.returncode == 0, f"pip install {source} failed:\n{done.stdout}\n{done.stderr}"
    if entry_point is not None:
        entry_points = "".join(p.read_text() for p in target.glob("*.dist-info/entry_points.txt"))
        assert entry_point in entry_points, f"{entry_point!r} not in {source.name}'s entry points:\n{entry_points}"
    return target


@inlineCallbacks
def until(predicate: Callable, what: str, timeout: float = 60.0, interval: float = 0.1, clock=None):
    """Poll ``predicate()`` (a truth value, or a Deferred of one) every ``interval`` seconds on
    ``clock`` (default: the global reactor) until it is true. :returns: ``Deferred[None]``.

    :raises AssertionError: not true within ``timeout`` seconds (the message names ``what``)."""
    if clock is None:
        from twisted.internet import reactor as clock
    for _ in range(max(1, int(timeout / interval))):
        if (yield maybeDeferred(predicate)):
            return
        yield deferLater(clock, interval, lambda: None)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class LogLines(list):
    """The formatted Twisted log lines at ``levels`` (default warn and above) while it observes,
    as a ``list[str]``. A pytest fixture::

        @pytest.fixture
        def warnings():
            with LogLines() as lines:
                yield lines
    """

    def __init__(self, levels: Iterable[str] = ("warn", "error", "critical")) -> None:
        super().__init__()
        self._levels = frozenset(levels)

    def _observe(self, event: dict) -> None:
        level = event.get("log_level")
        if level is not None and level.name in self._levels:
            self.append(formatEvent(event))

    def __enter__(self) -> "LogLines":
        globalLogPublisher.addObserver(self._observe)
        return self

    def __exit__(self, *exc) -> None:
        globalLogPublisher.removeObserver(self._observe)


#: The modules a third-party ledger plugin may import from ilptx: the public API as the README
#: documents it ("Plugins", "Settlement framework"): the interfaces, the settlement package and
#: its plugin factories, the plugin toolkit and hook marker, ConfigError and the ILP errors, the
#: BTP protocol-data entry a sub-protocol handler answers with, and these test helpers.
PUBLIC_PLUGIN_API = frozenset({"ilptx.interfaces", "ilptx.settlement", "ilptx.settlement.plugin",
                               "ilptx.settlement.server", "ilptx.plugins.base", "ilptx.plugins.hookspecs",
                               "ilptx.errors", "ilptx.codec.btp", "ilptx.testing", "ilptx.testing_procs"})


def distribution_problems(package: Path, tests: Path) -> list[str]:
    """The rules of a plugin distribution, as one list of problems (empty when it keeps them):
    ``package`` imports from ilptx only :data:`PUBLIC_PLUGIN_API`; every test under ``tests`` has
    a docstring; no two test modules share a name. A plugin's meta test asserts it is ``[]``."""
    outside = sorted(f"{name} imports {module} (not in ilptx's public plugin API)"
                     for name, module in ilptx_imports(package) if module not in PUBLIC_PLUGIN_API)
    return (outside + [f"{t}: no docstring" for t in undocumented_tests(tests)]
            + [f"{m}: more than one test module of that name" for m in repeated_test_modules(tests)])


def die(where: str) -> None:
    """Print ``KILLED <where>`` and SIGKILL this process (a crash at that point: nothing after
    it runs, no cleanup). For crash children (:func:`run_crash_child`)."""
    print(f"KILLED {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


#: The framework's kill points (see :mod:`ilptx.settlement.engine`) by name, for
#: :func:`run_crash_child`: ``before-record`` (a verified claim arrived, not yet recorded),
#: ``after-sign`` (a claim signed, not yet recorded); and ``in-handler`` (the credit recorded, the
#: money handler called, the balance not yet written), which run_crash_child makes itself.
CRASH_POINTS = {
    "before-record": ("credits", "prepare", "before recording the credit"),
    "after-sign": ("outgoing_claim", "set_if_max", "after signing, before recording the claim"),
}


def run_crash_child(make_plugin: Callable, cfg: dict, kill_at: Optional[Callable] = None) -> None:
    """The body of a crash child: one settling plugin in its own process that SIGKILLs itself at
    one step, for kill -9 tests. Logs to stdout; runs the reactor until it dies or is stopped.

    :param make_plugin: ``make_plugin(cfg, services) -> SettlingPlugin`` (``services`` from
        :func:`ilptx.testing.plugin_services` on a SQLite store at ``cfg["path"]``).
    :param cfg: ``{"role", "path", "kill_at": a CRASH_POINTS name or another, "pay": [amount, key] | None}``.
    :param kill_at: ``kill_at(plugin, cfg)`` installs a plugin-specific kill point (for names
        not in :data:`CRASH_POINTS`).

    It prints ``CONNECTED`` once connected, ``CREDITED <amount> balance <n>`` for each credit (the
    money handler adjusts store balance ``"balance"``), ``PAID`` or ``QUEUED <error>`` for
    ``cfg["pay"]``, and ``KILLED <where>`` (:func:`die`). SIGTERM disconnects the plugin first."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from ilptx.stores.sqlite import SqliteStore
    from ilptx.testing import plugin_services

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)

    @inlineCallbacks
    def main():
        store = SqliteStore(cfg["path"], reactor=reactor)
        yield store.open()
        plugin = make_plugin(cfg, plugin_services(reactor, account_id=cfg["role"], store=store))

        def credited(amount):
            if cfg["kill_at"] == "in-handler":
                die("in the money handler")
            return store.adjust("balance", -amount).addCallback(
                lambda state: print("CREDITED %d balance %d" % (amount, state.balance), flush=True))

        plugin.register_money_handler(credited)
        plugin.register_data_handler(lambda data: b"")
        if cfg["kill_at"] in CRASH_POINTS:
            part, method, where = CRASH_POINTS[cfg["kill_at"]]
            setattr(getattr(plugin.settlement, part), method, lambda *args, **kwargs: die(where))
        elif kill_at is not None:
            kill_at(plugin, cfg)
        reactor.addSystemEventTrigger("before", "shutdown",
                                      lambda: plugin.disconnect().addBoth(lambda _: store.close()))
        yield plugin.connect()
        print("CONNECTED", flush=True)
        if cfg["pay"]:
            plugin.send_money(*cfg["pay"]).addCallbacks(lambda _: print("PAID", flush=True),
                                                        lambda f: print("QUEUED", f.getErrorMessage(), flush=True))

    reactor.callWhenRunning(main)
    reactor.run()


def _parsed(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def module_imports(package: Path) -> set[tuple[str, str]]:
    """:returns: ``{(file name, module)}`` of every absolute import in the ``*.py`` files under
    ``package`` (``import a.b`` and ``from a.b import c`` give ``a.b``; relative imports are left out)."""
    found = set()
    for path in Path(package).rglob("*.py"):
        for node in ast.walk(_parsed(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            found |= {(path.name, n) for n in names}
    return found


def ilptx_imports(package: Path) -> set[tuple[str, str]]:
    """:returns: the :func:`module_imports` of ``ilptx`` or ``ilptx.*`` under ``package``: a plugin
    distribution's meta test checks that they are all in the public API it documents."""
    return {(name, m) for name, m in module_imports(package) if m == "ilptx" or m.startswith("ilptx.")}


def _test_modules(tests: Path) -> list[Path]:
    return [p for p in Path(tests).rglob("test_*.py") if "node_modules" not in p.parts]


def undocumented_tests(tests: Path) -> list[str]:
    """:returns: ``["<module>::<test>"]`` for every ``test_*`` function under ``tests`` (in
    ``test_*.py`` files, outside ``node_modules``) that has no docstring."""
    return [f"{p.name}::{n.name}" for p in _test_modules(tests) for n in ast.walk(_parsed(p))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
            and not ast.get_docstring(n)]


def repeated_test_modules(tests: Path) -> list[str]:
    """:returns: the ``test_*.py`` file names that occur more than once under ``tests`` (pytest's
    rootdir-relative imports need them unique)."""
    return sorted(name for name, count in Counter(p.name for p in _test_modules(tests)).items() if count > 1)
