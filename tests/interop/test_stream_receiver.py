"""Interop: an ilp-protocol-stream 2.7.1 sender pays ilptx's STREAM receiver through
``twistd -n ilpconnector`` and through the reference ilp-connector 23.0.2; the exact amount arrives."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.server import StreamServer
from integration.procs import REPO, free_ports, start_either_connector, stop_either_connector, wait_for_port

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
AMOUNT = 1_000_000


@pytest.mark.parametrize("through", ["ilptx", "reference"])
@pytest_twisted.inlineCallbacks
def test_js_sender_pays_ilptx_receiver(tmp_path, processes, through):
    """The JS sender's 1,000,000 arrive at our receiver exactly, stream by stream."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    shop_port, payer_port = free_ports(2)
    config = {"ilpAddress": "test.ilptx", "spread": 0, "accounts": {
        name: {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": f"{name}_secret"}}}
        for name, port in (("shop", shop_port), ("payer", payer_port))}}
    connector = start_either_connector(through, {**config, "backend": "one-to-one"}, tmp_path, processes)
    wait_for_port(shop_port, connector)
    wait_for_port(payer_port, connector)

    received = []
    plugin = BtpPlugin({"server": f"btp+ws://:shop_secret@127.0.0.1:{shop_port}"}, account_id="shop", reactor=reactor)
    server = StreamServer(plugin, reactor, on_money=lambda conn, stream_id, amount: received.append(amount))
    try:
        yield server.connect()
        assert server.address == "test.ilptx.shop"
        credentials = server.generate_address_and_secret()
        out, err, code = yield getProcessOutputAndValue(node, [
            str(HERE / "stream_send.js"), "--uplink", f"btp+ws://:payer_secret@127.0.0.1:{payer_port}",
            "--destination", credentials.destination_account,
            "--secret", base64.b64encode(credentials.shared_secret).decode(), "--amount", str(AMOUNT)],
            env=dict(os.environ), path=str(REPO))
        report = f"exit {code}\nstdout: {out.decode()}\nstderr: {err.decode()}\n{connector.output()}"
        assert code == 0, report
        assert json.loads(out.decode().strip().splitlines()[-1])["sent"] == str(AMOUNT), report
        assert server.total_received == AMOUNT and sum(received) == AMOUNT, report
        (connection,) = server.connections.values()
        assert connection.source_address == "test.ilptx.payer"  # from the sender's ConnectionNewAddress
    finally:
        yield plugin.disconnect()
    stop_either_connector(through, connector)
