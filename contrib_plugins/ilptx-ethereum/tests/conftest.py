"""Fixtures of the ilptx-ethereum tests: the npm packages of ``tests/js`` and a real EVM.

``installed`` pip-installs this distribution into a directory of its own (the twistd tests put
it on ``PYTHONPATH``). ``js_modules`` makes sure ``tests/js/node_modules`` is there, running ``npm ci`` from the
committed lockfile once when it is not (nothing is skipped: no Node.js, or a failed
``npm ci``, fails the test with the reason). ``ganache`` starts ganache 7.9.2 from it on
127.0.0.1 (a free port, deterministic wallet, chainId = networkId = 1337), deploys machinomy
``Unidirectional`` from ``ilp-plugin-ethereum``'s ``build/abi/Unidirectional-testnet.json``
and stops it by PID at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ilptx.testing_procs import install_distribution

JS_DIR = Path(__file__).resolve().parent / "js"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHAIN_ID = 1337
GANACHE_CLI = JS_DIR / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
PACKAGE = Path(__file__).resolve().parents[1]
CONTRACT_JSON = JS_DIR / "node_modules" / "ilp-plugin-ethereum" / "build" / "abi" / "Unidirectional-testnet.json"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not on PATH: the ilptx-ethereum tests need Node.js and npm "
                    "(apt-get install nodejs npm)")
    return path


@dataclass(frozen=True)
class Js:
    """``node``: the Node.js binary; ``modules``: ``tests/js/node_modules``."""

    node: str
    modules: Path


@pytest.fixture(scope="session")
def js_modules() -> Js:
    """Node.js and ``tests/js/node_modules``, installed with ``npm ci`` from the lockfile if missing."""
    node = _need("node")
    if not (JS_DIR / "node_modules" / ".package-lock.json").exists():
        npm = _need("npm")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm ci in {JS_DIR} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for needed in (GANACHE_CLI, CONTRACT_JSON):
        if not needed.exists():
            pytest.fail(f"{needed} is missing although node_modules is installed: run npm ci in {JS_DIR}")
    return Js(node, JS_DIR / "node_modules")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        answer = json.load(resp)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


@dataclass
class Ganache:
    """A running ganache: ``url``, ``pid``, the funded ``keys`` (9 of them, ``0x`` hex, 1000 ETH each) and the
    deployed ``contract_address``."""

    url: str
    pid: int
    keys: list
    contract_address: str

    def mine(self, blocks: int) -> None:
        """Mine ``blocks`` empty blocks (``evm_mine``)."""
        for _ in range(blocks):
            _rpc(self.url, "evm_mine", [])

    def rpc(self, method: str, params: list) -> object:
        """One JSON-RPC call (blocking; for test set-up only)."""
        return _rpc(self.url, method, params)

    def balance(self, address: str) -> int:
        """The wei balance of ``address`` at the latest block, straight from the node."""
        return int(self.rpc("eth_getBalance", [address, "latest"]), 16)

    def last_tx_fee(self, address: str) -> tuple:
        """``(tx hash, gasUsed × effectiveGasPrice)`` of the latest transaction ``address`` sent (from its receipt)."""
        block = self.rpc("eth_getBlockByNumber", ["latest", True])
        while block is not None:
            for tx in block["transactions"]:
                if tx["from"].lower() == address.lower():
                    receipt = self.rpc("eth_getTransactionReceipt", [tx["hash"]])
                    return tx["hash"], int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
            block = self.rpc("eth_getBlockByHash", [block["parentHash"], True])
        raise AssertionError(f"no transaction from {address}")

    def fees_since(self, address: str, block: int) -> int:
        """Wei ``address`` paid in gas (``gasUsed × effectiveGasPrice`` of each receipt) for every
        transaction it sent in the blocks after ``block``."""
        fees, latest = 0, int(self.rpc("eth_blockNumber", []), 16)
        for number in range(block + 1, latest + 1):
            for tx in self.rpc("eth_getBlockByNumber", [hex(number), True])["transactions"]:
                if tx["from"].lower() == address.lower():
                    receipt = self.rpc("eth_getTransactionReceipt", [tx["hash"]])
                    fees += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        return fees

    def block_number(self) -> int:
        """The latest block's number."""
        return int(self.rpc("eth_blockNumber", []), 16)


@pytest.fixture(scope="session")
def ganache(js_modules: Js):
    """A ganache 7.9.2 node with ``Unidirectional`` deployed (session-wide; one per run)."""
    from eth_account import Account
    from web3 import Web3

    port = _free_port()
    work = tempfile.mkdtemp(prefix="ilptx-ethereum-ganache-")
    keys_path = os.path.join(work, "keys.json")
    log = open(os.path.join(work, "ganache.log"), "wb")
    proc = subprocess.Popen(
        [js_modules.node, str(GANACHE_CLI), "--server.host", "127.0.0.1", "--server.port", str(port),
         "--wallet.deterministic", "--wallet.totalAccounts", "9", "--wallet.accountKeysPath", keys_path,
         "--chain.chainId", str(CHAIN_ID), "--chain.networkId", str(CHAIN_ID)],
        stdout=log, stderr=subprocess.STDOUT, cwd=JS_DIR)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ganache exited with {proc.returncode}: {open(log.name).read()}")
            try:
                assert int(_rpc(url, "eth_chainId", []), 16) == CHAIN_ID
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"ganache did not answer on {url} within 60 s: {open(log.name).read()}")
                time.sleep(0.1)
        with open(keys_path) as f:
            keys = list(json.load(f)["private_keys"].values())
        deployer = Account.from_key(keys[0])
        w3 = Web3(Web3.HTTPProvider(url))
        tx = {"from": deployer.address, "data": json.loads(CONTRACT_JSON.read_text())["bytecode"], "value": 0,
              "nonce": w3.eth.get_transaction_count(deployer.address), "gasPrice": w3.eth.gas_price,
              "chainId": CHAIN_ID}
        tx["gas"] = w3.eth.estimate_gas(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction))
        assert receipt["status"] == 1 and receipt["contractAddress"], receipt
        yield Ganache(url, proc.pid, keys, receipt["contractAddress"])
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """This distribution installed by pip into a directory of its own (no dependencies: they are in this venv)."""
    return install_distribution(PACKAGE, tmp_path_factory.mktemp("site"), entry_point="ethereum = ilptx_ethereum.hooks")
