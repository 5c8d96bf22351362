"""Prometheus metrics: the reference's names and labels, exact values, counters of money totals.

Packets are driven through a connector built by the real composition root
(:func:`ilptx.node.build_connector`) with in-memory plugins, a MemoryStore and a fake clock;
the assertions read the text exposition, as a Prometheus server would.
"""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timedelta, timezone

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ilptx.codec.ilp import Fulfill, Prepare, decode_response, encode_packet
from ilptx.config import parse_config
from ilptx.core.accounts import Account
from ilptx.interfaces import IStats
from ilptx.metrics import CONTENT_TYPE, PrometheusStats, exposition
from ilptx.node import build_connector
from ilptx.stores.memory import MemoryStore
from ilptx.testing import MemoryPlugin, fulfilling_handler

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FULFILLMENT = b"\x22" * 32
CONDITION = hashlib.sha256(FULFILLMENT).digest()

NAMES = [
    "ilp_connector_incoming_ilp_packets", "ilp_connector_incoming_ilp_packet_value",
    "ilp_connector_outgoing_ilp_packets", "ilp_connector_outgoing_ilp_packet_value",
    "ilp_connector_incoming_money", "ilp_connector_outgoing_money",
    "ilp_connector_rate_limited_ilp_packets", "ilp_connector_rate_limited_money",
    "ilp_connector_balance",
]


def child(**settings):
    return {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9, **settings}


class Net:
    """test.node with children alice and bob; bob's client fulfills CONDITION."""

    def __init__(self, alice=None, bob=None, **top):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.clients: dict[str, MemoryPlugin] = {}
        self.store = MemoryStore()
        data = {"ilpAddress": "test.node", "spread": 0,
                "accounts": {"alice": child(**(alice or {})), "bob": child(**(bob or {}))}, **top}
        self.connector = build_connector(parse_config(data), reactor=self.clock, plugin_factories={"mem": self._factory},
                                         store=self.store, custom_middleware_factories={})
        self.connector.startService()
        for client in self.clients.values():
            client.connect()
        self.clients["bob"].register_data_handler(fulfilling_handler([FULFILLMENT], address="test.node.bob"))

    def _factory(self, options, *, account_id, services):
        plugin, client = MemoryPlugin(account_id), MemoryPlugin(account_id + "-client")
        plugin.peer, client.peer = client, plugin
        self.clients[account_id] = client
        return plugin

    def send(self, amount=10, destination="test.node.bob.x", condition=CONDITION, data=b""):
        expires = EPOCH + timedelta(seconds=self.clock.seconds() + 10)
        out = []
        self.clients["alice"].send_data(encode_packet(Prepare(amount, expires, condition, destination, data))
                                        ).addCallback(decode_response).addCallback(out.append)
        return out[0]

    def text(self) -> str:
        return exposition(self.connector.stats.registry).decode("utf-8")


def samples(text: str) -> dict[str, str]:
    """``{'name{labels}': 'value'}`` for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = value
    return out


def test_prometheus_stats_provides_istats_and_is_the_default():
    """PrometheusStats provides IStats and build_connector uses it when no stats are given."""
    verifyObject(IStats, PrometheusStats())
    assert isinstance(Net().connector.stats, PrometheusStats)


def test_families_are_exposed_under_the_reference_names_without_total():
    """Every reference family is announced with HELP/TYPE under its exact name; no _total anywhere."""
    text = Net().text()
    for name in NAMES:
        kind = "gauge" if name == "ilp_connector_balance" else "counter"
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text
    assert "_total" not in text
    assert "# HELP ilp_connector_incoming_ilp_packets Total number of incoming ILP packets\n" in text


def test_packets_counted_with_result_code_and_account_labels():
    """Fulfilled, rejected and failed packets: counts and values per (result, code, account, asset, scale)."""
    net = Net()
    assert isinstance(net.send(amount=10, data=b"1"), Fulfill)
    assert isinstance(net.send(amount=15, data=b"2"), Fulfill)
    assert net.send(amount=7, destination="test.elsewhere").code == "F02"
    assert net.send(amount=3, condition=b"\x00" * 32).code == "F05"
    got = samples(net.text())
    alice, bob = 'account="alice",asset="USD",scale="9"', 'account="bob",asset="USD",scale="9"'
    assert got[f'ilp_connector_incoming_ilp_packets{{result="fulfilled",{alice}}}'] == "2"
    assert got[f'ilp_connector_incoming_ilp_packet_value{{result="fulfilled",{alice}}}'] == "25"
    # our own F02 was raised inside the pipeline: "failed" (as the reference counts a thrown error)
    assert got[f'ilp_connector_incoming_ilp_packets{{result="failed",code="F02",{alice}}}'] == "1"
    assert got[f'ilp_connector_incoming_ilp_packet_value{{result="failed",code="F02",{alice}}}'] == "7"
    assert got[f'ilp_connector_incoming_ilp_packets{{result="rejected",code="F05",{alice}}}'] == "1"
    assert got[f'ilp_connector_outgoing_ilp_packets{{result="fulfilled",{bob}}}'] == "2"
    assert got[f'ilp_connector_outgoing_ilp_packet_value{{result="fulfilled",{bob}}}'] == "25"
    assert got[f'ilp_connector_outgoing_ilp_packets{{result="rejected",code="F05",{bob}}}'] == "1"


def test_money_metrics_are_counters_of_the_total():
    """Settlements sent and received add up (the reference's gauges kept only the last amount)."""
    bob_balance = {"balance": {"minimum": "-1000", "maximum": "0", "settleThreshold": "-50", "settleTo": "0"}}
    net = Net(alice={"balance": {"maximum": "1000"}}, bob=bob_balance)
    for i in range(2):
        assert isinstance(net.send(amount=60, data=bytes([i])), Fulfill)  # each one settles 60 with bob
    net.clients["alice"].send_money(30)
    net.clients["alice"].send_money(12)
    got = samples(net.text())
    assert got['ilp_connector_outgoing_money{result="succeeded",account="bob",asset="USD",scale="9"}'] == "120"
    assert got['ilp_connector_incoming_money{result="succeeded",account="alice",asset="USD",scale="9"}'] == "42"


def test_balance_gauge_follows_committed_balances():
    """ilp_connector_balance is the account's balance after each commit, negative when we owe."""
    net = Net(alice={"balance": {"maximum": "1000"}}, bob={"balance": {"minimum": "-1000", "maximum": "0"}})
    assert isinstance(net.send(amount=40), Fulfill)
    got = samples(net.text())
    assert got['ilp_connector_balance{account="alice",asset="USD",scale="9"}'] == "40"
    assert got['ilp_connector_balance{account="bob",asset="USD",scale="9"}'] == "-40"


def test_rate_limited_packets_counted():
    """A T05 from rateLimit counts in ilp_connector_rate_limited_ilp_packets (account labels only)."""
    net = Net(alice={"rateLimit": {"capacity": 1, "refillCount": 1, "refillPeriod": 60000}})
    assert isinstance(net.send(data=b"1"), Fulfill)
    assert net.send(data=b"2").code == "T05"
    got = samples(net.text())
    assert got['ilp_connector_rate_limited_ilp_packets{account="alice",asset="USD",scale="9"}'] == "1"


def test_rate_limited_money_and_label_escaping():
    """rate_limited_money counts; label values are escaped per the text format."""
    stats = PrometheusStats()
    odd = Account('we"ird\\id', "peer", "X\nY", 2)
    stats.rate_limited_money(odd)
    stats.rate_limited_money(odd)
    text = exposition(stats.registry).decode()
    assert 'ilp_connector_rate_limited_money{account="we\\"ird\\\\id",asset="X\\nY",scale="2"} 2\n' in text


def test_values_past_2_to_the_53_are_written_exactly():
    """Integer values are written digit for digit (Prometheus then holds them as float64)."""
    stats = PrometheusStats()
    account = Account("big", "peer", "XRP", 9)
    stats.balance(account, 2**64 + 1)
    stats.outgoing_packet(account, "fulfilled", "", 2**63)
    stats.outgoing_packet(account, "fulfilled", "", 2**63)
    got = samples(exposition(stats.registry).decode())
    assert got['ilp_connector_balance{account="big",asset="XRP",scale="9"}'] == str(2**64 + 1)
    assert got['ilp_connector_outgoing_ilp_packet_value{result="fulfilled",account="big",asset="XRP",scale="9"}'] \
        == str(2**64)


def test_labelled_series_are_cached_per_account_result_code():
    """The hot path reuses one series per (account, result, code): no new objects per packet."""
    stats = PrometheusStats()
    account = Account("a", "peer", "USD", 2)
    stats.incoming_packet(account, "fulfilled", "", 1)
    (series,) = stats._incoming.values()
    stats.incoming_packet(account, "fulfilled", "", 1)
    assert list(stats._incoming.values()) == [series] and series[1:] == [2, 2]


def test_as_json_is_prom_client_get_metrics_as_json():
    """as_json(): the reference's GET /stats shape, families in the reference's order."""
    stats = PrometheusStats()
    account = Account("a", "peer", "USD", 2)
    stats.outgoing_packet(account, "rejected", "T04", 5)
    out = stats.as_json()
    assert [f["name"] for f in out] == NAMES
    assert out[2] == {"help": "Total number of outgoing ILP packets", "name": "ilp_connector_outgoing_ilp_packets",
                      "type": "counter", "aggregator": "sum",
                      "values": [{"value": 1, "labels": {"result": "rejected", "code": "T04", "account": "a",
                                                         "asset": "USD", "scale": "2"}}]}
    assert out[8]["type"] == "gauge" and out[8]["values"] == []


def test_default_metrics_added_by_collect_default_metrics():
    """collectDefaultMetrics: process/platform/GC families join the exposition, rendered by prometheus_client."""
    plain = exposition(PrometheusStats().registry).decode()
    full = exposition(PrometheusStats(default_metrics=True).registry).decode()
    assert "python_info" not in plain and "python_gc_objects_collected_total" not in plain
    assert "# TYPE python_info gauge" in full
    # prometheus_client's GC collector reads CPython's gc.get_stats(); on PyPy it adds nothing
    gc_family = "# TYPE python_gc_objects_collected_total counter" in full
    assert gc_family is (platform.python_implementation() == "CPython")
    assert "# TYPE ilp_connector_incoming_ilp_packets counter" in full
    net = Net(collectDefaultMetrics=True)
    assert "# TYPE python_info gauge" in net.text()


def test_content_type_is_text_format_0_0_4():
    """/metrics is served as the text format 0.0.4, as the reference's."""
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
