"""Interop: ilptx's STREAM sender pays an ilp-protocol-stream 2.7.1 receiver through
``twistd -n ilpconnector`` and through the reference ilp-connector 23.0.2; the exact amount arrives."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ilptx.plugins.btp import BtpPlugin
from ilptx.stream.sender import PaymentResult, send_payment
from integration.procs import free_ports, start_either_connector, stop_either_connector, wait_for_port

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
AMOUNT = 1_000_000


def _json_line(process, key):
    """:returns: the first JSON object line holding ``key`` that ``process`` printed, or None."""
    for line in process.full_output().splitlines():
        if line.startswith("{") and f'"{key}"' in line:
            return json.loads(line)
    return None


@pytest_twisted.inlineCallbacks
def _wait_for_line(process, key, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = _json_line(process, key)
        if found is not None:
            return found
        if process.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {key!r} line from the JS receiver\n{process.output()}")
        yield deferLater(reactor, 0.05, lambda: None)


@pytest.mark.parametrize("through", ["ilptx", "reference"])
@pytest_twisted.inlineCallbacks
def test_ilptx_sender_pays_js_receiver(tmp_path, processes, through):
    """Our sender's 1,000,000 arrive at the JS receiver exactly."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ilp-protocol-stream").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    shop_port, payer_port = free_ports(2)
    config = {"ilpAddress": "test.ilptx", "spread": 0, "accounts": {
        # maxPacketAmount: the payment takes 10 packets, so the JS receiver probes the exchange
        # rate back to us meanwhile (and closes the connection unless we answer)
        name: {"relation": "child", "plugin": "ilp-plugin-btp", "assetCode": "USD", "assetScale": 9,
               "maxPacketAmount": "100000",
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": f"{name}_secret"}}}
        for name, port in (("shop", shop_port), ("payer", payer_port))}}
    connector = start_either_connector(through, {**config, "backend": "one-to-one"}, tmp_path, processes)
    wait_for_port(shop_port, connector)
    wait_for_port(payer_port, connector)

    receiver = processes.run([node, str(HERE / "stream_receive.js"),
                              "--uplink", f"btp+ws://:shop_secret@127.0.0.1:{shop_port}",
                              "--expect", str(AMOUNT), "--timeout", "60000"])
    credentials = yield _wait_for_line(receiver, "destination")
    assert credentials["destination"].startswith("test.ilptx.shop."), receiver.output()

    plugin = BtpPlugin({"server": f"btp+ws://:payer_secret@127.0.0.1:{payer_port}"}, account_id="payer",
                       reactor=reactor)
    try:
        yield plugin.connect()
        result = yield send_payment(plugin, credentials["destination"], base64.b64decode(credentials["secret"]),
                                    AMOUNT, clock=reactor)
        report = f"{result}\n{receiver.output()}\n{connector.output()}"
        assert isinstance(result, PaymentResult), report
        assert result.source_address == "test.ilptx.payer", report
        assert (result.sent, result.delivered) == (AMOUNT, AMOUNT), report
        assert result.exchange_rate == 1, report
        received = yield _wait_for_line(receiver, "received")
        assert received["received"] == str(AMOUNT), report
    finally:
        yield plugin.disconnect()
    assert receiver.proc.wait(10) == 0, receiver.output()
    stop_either_connector(through, connector)
