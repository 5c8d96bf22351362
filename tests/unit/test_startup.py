"""Start-up and shutdown: the connector as an OrderedMultiService of steps, and how twistd reports a failure."""

from __future__ import annotations

import io

import pytest
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.internet.testing import RaisingMemoryReactor
from twisted.logger import LogLevel, globalLogPublisher

from ilptx.config import parse_config
from ilptx.node import OrderedMultiService, StartupError, build_connector
from ilptx.stores import StoreOpenError
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin


class Recorder(Service):
    """A child service that records its start and stop in a shared list; start/stop return the
    Deferreds the test hands it (or fire at once)."""

    def __init__(self, name, events, start=None, stop=None):
        self.setName(name)
        self.events = events
        self._start, self._stop = start, stop

    def startService(self):
        super().startService()
        self.events.append(("start", self.name))
        return self._start() if self._start else None

    def stopService(self):
        super().stopService()
        self.events.append(("stop", self.name))
        return self._stop() if self._stop else None


def outcome(d):
    """The result of a fired Deferred: the value, or the Failure (handled)."""
    box = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def test_children_start_one_after_another_and_stop_in_reverse():
    """A child starts once the previous child's startService Deferred fired; stop goes last-first, one at a time."""
    events, gates, stop_gate = [], [Deferred(), Deferred()], Deferred()
    top = OrderedMultiService()
    Recorder("a", events, start=lambda: gates[0]).setServiceParent(top)
    Recorder("b", events, start=lambda: gates[1], stop=lambda: stop_gate).setServiceParent(top)
    Recorder("c", events).setServiceParent(top)
    started = top.startService()
    assert events == [("start", "a")]
    gates[0].callback(None)
    assert events == [("start", "a"), ("start", "b")]
    assert not started.called
    gates[1].callback(None)
    assert events[-1] == ("start", "c") and outcome(started) is None
    del events[:]
    stopped = top.stopService()
    assert events == [("stop", "c"), ("stop", "b")]  # a waits until b has stopped
    stop_gate.callback(None)
    assert events == [("stop", "c"), ("stop", "b"), ("stop", "a")] and outcome(stopped) is None


def test_a_failing_child_stops_start_up_and_the_started_ones():
    """A child whose start fails: later children never start, earlier ones stop in reverse, when_started errbacks."""
    events = []
    top = OrderedMultiService()
    Recorder("a", events).setServiceParent(top)
    Recorder("b", events).setServiceParent(top)
    Recorder("broken", events, start=lambda: fail(ValueError("no"))).setServiceParent(top)
    Recorder("never", events).setServiceParent(top)
    started = top.startService()
    assert events == [("start", "a"), ("start", "b"), ("start", "broken"),
                      ("stop", "broken"), ("stop", "b"), ("stop", "a")]
    assert outcome(started).check(ValueError)
    assert outcome(top.when_started()).check(ValueError)  # every caller gets its own copy of the outcome
    assert top.stopService() is not None and events[-1] == ("stop", "a")  # nothing is stopped twice


def test_stop_during_start_up_cancels_the_step_under_way():
    """stopService while a child is starting cancels that start and stops what started; nothing later starts."""
    events, gate = [], Deferred()
    top = OrderedMultiService()
    Recorder("a", events).setServiceParent(top)
    Recorder("slow", events, start=lambda: gate).setServiceParent(top)
    Recorder("later", events).setServiceParent(top)
    started = top.startService()
    top.stopService()
    assert events == [("start", "a"), ("start", "slow"), ("stop", "slow"), ("stop", "a")]
    assert outcome(started).check(CancelledError)


# -- the connector's steps ------------------------------------------------------------------


def plugin_factory(plugins):
    def factory(options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        plugins[account_id] = plugin
        return plugin
    return factory


class FailingStore(MemoryStore):
    """A MemoryStore whose open() fails the way a read-only SQLite file does; records close()."""

    def __init__(self):
        super().__init__()
        self.closed = 0

    def open(self):
        return fail(StoreOpenError("storePath", "/x is a read-only file "
                                                "(sqlite: attempt to write a readonly database)"))

    def close(self):
        self.closed += 1
        return succeed(None)


def connector_with(store=None, **extra):
    plugins = {}
    data = {"ilpAddress": "test.node", "store": "sqlite", "accounts": {
        "alice": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9},
        "bob": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9}}}
    data.update(extra)
    clock = Clock()
    connector = build_connector(parse_config(data), reactor=clock, plugin_factories={"mem": plugin_factory(plugins)},
                                store=store or MemoryStore(), custom_middleware_factories={})
    return connector, plugins, clock


def test_the_connector_steps_are_named_children_in_order():
    """The connector is a MultiService of store, rates, middlewares, settlement, routing, plugins, in that order."""
    connector, _, _ = connector_with()
    assert [child.name for child in connector] == ["store", "rates", "middlewares", "settlement", "routing", "plugins"]
    assert connector.getServiceNamed("store").key == "storePath"


def test_a_store_that_cannot_open_fails_start_up_naming_the_key():
    """store.open() failing: ready errbacks with one line naming storePath, no plugin connects, the store is closed."""
    store = FailingStore()
    connector, plugins, _ = connector_with(store)
    ready = connector.startService()
    failure = outcome(ready)
    assert failure.check(StartupError)
    assert str(failure.value) == "storePath: /x is a read-only file (sqlite: attempt to write a readonly database)"
    assert not any(p.connected for p in plugins.values())
    assert store.closed == 1
    assert outcome(connector.ready).check(StartupError)


def test_an_unexpected_step_failure_is_named_by_the_step_key():
    """A step failing with a plain exception is reported under its key (the rate backend: backend)."""
    connector, _, _ = connector_with()
    connector.rate_backend.connect = lambda: fail(RuntimeError("rates table unreadable"))
    failure = outcome(connector.startService())
    assert str(failure.value) == "backend: rates table unreadable"


def test_a_plugin_that_cannot_listen_fails_start_up():
    """A plugin whose connect() fails before initialConnectTimeout stops start-up naming accounts.<id>; all stop."""
    connector, plugins, _ = connector_with()
    bob = plugins["bob"]
    bob.connect = lambda: fail(CannotListenError("127.0.0.1", 7768, OSError(98, "Address already in use")))
    failure = outcome(connector.startService())
    assert failure.check(StartupError)
    assert str(failure.value).startswith("accounts.bob: plugin mem failed to start: Couldn't listen on 127.0.0.1:7768")
    assert not plugins["alice"].connected  # alice connected, then was disconnected by the stop


def test_a_plugin_failing_after_initial_connect_timeout_is_only_logged():
    """After initialConnectTimeout the connector is running: a plugin's later connect failure is logged, not fatal."""
    connector, plugins, clock = connector_with(initialConnectTimeout=1000)
    late = Deferred()
    plugins["bob"].connect = lambda: late
    ready = connector.startService()
    clock.advance(1.0)
    assert outcome(ready) is None
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        late.errback(RuntimeError("refused"))
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert connector.running
    assert any(e.get("log_level") == LogLevel.critical and e.get("account") == "bob" for e in logged)


def test_stop_while_plugins_connect_cancels_the_wait():
    """Stopping while a plugin still connects cancels the plugins step: ready errbacks, no timeout timer is left."""
    connector, plugins, clock = connector_with(initialConnectTimeout=5000)
    plugins["bob"].connect = lambda: Deferred()
    ready = connector.startService()
    connector.stopService()
    assert outcome(ready).check(CancelledError)
    assert [c for c in clock.getDelayedCalls() if "give_up" in getattr(c.func, "__qualname__", "")] == []
    assert not connector.running and not any(step.running for step in connector)


def test_an_open_listener_is_warned_about():
    """A BTP listener with no host and no cert (plain ws on every interface) gets a warning naming the account."""
    connector, _, _ = connector_with(accounts={
        "open": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
                 "options": {"listener": {"port": 1, "secret": "s"}}},
        "local": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
                  "options": {"listener": {"host": "127.0.0.1", "port": 2, "secret": "s"}}},
        "dialer": {"relation": "parent", "plugin": "mem", "assetCode": "USD", "assetScale": 9,
                   "options": {"server": "btp+ws://:s@127.0.0.1:3"}}})
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        connector.startService()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    warned = [e["account"] for e in logged if e.get("log_level") == LogLevel.warn and "BTP listener" in e["log_format"]]
    assert warned == ["open"]


# -- twistd: the one line and the exit status ----------------------------------------------------


class FakeReactor:
    def __init__(self):
        self.calls = []

    def callWhenRunning(self, f, *args):
        self.calls.append(f)


def root_with(child_start):
    from ilptx.tap import _Root

    exits, stderr = [], io.StringIO()
    root = _Root(FakeReactor(), exit=lambda reactor, status: exits.append(status), stderr=stderr)
    Recorder("connector", [], start=child_start).setServiceParent(root)
    return root, exits, stderr


def test_start_up_failure_is_one_line_and_exit_status_2():
    """twistd's root service: a StartupError → 'ilpconnector: start-up failed: <key>: <problem>' and exit 2."""
    root, exits, stderr = root_with(lambda: fail(StartupError("storePath", "/x is a directory")))
    root.startService()
    assert stderr.getvalue() == "ilpconnector: start-up failed: storePath: /x is a directory\n"
    assert exits == [2]


def test_an_unexpected_start_up_error_is_still_one_line():
    """A failure that is not a StartupError (a bug) is one line with its type on stderr too, and exit 2."""
    root, exits, stderr = root_with(lambda: fail(TypeError("boom")))
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        root.startService()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert stderr.getvalue() == "ilpconnector: start-up failed: TypeError: boom\n"
    assert exits == [2]
    assert any("log_failure" in e for e in logged)  # its traceback stays in the log, for a bug report


def test_start_up_cancelled_by_a_stop_reports_nothing():
    """SIGTERM during start-up (the step is cancelled) is a normal stop: no failure line, no exit status set."""
    gate = Deferred()
    root, exits, stderr = root_with(lambda: gate)
    root.startService()
    root.stopService()
    assert stderr.getvalue() == "" and exits == []


def test_exit_after_shutdown_stops_the_reactor_and_sets_the_status():
    """exit_after_shutdown registers an exit hook with the status and stops the reactor once it runs."""
    from ilptx.tap import _exit_now, exit_after_shutdown

    registered, reactor = [], FakeReactor()
    reactor.stop = object()
    exit_after_shutdown(reactor, 2, register=lambda f, *args: registered.append((f, args)))
    assert registered == [(_exit_now, (2,))]
    assert reactor.calls == [reactor.stop]


def test_admin_port_in_use_fails_start_up_naming_adminApiPort():
    """The admin API service fails to start with a StartupError naming adminApiPort when its port is taken."""
    from ilptx.tap import admin_service

    connector, _, _ = connector_with()
    config = parse_config({"ilpAddress": "test.node", "adminApi": True, "accounts": {
        "a": {"relation": "child", "plugin": "btp", "assetCode": "X", "assetScale": 0}}})
    reactor = RaisingMemoryReactor(listenException=CannotListenError("127.0.0.1", 7780,
                                                                     OSError(98, "Address already in use")))
    failure = outcome(admin_service(connector, config, reactor=reactor).startService())
    assert str(failure.value) == ("adminApiPort: Couldn't listen on 127.0.0.1:7780: "
                                  "[Errno 98] Address already in use.")


def test_twistd_plugin_version_option(capsys):
    """``twistd ilpconnector --version`` prints ilptx's version (ilptx.__version__) and exits 0."""
    import ilptx
    from ilptx.tap import Options

    with pytest.raises(SystemExit) as info:
        Options().parseOptions(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"ilptx {ilptx.__version__}\n"


def test_ilptx_command_version_option(capsys):
    """``ilptx --version`` prints ilptx's version and exits 0."""
    import ilptx
    from ilptx.cli import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"ilptx {ilptx.__version__}\n"
