"""Three ilptx connectors in a line over real BTP (loopback): A – B – C, routes by CCP.

A client of A pays a client of C; when the B–C link drops, A's route to C is withdrawn
(A answers F02 at once instead of timing out); when the link returns, payments flow again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler

pytestmark = pytest.mark.integration

FULFILLMENT = b"\x66" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def soon(seconds=10):
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def sleep(seconds):
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@pytest_twisted.inlineCallbacks
def wait_until(condition, timeout=10.0):
    """Poll ``condition()`` on the reactor (bounded); fail with the timeout."""
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        yield sleep(0.05)
        waited += 0.05


def listener(secret, **extra):
    return {"listener": {"host": "127.0.0.1", "port": 0, "secret": secret}, **extra}


def account(relation, options):
    return {"relation": relation, "plugin": "btp", "assetCode": "USD", "assetScale": 9, "options": options}


@pytest_twisted.inlineCallbacks
def test_line_payment_withdrawal_and_recovery():
    """A–B–C: alice (A) pays carol (C); B–C drops → A gets F02 quickly; B–C returns → payments flow."""
    started, clients = [], []
    try:
        b = build_connector(parse_config({"ilpAddress": "test.b", "spread": 0, "accounts": {
            "a": account("peer", listener("ab")), "c": account("peer", listener("bc"))}}), reactor=reactor)
        b.startService()
        started.append(b)
        yield b.ready
        a = build_connector(parse_config({"ilpAddress": "test.a", "spread": 0, "accounts": {
            "b": account("peer", {"server": f"btp+ws://a:ab@127.0.0.1:{b.accounts.get('a').plugin.port}"}),
            "alice": account("child", listener("alice"))}}), reactor=reactor)
        c = build_connector(parse_config({"ilpAddress": "test.c", "spread": 0, "accounts": {
            "b": account("peer", {"server": f"btp+ws://c:bc@127.0.0.1:{b.accounts.get('c').plugin.port}"}),
            "carol": account("child", listener("carol"))}}), reactor=reactor)
        for connector in (a, c):
            connector.startService()
            started.append(connector)
            yield connector.ready

        carol = BtpPlugin({"server": f"btp+ws://:carol@127.0.0.1:{c.accounts.get('carol').plugin.port}"},
                          account_id="carol-client", reactor=reactor)
        handler = fulfilling_handler([FULFILLMENT], address="test.c.carol")
        carol.register_data_handler(handler)
        alice = BtpPlugin({"server": f"btp+ws://:alice@127.0.0.1:{a.accounts.get('alice').plugin.port}"},
                          account_id="alice-client", reactor=reactor)
        clients += [carol, alice]
        yield carol.connect()
        yield alice.connect()

        yield wait_until(lambda: a.routing_table.resolve("test.c.carol") == "b")
        assert a.switch.route_manager.best["test.c"].path == ("test.b", "test.c")
        result = decode_response((yield alice.send_data(encode_packet(
            Prepare(100, soon(), CONDITION, "test.c.carol.1", b"")))))
        assert result == Fulfill(FULFILLMENT, b"")

        # the B–C link drops: C's client plugin goes away
        yield c.accounts.get("b").plugin.disconnect()
        yield wait_until(lambda: a.routing_table.resolve("test.c.carol") is None, timeout=5.0)
        before = reactor.seconds()
        reject = decode_response((yield alice.send_data(encode_packet(
            Prepare(100, soon(), CONDITION, "test.c.carol.2", b"")))))
        assert isinstance(reject, Reject) and reject.code == "F02" and reject.triggered_by == "test.a"
        assert reactor.seconds() - before < 1.0  # answered at once, not at the expiry

        # the link returns
        yield c.accounts.get("b").plugin.connect()
        yield wait_until(lambda: a.routing_table.resolve("test.c.carol") == "b")
        result = decode_response((yield alice.send_data(encode_packet(
            Prepare(100, soon(), CONDITION, "test.c.carol.3", b"")))))
        assert result == Fulfill(FULFILLMENT, b"")
        assert [p.destination for p in handler.received] == ["test.c.carol.1", "test.c.carol.3"]
    finally:
        for plugin in clients:
            yield plugin.disconnect()
        for connector in reversed(started):
            yield connector.stopService()


@pytest_twisted.inlineCallbacks
def test_triangle_picks_the_shorter_path_and_falls_back():
    """A–B, B–C, A–C over BTP: A reaches C directly; without A–C it goes through B, and payments still arrive."""
    started, clients = [], []
    try:
        c = build_connector(parse_config({"ilpAddress": "test.c", "spread": 0, "accounts": {
            "a": account("peer", listener("ac")), "b": account("peer", listener("bc")),
            "carol": account("child", listener("carol"))}}), reactor=reactor)
        c.startService()
        started.append(c)
        yield c.ready
        b = build_connector(parse_config({"ilpAddress": "test.b", "spread": 0, "accounts": {
            "c": account("peer", {"server": f"btp+ws://b:bc@127.0.0.1:{c.accounts.get('b').plugin.port}"}),
            "a": account("peer", listener("ab"))}}), reactor=reactor)
        b.startService()
        started.append(b)
        yield b.ready
        a = build_connector(parse_config({"ilpAddress": "test.a", "spread": 0, "accounts": {
            "b": account("peer", {"server": f"btp+ws://a:ab@127.0.0.1:{b.accounts.get('a').plugin.port}"}),
            "c": account("peer", {"server": f"btp+ws://a:ac@127.0.0.1:{c.accounts.get('a').plugin.port}"}),
            "alice": account("child", listener("alice"))}}), reactor=reactor)
        a.startService()
        started.append(a)
        yield a.ready

        carol = BtpPlugin({"server": f"btp+ws://:carol@127.0.0.1:{c.accounts.get('carol').plugin.port}"},
                          account_id="carol-client", reactor=reactor)
        handler = fulfilling_handler([FULFILLMENT], address="test.c.carol")
        carol.register_data_handler(handler)
        alice = BtpPlugin({"server": f"btp+ws://:alice@127.0.0.1:{a.accounts.get('alice').plugin.port}"},
                          account_id="alice-client", reactor=reactor)
        clients += [carol, alice]
        yield carol.connect()
        yield alice.connect()

        manager = a.switch.route_manager
        yield wait_until(lambda: "test.c" in manager.best and manager.best["test.c"].next_hop == "c")
        assert manager.best["test.c"].path == ("test.c",)
        yield a.accounts.get("c").plugin.disconnect()
        yield wait_until(lambda: "test.c" in manager.best and manager.best["test.c"].next_hop == "b")
        assert manager.best["test.c"].path == ("test.b", "test.c")
        result = decode_response((yield alice.send_data(encode_packet(
            Prepare(100, soon(), CONDITION, "test.c.carol.via-b", b"")))))
        assert result == Fulfill(FULFILLMENT, b"")
    finally:
        for plugin in clients:
            yield plugin.disconnect()
        for connector in reversed(started):
            yield connector.stopService()
