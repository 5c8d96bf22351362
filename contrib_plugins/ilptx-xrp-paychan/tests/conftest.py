"""Fixtures of the ilptx-xrp-paychan tests: deterministic XRP wallets and the rippled double.

``rippled`` is one :class:`rippled_double.RippledDouble` for the whole session, listening on a
free port of 127.0.0.1 on the global reactor (pytest-twisted); ledgers close only when a test
says so (``ledger_accept``). Every test takes fresh accounts from ``new_wallet``, so tests
sharing the double never share an account.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet import reactor
from xrpl import CryptoAlgorithm
from xrpl.core import keypairs
from xrpl.wallet import Wallet

from rippled_double import Ledger, RippledDouble

_SEEDS = itertools.count(1)


def make_wallet(algorithm: CryptoAlgorithm = CryptoAlgorithm.ED25519) -> Wallet:
    """A wallet from a fixed, counted entropy (reproducible runs, distinct accounts)."""
    entropy = next(_SEEDS).to_bytes(16, "big").hex()
    return Wallet.from_seed(keypairs.generate_seed(entropy, algorithm))


@dataclass
class Rippled:
    """The running double: ``url`` (``ws://127.0.0.1:<port>``), ``server`` (the factory), ``ledger``."""

    url: str
    server: RippledDouble
    port: Any

    @property
    def ledger(self) -> Ledger:
        return self.server.ledger

    def funded(self, drops: int = 100_000_000, algorithm: CryptoAlgorithm = CryptoAlgorithm.ED25519) -> Wallet:
        """A new wallet holding ``drops``, validated (a ledger is closed)."""
        wallet = make_wallet(algorithm)
        self.ledger.fund(wallet.classic_address, drops)
        self.server.ledger_accept()
        return wallet


def start_double(port: int = 0) -> Rippled:
    """A double listening on 127.0.0.1 (``port`` 0: a free one)."""
    server = RippledDouble(Ledger(reactor.seconds), reactor)
    listening = reactor.listenTCP(port, server, interface="127.0.0.1")
    return Rippled(f"ws://127.0.0.1:{listening.getHost().port}", server, listening)


@pytest.fixture(scope="session")
def rippled():
    """The session's rippled double (stopped at the end)."""
    double = start_double()
    yield double
    double.server.drop_clients()
    double.port.stopListening()


@pytest.fixture
def new_wallet():
    """``new_wallet(algorithm=ED25519)``: an unfunded wallet nobody else uses."""
    return make_wallet


@pytest.fixture
def warnings():
    """Formatted log lines of level warn or above, while the test runs."""
    from twisted.logger import formatEvent, globalLogPublisher

    lines: list = []

    def observe(event):
        if event.get("log_level") is not None and event["log_level"].name in ("warn", "error", "critical"):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)
