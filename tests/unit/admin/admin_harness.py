"""Test harness: a connector built by the real composition root, its admin API behind
``StubTreq`` (no sockets, no global reactor)."""

from __future__ import annotations

import hashlib
import json as jsonlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ilptx.admin import AdminApi
from ilptx.codec.ilp import Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, fulfilling_handler

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FULFILLMENT = b"\x33" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()


def child(**settings):
    return {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, **settings}


def result_of(d):
    """The result of a Deferred that has fired (re-raises a failure)."""
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


@dataclass
class Reply:
    code: int
    content_type: Optional[str]
    body: bytes
    headers: Any

    @property
    def json(self):
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Node:
    """test.node with children alice (balance max 1000) and bob (owed up to 1000), served by
    an :class:`AdminApi`; ``store`` may be shared between two Nodes to test a restart."""

    def __init__(self, token=None, store=None, accounts=None, **top):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.clients: dict[str, MemoryPlugin] = {}
        self.store = store if store is not None else MemoryStore()
        if accounts is None:
            accounts = {"alice": child(balance={"maximum": "1000"}),
                        "bob": child(balance={"minimum": "-1000", "maximum": "0", "settleThreshold": "-500",
                                              "settleTo": "0"})}
        data = {"ilpAddress": "test.node", "spread": 0, "accounts": accounts, **top}
        self.config = parse_config(data)
        self.connector = build_connector(self.config, reactor=self.clock, plugin_factories={"mem": self._factory},
                                         store=self.store, custom_middleware_factories={})
        self.connector.startService()
        for client in self.clients.values():
            client.connect()
        if "bob" in self.clients:
            self.clients["bob"].register_data_handler(fulfilling_handler([FULFILLMENT], address="test.node.bob"))
        self.api = AdminApi(self.connector, token=token)
        self.http = StubTreq(self.api.resource())

    def _factory(self, options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        self.clients[account_id] = client
        return plugin

    def send(self, amount=10, destination="test.node.bob.x", data=b"", source="alice"):
        """Send a Prepare from ``source``'s client; :returns: the Fulfill or Reject."""
        expires = EPOCH + timedelta(seconds=self.clock.seconds() + 10)
        d = self.clients[source].send_data(encode_packet(Prepare(amount, expires, CONDITION, destination, data)))
        return result_of(d.addCallback(decode_response))

    def request(self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
                token: Optional[str] = None, headers: Optional[dict] = None) -> Reply:
        """One HTTP request through StubTreq (``body`` as JSON, or ``raw`` bytes)."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (jsonlib.dumps(body).encode() if body is not None else None)
        d = self.http.request(method, "http://127.0.0.1:7780" + path, data=data, headers=all_headers)
        self.http.flush()
        response = result_of(d)
        content = response.content()
        self.http.flush()
        types = response.headers.getRawHeaders("content-type")
        return Reply(response.code, types[0] if types else None, result_of(content), response.headers)
