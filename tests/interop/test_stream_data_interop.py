"""Interop: ilptx's STREAM sender sends 20 KB of data (with some money) to an ilp-protocol-stream
2.7.1 receiver through ``twistd -n ilpconnector``; the bytes arrive exactly, in order."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.sender import send_payment
from integration.procs import free_ports, start_either_connector, stop_either_connector, wait_for_port

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
DATA = bytes((i * 7 + 3) % 251 for i in range(20_000))


@pytest_twisted.inlineCallbacks
def json_line(process, key, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        for line in process.full_output().splitlines():
            if line.startswith("{") and f'"{key}"' in line:
                return json.loads(line)
        if process.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {key!r} line\n{process.output()}")
        yield deferLater(reactor, 0.05, lambda: None)


@pytest_twisted.inlineCallbacks
def test_ilptx_sender_streams_data_to_js_receiver(tmp_path, processes):
    """20,000 bytes (and 5,000 units) from our sender reach the JS receiver's stream exactly."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    shop, payer = free_ports(2)
    config = {"ilpAddress": "test.ilptx", "spread": 0, "backend": "one-to-one", "accounts": {
        name: {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": name}}}
        for name, port in (("shop", shop), ("payer", payer))}}
    connector = start_either_connector("ilptx", config, tmp_path, processes)
    wait_for_port(shop, connector)
    wait_for_port(payer, connector)
    receiver = processes.run([node, str(HERE / "stream_data_receive.js"), "--uplink", f"btp+ws://:shop@127.0.0.1:{shop}",
                              "--expect", str(len(DATA))])
    credentials = yield json_line(receiver, "destination")
    plugin = BtpPlugin({"server": f"btp+ws://:payer@127.0.0.1:{payer}"}, account_id="payer", reactor=reactor)
    try:
        yield plugin.connect()
        result = yield send_payment(plugin, credentials["destination"], base64.b64decode(credentials["secret"]),
                                    5000, clock=reactor, data=DATA)
        got = yield json_line(receiver, "sha256")
        report = f"{result}\n{receiver.output()}"
        assert got["bytes"] == len(DATA) and got["sha256"] == hashlib.sha256(DATA).hexdigest(), report
        assert result.data_sent == len(DATA) and result.delivered == 5000, report
    finally:
        yield plugin.disconnect()
    stop_either_connector("ilptx", connector)


@pytest_twisted.inlineCallbacks
def test_js_sender_streams_data_to_ilptx_receiver(tmp_path, processes):
    """20,000 bytes written by an ilp-protocol-stream sender reach our receiver's stream in order."""

    from twisted.internet.utils import getProcessOutputAndValue

    from ilptx.stream.server import StreamServer

    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    shop, payer = free_ports(2)
    config = {"ilpAddress": "test.ilptx", "spread": 0, "backend": "one-to-one", "accounts": {
        name: {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": name}}}
        for name, port in (("shop", shop), ("payer", payer))}}
    connector = start_either_connector("ilptx", config, tmp_path, processes)
    wait_for_port(shop, connector)
    wait_for_port(payer, connector)
    chunks = []
    plugin = BtpPlugin({"server": f"btp+ws://:shop@127.0.0.1:{shop}"}, account_id="shop", reactor=reactor)
    server = StreamServer(plugin, reactor)
    server.on_stream_data = lambda connection, stream_id, data: chunks.append(data)
    try:
        yield server.connect()
        credentials = server.generate_address_and_secret()
        out, err, code = yield getProcessOutputAndValue(node, [
            str(HERE / "stream_send.js"), "--uplink", f"btp+ws://:payer@127.0.0.1:{payer}",
            "--destination", credentials.destination_account,
            "--secret", base64.b64encode(credentials.shared_secret).decode(), "--amount", "3000",
            "--data-bytes", str(len(DATA))], env=dict(os.environ), path=str(HERE.parent.parent))
        assert code == 0, err.decode() + connector.output()
        received = b"".join(chunks)
        assert len(received) == len(DATA) and received == DATA
        assert server.total_received == 3000
    finally:
        yield plugin.disconnect()
    stop_either_connector("ilptx", connector)
