"""A real regtest Lightning network for the slow tests: bitcoind (Bitcoin Knots, unpacked by
``tools/install-regtest.sh``), ElectrumX 1.20.0 over it, and two Electrum 4.3.4 daemons (alice,
bob) with a funded, open channel; everything on 127.0.0.1 on free ports, stopped by PID.

Blocking (``subprocess``, ``urllib``): for fixtures and test set-up, never the reactor thread.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RegtestNetwork", "ElectrumNode", "Missing", "start_network", "free_port", "regtest_dir"]

INSTALL = Path(__file__).resolve().parent / "tools" / "install-regtest.sh"
RPC_USER, RPC_PASSWORD = "u", "p"


class Missing(RuntimeError):
    """A tool of the network is not installed (the message names it and the install script)."""


def regtest_dir() -> Path:
    """Where ``install-regtest.sh`` put bitcoind and ElectrumX (``$ILPTX_REGTEST_DIR`` or ~/.cache/ilptx-regtest)."""
    return Path(os.environ.get("ILPTX_REGTEST_DIR") or Path.home() / ".cache" / "ilptx-regtest")


from ilptx.testing_procs import free_port  # noqa: E402,F401  (the tests import it from here)


def _json_rpc(url: str, auth: str, method: str, params, timeout: float = 120):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json", "Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as exc:  # bitcoind answers errors with HTTP 500 and a JSON body
        answer = json.load(exc)
    if answer.get("error"):
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _wait(what: str, check, timeout: float, proc=None, log: Path = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}"
                               + (f":\n{log.read_text()[-3000:]}" if log else ""))
        try:
            result = check()
            if result:
                return result
        except (OSError, RuntimeError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout} s" + (f":\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(interval)


@dataclass
class ElectrumNode:
    """One Electrum daemon: its data ``dir``, JSON-RPC ``url`` (user/password ``u``/``p``), ``pid``,
    node id (hex) and Lightning listen port (0 if it does not listen)."""

    name: str
    dir: Path
    url: str
    pid: int = 0
    node_id: str = ""
    listen_port: int = 0
    proc: subprocess.Popen = None

    def rpc(self, method: str, **params):
        """One JSON-RPC command (named params), blocking."""
        return _json_rpc(self.url, _basic(RPC_USER, RPC_PASSWORD), method, params)

    def channel_local_msat(self) -> int:
        """What this node holds in its open channels, msat (``list_channels`` local_balance)."""
        return sum(int(c["local_balance"]) * 1000 for c in self.rpc("list_channels") if c["state"] == "OPEN")


@dataclass
class RegtestNetwork:
    """The running network; :meth:`stop` kills every process by PID."""

    work: Path
    bitcoind_url: str = ""
    procs: list = field(default_factory=list)
    alice: ElectrumNode = None
    bob: ElectrumNode = None

    def btc(self, method: str, *params):
        """One bitcoind JSON-RPC call (wallet ``w``)."""
        return _json_rpc(self.bitcoind_url, _basic(RPC_USER, RPC_PASSWORD), method, list(params))

    def mine(self, blocks: int) -> None:
        self.btc("generatetoaddress", blocks, self._miner)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def _spawn(net: RegtestNetwork, name: str, argv, env=None) -> tuple:
    log = net.work / f"{name}.log"
    proc = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)
    net.procs.append(proc)
    return proc, log


def _start_electrum(net: RegtestNetwork, name: str, electrumx_port: int, listen: bool) -> ElectrumNode:
    d = net.work / name
    (d / "regtest" / "wallets").mkdir(parents=True)
    port = free_port()
    node = ElectrumNode(name, d, f"http://127.0.0.1:{port}")
    config = {"server": f"127.0.0.1:{electrumx_port}:t", "oneserver": True, "auto_connect": False,
              "use_gossip": True,  # as Electrum's own regtest tests: no trampolines on regtest
              "lightning_to_self_delay": 144, "rpcport": port, "rpcuser": RPC_USER, "rpcpassword": RPC_PASSWORD,
              "log_to_file": False, "config_version": 3}  # 3: no upgrade step rewrites the server
    if listen:
        node.listen_port = free_port()
        config["lightning_listen"] = f"127.0.0.1:{node.listen_port}"
    (d / "regtest" / "config").write_text(json.dumps(config))
    node.proc, log = _spawn(net, f"electrum-{name}", ["electrum", "--regtest", "-D", str(d), "daemon"])
    node.pid = node.proc.pid
    node._log = log
    return node


def start_network(work: Path) -> RegtestNetwork:
    """Bring the network up in ``work`` (an empty folder) and return it; on any failure stop what
    started and raise (:class:`Missing` for a tool that is not installed)."""
    base = regtest_dir()
    bitcoind = base / "bitcoin" / "bitcoind"
    electrumx = base / "electrumx-venv" / "bin" / "electrumx_server"
    for tool, path in (("bitcoind", bitcoind), ("electrumx_server", electrumx)):
        if not os.access(path, os.X_OK):
            raise Missing(f"{tool} is not installed at {path}: run {INSTALL} (as root, on Debian 12)")
    if shutil.which("electrum") is None:
        raise Missing(f"electrum is not on PATH: run {INSTALL} (apt-get install electrum)")
    net = RegtestNetwork(work)
    try:
        _bring_up(net, bitcoind, electrumx)
    except BaseException:
        net.stop()
        raise
    return net


def _bring_up(net: RegtestNetwork, bitcoind: Path, electrumx: Path) -> None:
    work = net.work
    rpc_port = free_port()
    (work / "bitcoin").mkdir()
    (work / "bitcoin" / "bitcoin.conf").write_text(
        "regtest=1\nserver=1\ntxindex=1\nfallbackfee=0.0002\n[regtest]\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\n"
        f"rpcport={rpc_port}\nrpcuser={RPC_USER}\nrpcpassword={RPC_PASSWORD}\nlisten=0\ndnsseed=0\n")
    proc, log = _spawn(net, "bitcoind", [str(bitcoind), f"-datadir={work / 'bitcoin'}"])
    net.bitcoind_url = f"http://127.0.0.1:{rpc_port}/"
    _wait("bitcoind", lambda: net.btc("getblockcount") is not None, 60, proc, log)
    net.btc("createwallet", "w")
    net.bitcoind_url += "wallet/w"
    net._miner = net.btc("getnewaddress")
    net.mine(101)

    ex_port, ex_rpc = free_port(), free_port()
    (work / "electrumx").mkdir()
    env = dict(os.environ, COIN="Bitcoin", NET="regtest", DB_ENGINE="leveldb", DB_DIRECTORY=str(work / "electrumx"),
               DAEMON_URL=f"http://{RPC_USER}:{RPC_PASSWORD}@127.0.0.1:{rpc_port}/",
               SERVICES=f"tcp://127.0.0.1:{ex_port},rpc://127.0.0.1:{ex_rpc}", PEER_DISCOVERY="off",
               PEER_ANNOUNCE="", ALLOW_ROOT="1")
    proc, log = _spawn(net, "electrumx", [str(electrumx)], env=env)
    _wait("ElectrumX", lambda: socket.create_connection(("127.0.0.1", ex_port), timeout=1).close() or True,
          60, proc, log)

    net.alice = _start_electrum(net, "alice", ex_port, listen=False)
    net.bob = _start_electrum(net, "bob", ex_port, listen=True)
    for node in (net.alice, net.bob):
        _wait(f"Electrum {node.name}", lambda n=node: n.rpc("version"), 60, node.proc, node._log)
        node.rpc("create", wallet_path=str(node.dir / "regtest" / "wallets" / "default_wallet"))
        node.rpc("load_wallet")
        node.node_id = str(node.rpc("nodeid")).split("@")[0]
    address = net.alice.rpc("getunusedaddress")
    net.btc("sendtoaddress", address, 1)
    net.mine(1)
    _wait("alice's funds", lambda: float(net.alice.rpc("getbalance").get("confirmed", 0)) >= 1, 60)
    # capacity 0.01 BTC, half pushed to bob: each side can pay the other ~500,000 sat
    net.alice.rpc("open_channel", connection_string=f"{net.bob.node_id}@127.0.0.1:{net.bob.listen_port}",
                  amount="0.01", push_amount="0.005")
    net.mine(6)

    def both_open():
        return all(any(c["state"] == "OPEN" for c in n.rpc("list_channels")) for n in (net.alice, net.bob))

    def open_now():
        if both_open():
            return True
        net.mine(1)  # Electrum may want to see one more block after its funding tx was seen
        return False

    _wait("the alice-bob channel", open_now, 120, interval=0.5)
