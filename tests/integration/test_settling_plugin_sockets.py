"""The settling-plugin framework over real WebSockets on 127.0.0.1 (real reactor, pytest-twisted), each side on
its own SQLite file: claims flow as BTP sub-protocol MESSAGEs, and both sides restarted on new store objects over
the same files pay a queued payout once and credit a replayed claim nothing."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import gatherResults

from ilptx.codec.btp import CONTENT_JSON
from ilptx.errors import PeerUnreachableError
from ilptx.settlement.plugin import settling_plugin_factory
from ilptx.stores.sqlite import SqliteStore
from ilptx.testing import FakeLedger, plugin_services

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "settlement"))
from ed25519_channel import module_factory  # noqa: E402  (the reference module of the unit tests)

pytestmark = pytest.mark.integration

SEEDS = {"payer": "11" * 32, "payee": "22" * 32}
TIMEOUT = 15  # seconds; only ever reached when something is broken


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest_twisted.inlineCallbacks
def until(predicate):
    for _ in range(TIMEOUT * 20):
        if predicate():
            return
        yield task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("timed out waiting for the condition")


class Side:
    """One settling plugin on the real reactor over a SQLite file; start() makes a new store object and plugin."""

    def __init__(self, name: str, factory, options: dict, path: Path) -> None:
        self.name, self.factory, self.options, self.path = name, factory, options, path
        self.credited: list = []
        self.plugin = self.store = None

    @pytest_twisted.inlineCallbacks
    def start(self):
        self.credited = []  # what this process's plugin credits
        self.store = SqliteStore(str(self.path), reactor=reactor)
        yield self.store.open()
        self.plugin = self.factory({**self.options, "seed": SEEDS[self.name]}, account_id=self.name,
                                   services=plugin_services(reactor, account_id=self.name, store=self.store))
        self.plugin.register_money_handler(self.credited.append)
        self.plugin.register_data_handler(lambda data: b"")
        yield self.plugin.connect()

    @pytest_twisted.inlineCallbacks
    def stop(self):
        yield self.plugin.disconnect()
        yield self.store.close()


@pytest_twisted.inlineCallbacks
def test_claims_over_real_sockets_and_restarts_on_sqlite(tmp_path):
    """Three payouts credited exactly; a payout queued while the payee is away is paid once after both restart."""
    ledger = FakeLedger()
    for seed in SEEDS.values():
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        ledger.fund(FakeLedger.address_of(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))), 10 ** 18)
    factory = settling_plugin_factory(module_factory(ledger))
    port = free_port()
    payer = Side("payer", factory, {"listener": {"port": port, "host": "127.0.0.1", "secret": "s"}},
                 tmp_path / "payer.sqlite")
    payee = Side("payee", factory, {"server": f"btp+ws://payee:s@127.0.0.1:{port}/"}, tmp_path / "payee.sqlite")
    try:
        yield payer.start()
        yield payee.start()
        yield until(lambda: payer.plugin.is_connected() and payee.plugin.module.peer_address is not None)
        for amount in (1000, 2000, 3):
            yield payer.plugin.send_money(amount).addTimeout(TIMEOUT, reactor)
        assert payee.credited == [1000, 2000, 3]
        channel_id = payer.plugin.module.channel_id
        last_claim = (yield payer.plugin.settlement.best_outgoing_claim()).data

        yield payee.stop()
        with pytest.raises(PeerUnreachableError):
            yield payer.plugin.send_money(500, "owed").addTimeout(TIMEOUT, reactor)
        yield payer.stop()

        yield payer.start()
        yield payee.start()
        yield until(lambda: payee.credited == [500])
        assert (yield payer.plugin.send_money(500, "owed")) is None
        replay = yield payer.plugin.settlement.call_peer("claim", last_claim.encode(), CONTENT_JSON)
        assert replay == () and payee.credited == [500]
        best = yield payee.plugin.settlement.best_incoming_claim()
        assert best.value == 3503 * 10 ** 3 and json.loads(best.data)["channelId"] == channel_id
    finally:
        yield gatherResults([side.stop() for side in (payer, payee) if side.plugin is not None], consumeErrors=True)
