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


def test_gc_is_frozen_once_after_the_connector_started():
    """gc step: collect, freeze once, set the thresholds, only after the connector step finished."""
    fake = FakeGc()
    root = _Root(reactor=None, exit=lambda reactor, status: None)
    connector = Held("connector")
    connector.setServiceParent(root)
    gc_service((1, 2, 3), gc_module=fake).setServiceParent(root)
    root.startService()
    assert fake.calls == []  # the plugins are still connecting
    connector.started.callback(None)
    assert fake.calls == ["collect", "freeze", ("set_threshold", (1, 2, 3))]
    root.stopService()
    assert fake.calls.count("freeze") == 1


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
