"""Fixtures of the ilptx-xrp-paychan tests: deterministic XRP wallets and the rippled double.

``rippled`` is one :class:`rippled_double.RippledDouble` for the whole session, listening on a
free port of 127.0.0.1 on the global reactor (pytest-twisted); ledgers close only when a test
says so (``ledger_accept``). Every test takes fresh accounts from ``new_wallet``, so tests
sharing the double never share an account.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
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
    from ilptx.testing_procs import LogLines

    with LogLines() as lines:
        yield lines


JS_DIR = Path(__file__).resolve().parent / "js"


@dataclass(frozen=True)
class Js:
    """``node``: the Node.js binary; ``modules``: ``tests/js/node_modules``."""

    node: str
    modules: Path


@pytest.fixture(scope="session")
def js_modules() -> Js:
    """Node.js and ``tests/js/node_modules``, installed with ``npm ci`` from the lockfile if missing (no Node.js or a
    failed ``npm ci`` fails the test with the reason; nothing is skipped)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the interop tests need Node.js and npm (apt-get install nodejs npm)")
    if not (JS_DIR / "node_modules" / ".package-lock.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not on PATH: needed to install tests/js (apt-get install npm)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm ci in {JS_DIR} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for package in ("ilp-plugin-xrp-paychan", "ilp-plugin-xrp-asym-server", "ilp-plugin-xrp-asym-client",
                    "ilp-protocol-stream", "xrpl"):
        if not (JS_DIR / "node_modules" / package / "package.json").exists():
            pytest.fail(f"{package} is missing from {JS_DIR}/node_modules: run npm ci there")
    return Js(node, JS_DIR / "node_modules")


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """This distribution installed by pip into a directory of its own (no dependencies: they are in this venv)."""
    from xrp_procs import PACKAGE

    from ilptx.testing_procs import install_distribution

    return install_distribution(PACKAGE, tmp_path_factory.mktemp("site"),
                                entry_point="xrp-paychan = ilptx_xrp_paychan.hooks")
