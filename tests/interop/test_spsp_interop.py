"""Interop: the JS ilp-protocol-spsp 3.0.0 client queries ilptx's SPSP server (RFC 9)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.server import Site

from ilptx.stream.spsp import SpspResponse, SpspServer

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
QUERY = """
const { query } = require('ilp-protocol-spsp')
query(process.argv[1]).then(r => {
  process.stdout.write(JSON.stringify(r) + '\\n')
}).catch(err => { process.stderr.write(String(err && err.stack) + '\\n'); process.exit(1) })
"""


@pytest_twisted.inlineCallbacks
def test_js_spsp_client_reads_our_response():
    """The JS client gets our destination_account and shared_secret and the spsp4 content type."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ilp-protocol-spsp").is_dir():
        pytest.fail("needs node and `npm ci` in tests/interop")
    secret = bytes(range(32))
    served = []

    def credentials():
        served.append(1)
        return SpspResponse("test.ilptx.shop.token123", secret)

    port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(SpspServer(credentials).resource()))
    try:
        url = f"http://127.0.0.1:{port.getHost().port}/"
        out, err, code = yield getProcessOutputAndValue(node, ["-e", QUERY, url], env=dict(os.environ),
                                                        path=str(HERE))
        assert code == 0, err.decode()
        body = json.loads(out.decode())
        assert body["destination_account"] == "test.ilptx.shop.token123"
        assert body["shared_secret"] == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        assert body["content_type"] == "application/spsp4+json" and served == [1]
    finally:
        yield port.stopListening()
