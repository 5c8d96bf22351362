"""twistd glue: ``twistd -n ilpconnector [--config FILE]``.

Without ``--config`` the connector runs on the embedded default config (a copy of
``etc/connector.yml``: two child accounts served over BTP on 127.0.0.1), with
``CONNECTOR_*`` variables overriding it key by key -- unless ``CONNECTOR_ACCOUNTS`` is set:
then, as with the reference connector, the environment alone is the config.

With ``adminApi: true`` the admin API (:mod:`ilptx.admin`) listens on
``adminApiHost:adminApiPort`` (default 127.0.0.1:7780); a non-loopback host needs
``adminApiToken``.

A bad config or an unknown plugin stops start-up with one line on stderr naming the key and
the problem (``ilpconnector: config error: <key>: <problem>``) and exit status 2; so does
anything that fails once the reactor runs -- a store that cannot be opened, a listener that
cannot bind, the admin port in use -- as ``ilpconnector: start-up failed: <key>: <problem>``
(also logged), after every part already started has been stopped. No traceback.

``twistd ilpconnector --version`` prints ilptx's version.

Once everything started (the connector's last step connects the plugins; then the admin API)
and the reactor runs, a last ``gc`` step tunes CPython's garbage collector for the packet path (issue 12): one full
collection, :func:`gc.freeze` (the config, plugins, codecs and modules loaded so far move to
the permanent generation, which no later collection walks), then
``gc.set_threshold(*GC_THRESHOLDS)``. ``ILPTX_GC_THRESHOLDS`` overrides the thresholds
(``"g0,g1,g2"``, three integers >= 0 as :func:`gc.set_threshold` takes them; ``700,10,10`` is
CPython's default); a bad value is a config error naming ``ILPTX_GC_THRESHOLDS``.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from importlib import resources
from typing import Callable

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from ilptx import __version__
from ilptx.admin.auth import check_binding
from ilptx.config import load_config, load_config_file, parse_config
from ilptx.errors import ConfigError
from ilptx.node import OrderedMultiService, StartupError, Step

__all__ = ["Options", "makeService", "admin_service", "gc_service", "gc_thresholds", "default_config_text",
           "exit_after_shutdown", "START_UP_FAILED_STATUS", "GC_THRESHOLDS"]

#: exit status of a start-up that failed (as of a config error: twistd's own usage errors are 1)
START_UP_FAILED_STATUS = 2

_log = Logger(namespace="ilptx.tap")

#: ``gc.set_threshold`` once start-up is done. Generation 0 is collected every 50,000 net
#: container allocations instead of 700 (the in-flight packets are scanned far less often),
#: generation 1 every 20 of those; a full collection needs 100 generation-1 collections (and,
#: as always in CPython, pending objects over 25 % of the long-lived ones). With the
#: deduplicate cache untracked and start-up frozen, the full collections that stalled the
#: reactor 42-463 ms at 100 Prepares in flight become rare and short (bench/README.md).
GC_THRESHOLDS = (50_000, 20, 100)
GC_THRESHOLDS_VARIABLE = "ILPTX_GC_THRESHOLDS"


def default_config_text() -> str:
    """:returns: the embedded default config (identical to ``etc/connector.yml``)."""
    return resources.files("ilptx").joinpath("default-connector.yml").read_text(encoding="utf-8")


class Options(usage.Options):
    """Command-line options of the ``ilpconnector`` twistd plugin."""

    synopsis = "[--config FILE]"
    longdesc = ("Run an Interledger connector. The config file uses the reference connector's keys "
                "(ilpAddress, accounts, routes, spread, backend, ...); CONNECTOR_* environment "
                "variables override it.")
    optParameters = [
        ["config", "c", None, "YAML or JSON config file (default: the embedded default config)"],
    ]

    def opt_version(self) -> None:
        """Print ilptx's version and exit."""
        sys.stdout.write(f"ilptx {__version__}\n")
        sys.stdout.flush()
        sys.exit(0)


def _fail(message: str) -> "SystemExit":
    sys.stderr.write(f"ilpconnector: config error: {message}\n")
    sys.stderr.flush()
    return SystemExit(2)


def exit_after_shutdown(reactor, status: int, register: Callable = atexit.register) -> None:
    """Stop the reactor and make the process exit with ``status`` once twistd is done.

    twistd has no way to set the exit status (Twisted #11335, #4762): when the reactor
    stops, it stops every service, logs "Server Shut Down.", removes its pid file and
    returns, and the process exits 0. So this registers an ``atexit`` hook that flushes
    stdout and stderr and ends the process with ``status`` (``os._exit``) after all that.

    :param reactor: stopped now, or as soon as it runs (start-up may fail before it does).
    :param register: ``atexit.register`` (a test passes its own).
    """
    register(_exit_now, status)
    reactor.callWhenRunning(reactor.stop)


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(status)


class _Root(OrderedMultiService):
    """The twistd application's service: the connector, then the admin API (once the
    connector has started, so it never reports a store that is not open).

    When start-up fails, it writes one line on the terminal's stderr (and in the log) and
    exits with :data:`START_UP_FAILED_STATUS` after a clean shutdown.
    """

    def __init__(self, reactor, exit: Callable = exit_after_shutdown, stderr=None) -> None:
        super().__init__()
        self._reactor = reactor
        self._exit = exit
        self._stderr = stderr

    def startService(self):
        """Start the connector, then the admin API; report a failure (see the class)."""
        return super().startService().addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return  # stopped (SIGTERM) before start-up finished: that stop is under way
        if failure.check(StartupError):
            message = str(failure.value)
        else:  # a bug, not a setting: keep its traceback in the log
            _log.failure("start-up failed", failure)
            message = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        _log.critical("start-up failed: {message}", message=message)
        # twistd redirects sys.stderr into the log; the operator's terminal is sys.__stderr__
        stderr = self._stderr or sys.__stderr__
        stderr.write(f"ilpconnector: start-up failed: {message}\n")
        stderr.flush()
        self._exit(self._reactor, START_UP_FAILED_STATUS)


def makeService(options: Options) -> OrderedMultiService:
    """Build the connector service from ``options``.

    :raises SystemExit: (status 2) invalid config or unknown plugin, after one line on stderr.
    """
    from twisted.internet import reactor

    from ilptx.node import build_connector

    try:
        if options["config"]:
            config = load_config_file(options["config"], os.environ)
        elif "CONNECTOR_ACCOUNTS" in os.environ:
            # configured through the environment alone, as the reference connector is
            config = parse_config({}, os.environ)
        else:
            config = load_config(default_config_text(), os.environ, source="<embedded default config>")
        if config.raw["adminApi"]:
            check_binding(config.raw["adminApiHost"], config.raw.get("adminApiToken"))
        connector = build_connector(config, reactor=reactor)
        thresholds = gc_thresholds(os.environ)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    top = _Root(reactor)
    connector.setServiceParent(top)
    if config.raw["adminApi"]:
        admin_service(connector, config).setServiceParent(top)
    gc_service(thresholds, reactor).setServiceParent(top)
    return top


def gc_thresholds(environ) -> tuple[int, int, int]:
    """:returns: ``ILPTX_GC_THRESHOLDS`` from ``environ`` as three ints, else :data:`GC_THRESHOLDS`.

    :raises ConfigError: (key ``ILPTX_GC_THRESHOLDS``) not three comma-separated integers >= 0.
    """
    text = environ.get(GC_THRESHOLDS_VARIABLE)
    if text is None:
        return GC_THRESHOLDS
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ConfigError(GC_THRESHOLDS_VARIABLE, f"must be three integers >= 0 like 50000,20,100, not {text!r}")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def gc_service(thresholds: tuple[int, int, int], reactor, gc_module=gc) -> Step:
    """The last start-up step: collect, :func:`gc.freeze`, ``gc.set_threshold(*thresholds)``
    (on PyPy, which has neither of the last two, only the collection).

    It runs once the reactor runs (``callWhenRunning``): twistd starts the services before
    ``reactor.run()`` installs its signal handlers, and a SIGTERM or SIGINT arriving during a
    full collection there would kill the process instead of stopping it cleanly. Stopping the
    step restores nothing (the process is ending).

    :param reactor: ``IReactorCore``. :param gc_module: :mod:`gc` (a fake in tests).
    """
    def tune() -> Deferred:
        done: Deferred = Deferred()

        def run() -> None:
            if done.called:  # stopped (cancelled) before the reactor ran
                return
            gc_module.collect()
            if hasattr(gc_module, "freeze"):
                gc_module.freeze()
                gc_module.set_threshold(*thresholds)
                _log.info("gc: start-up frozen ({count} objects), thresholds {thresholds}",
                          count=gc_module.get_freeze_count(), thresholds=thresholds)
            else:  # PyPy: a generational GC of its own, tuned by PYPY_GC_* variables (README)
                _log.info("gc: no gc.freeze or thresholds on this interpreter; its collector is tuned "
                          "by its own settings (PyPy: PYPY_GC_NURSERY)")
            done.callback(None)

        reactor.callWhenRunning(run)
        return done

    return Step("gc", GC_THRESHOLDS_VARIABLE, tune, lambda: None)


def admin_service(connector, config, reactor=None) -> Step:
    """The admin API (:mod:`ilptx.admin`) on ``tcp:<adminApiPort>:interface=<adminApiHost>``.

    :returns: a service that listens while it runs; its start fails with a
        :class:`~ilptx.node.StartupError` naming ``adminApiPort`` when the port cannot be bound.
    """
    from ilptx.admin import AdminApi

    if reactor is None:
        from twisted.internet import reactor
    site = AdminApi(connector, token=config.raw.get("adminApiToken")).site()
    host = config.raw["adminApiHost"].replace("\\", "\\\\").replace(":", "\\:")
    endpoint = serverFromString(reactor, f"tcp:{config.raw['adminApiPort']}:interface={host}")
    listening = []

    def listen():
        return endpoint.listen(site).addCallback(listening.append)

    def stop():
        return listening.pop().stopListening() if listening else None

    return Step("admin", "adminApiPort", listen, stop)
