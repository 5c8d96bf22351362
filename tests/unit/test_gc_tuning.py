"""The twistd root tunes CPython's collector once, after every start-up step (issue 12)."""

from __future__ import annotations

import pytest
from twisted.application.service import Service
from twisted.internet.defer import Deferred

from ilptx.errors import ConfigError
from ilptx.tap import GC_THRESHOLDS, _Root, gc_service, gc_thresholds


class FakeGc:
    """Records the calls the gc step makes."""

    def __init__(self):
        self.calls = []

    def collect(self):
        self.calls.append("collect")

    def freeze(self):
        self.calls.append("freeze")

    def set_threshold(self, *thresholds):
        self.calls.append(("set_threshold", thresholds))

    def get_freeze_count(self):
        return 1234


class Held(Service):
    """A start-up step that finishes when the test says so."""

    def __init__(self, name):
        self.setName(name)
        self.started = Deferred()

    def startService(self):
        super().startService()
        return self.started


class NotYetRunning:
    """A reactor that has not run yet: callWhenRunning keeps the calls until run()."""

    def __init__(self):
        self.waiting = []

    def callWhenRunning(self, f, *args):
        self.waiting.append((f, args))

    def run(self):
        waiting, self.waiting = self.waiting, []
        for f, args in waiting:
            f(*args)


def root_with_gc(*children):
    """:returns: (fake gc, fake reactor, the twistd root with ``children`` then the gc step)."""
    fake, reactor = FakeGc(), NotYetRunning()
    root = _Root(reactor, exit=lambda reactor, status: None)
    for child in children:
        child.setServiceParent(root)
    gc_service((1, 2, 3), reactor, gc_module=fake).setServiceParent(root)
    return fake, reactor, root


def test_gc_is_frozen_once_after_the_connector_started_and_the_reactor_runs():
    """gc step: collect, freeze once, set the thresholds, only after the connector step and once the reactor runs."""
    connector = Held("connector")
    fake, reactor, root = root_with_gc(connector)
    started = []
    root.startService().addCallback(started.append)
    connector.started.callback(None)
    assert fake.calls == [] and started == []  # twistd starts services before reactor.run()
    reactor.run()
    assert fake.calls == ["collect", "freeze", ("set_threshold", (1, 2, 3))] and started == [None]
    root.stopService()
    assert fake.calls.count("freeze") == 1


def test_without_freeze_the_gc_step_only_collects():
    """gc step on an interpreter without gc.freeze/set_threshold (PyPy): one collection, start-up finishes."""

    class PypyGc:
        def __init__(self):
            self.calls = []

        def collect(self):
            self.calls.append("collect")

    fake, reactor = PypyGc(), NotYetRunning()
    root = _Root(reactor, exit=lambda reactor, status: None)
    gc_service((1, 2, 3), reactor, gc_module=fake).setServiceParent(root)
    started = []
    root.startService().addCallback(started.append)
    reactor.run()
    assert fake.calls == ["collect"] and started == [None]


def test_gc_step_waits_for_the_connector():
    """gc step: nothing is frozen while the connector's steps (the plugins) are still starting."""
    connector = Held("connector")
    fake, reactor, root = root_with_gc(connector)
    root.startService()
    reactor.run()
    assert fake.calls == [] and reactor.waiting == []
    connector.started.callback(None)
    assert reactor.waiting  # queued for the (fake) reactor, which here has "run" already
    reactor.run()
    assert fake.calls.count("freeze") == 1


def test_stop_before_the_reactor_runs_freezes_nothing():
    """gc step: a stop (SIGTERM) before the reactor runs cancels the step; nothing is frozen later."""
    fake, reactor, root = root_with_gc()
    root.startService()
    root.stopService()
    reactor.run()
    assert fake.calls == []


def test_gc_thresholds_default_and_override():
    """ILPTX_GC_THRESHOLDS: absent → GC_THRESHOLDS; 'g0,g1,g2' → those three ints."""
    assert gc_thresholds({}) == GC_THRESHOLDS == (50_000, 20, 100)
    assert gc_thresholds({"ILPTX_GC_THRESHOLDS": "700, 10,10"}) == (700, 10, 10)


@pytest.mark.parametrize("text", ["", "1,2", "1,2,3,4", "a,b,c", "-1,2,3", "1.5,2,3"])
def test_bad_gc_thresholds_are_a_config_error_naming_the_variable(text):
    """ILPTX_GC_THRESHOLDS: anything but three integers >= 0 is a ConfigError naming the variable."""
    with pytest.raises(ConfigError) as caught:
        gc_thresholds({"ILPTX_GC_THRESHOLDS": text})
    assert str(caught.value).startswith("ILPTX_GC_THRESHOLDS: must be three integers >= 0")
