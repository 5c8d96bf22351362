"""Prometheus metrics: :class:`PrometheusStats`, the connector's default ``IStats``.

The metric names, help texts and labels are the reference connector's (``ilp-connector``
23.x ``src/services/stats.ts``), so dashboards and alerts written for it keep working:

=========================================== ======= =========================================
name (exactly as exposed)                   type    labels
=========================================== ======= =========================================
``ilp_connector_incoming_ilp_packets``      counter result, code, account, asset, scale
``ilp_connector_incoming_ilp_packet_value`` counter result, code, account, asset, scale
``ilp_connector_outgoing_ilp_packets``      counter result, code, account, asset, scale
``ilp_connector_outgoing_ilp_packet_value`` counter result, code, account, asset, scale
``ilp_connector_incoming_money``            counter result, account, asset, scale
``ilp_connector_outgoing_money``            counter result, account, asset, scale
``ilp_connector_rate_limited_ilp_packets``  counter account, asset, scale
``ilp_connector_rate_limited_money``        counter account, asset, scale
``ilp_connector_balance``                   gauge   account, asset, scale
=========================================== ======= =========================================

``result`` is ``fulfilled``/``rejected``/``failed`` for packets and ``succeeded``/``failed``
for money; ``code`` is the ILP error code and is left out when there is none (as prom-client
leaves out a label that was not given), so a fulfilled packet has no ``code`` label.

The reference's counters are exposed *without* a ``_total`` suffix (prom-client does not add
one). ``prometheus_client`` appends ``_total`` to every counter it renders, so these families
are rendered by :func:`exposition` here, byte for byte in the reference's form; families
from other collectors (``collectDefaultMetrics``: process, platform, GC) are rendered by
``prometheus_client`` as usual. Do not pass :attr:`PrometheusStats.registry` to
``prometheus_client.generate_latest``: it would announce ``..._total`` for our counters.

Deviations from the reference, on purpose:

* ``ilp_connector_incoming_money`` / ``ilp_connector_outgoing_money`` are **counters of the
  total** amount settled; the reference's are gauges holding the *last* settlement's amount,
  which a scrape every 15 s cannot sum.
* ``ilp_connector_*_ilp_packet_value`` are filled in (the reference declares them but never
  adds to them), and incoming rejected packets carry their ``code`` (the reference records a
  code only for outgoing Rejects).
* Amounts are exact Python ``int``\\ s here and are written exactly in the text; Prometheus
  stores every sample as a float64, which is exact up to 2^53 (9,007,199,254,740,992 base
  units). Exact balances are in the admin API's ``/balance`` (decimal strings).
"""

from __future__ import annotations

from typing import Iterable, Optional

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric
from zope.interface import implementer

from ilptx.interfaces import IStats

__all__ = ["PrometheusStats", "exposition", "metrics_as_json", "CONTENT_TYPE"]

#: Content type of :func:`exposition` (text format 0.0.4, as the reference's ``/metrics``).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

INCOMING_PACKETS = "ilp_connector_incoming_ilp_packets"
INCOMING_PACKET_VALUE = "ilp_connector_incoming_ilp_packet_value"
OUTGOING_PACKETS = "ilp_connector_outgoing_ilp_packets"
OUTGOING_PACKET_VALUE = "ilp_connector_outgoing_ilp_packet_value"
INCOMING_MONEY = "ilp_connector_incoming_money"
OUTGOING_MONEY = "ilp_connector_outgoing_money"
RATE_LIMITED_PACKETS = "ilp_connector_rate_limited_ilp_packets"
RATE_LIMITED_MONEY = "ilp_connector_rate_limited_money"
BALANCE = "ilp_connector_balance"

# (name, help, type) in the reference's registration order; help texts are the reference's.
_FAMILIES = (
    (INCOMING_PACKETS, "Total number of incoming ILP packets", "counter"),
    (INCOMING_PACKET_VALUE, "Total value of incoming ILP packets", "counter"),
    (OUTGOING_PACKETS, "Total number of outgoing ILP packets", "counter"),
    (OUTGOING_PACKET_VALUE, "Total value of outgoing ILP packets", "counter"),
    (INCOMING_MONEY, "Total of incoming money", "counter"),
    (OUTGOING_MONEY, "Total of outgoing money", "counter"),
    (RATE_LIMITED_PACKETS, "Total of rate limited ILP packets", "counter"),
    (RATE_LIMITED_MONEY, "Total of rate limited money requests", "counter"),
    (BALANCE, "Balances on peer account", "gauge"),
)


class _ExactMetric(Metric):
    """A metric family whose samples are named exactly like the family (no ``_total``)."""


def _account_labels(labels: dict, account) -> dict:
    # the reference's mergeAccountLabels: its own labels first, then account, asset, scale
    labels["account"] = account.id
    labels["asset"] = account.asset_code
    labels["scale"] = str(account.asset_scale)
    return labels


def _packet_labels(account, result: str, code: str) -> dict:
    labels = {"result": result}
    if code:
        labels["code"] = code
    return _account_labels(labels, account)


@implementer(IStats)
class PrometheusStats:
    """``IStats`` into Prometheus metrics with the reference's names (see the module docstring).

    Each labelled series is a small list cached per ``(account, result, code)``, so the
    per-packet cost is one dict lookup and two additions; nothing is formatted until a scrape.

    :param default_metrics: also collect process, platform and GC metrics
        (``collectDefaultMetrics``).
    :ivar registry: this connector's own ``prometheus_client.CollectorRegistry`` (render it
        with :func:`exposition`).
    """

    def __init__(self, *, default_metrics: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # series: key -> [labels, count, value] (packets) or [labels, value] (the rest)
        self._incoming: dict = {}
        self._outgoing: dict = {}
        self._incoming_money: dict = {}
        self._outgoing_money: dict = {}
        self._rate_limited_packets: dict = {}
        self._rate_limited_money: dict = {}
        self._balances: dict = {}
        self.registry.register(_IlpCollector(self))
        if default_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # -- IStats (the per-packet path) ----------------------------------------------------------

    def incoming_packet(self, account, result, code, amount):
        """Count one incoming Prepare and add its amount."""
        key = (account, result, code)
        series = self._incoming.get(key)
        if series is None:
            series = self._incoming[key] = [_packet_labels(account, result, code), 0, 0]
        series[1] += 1
        series[2] += amount

    def outgoing_packet(self, account, result, code, amount):
        """Count one outgoing Prepare and add its amount."""
        key = (account, result, code)
        series = self._outgoing.get(key)
        if series is None:
            series = self._outgoing[key] = [_packet_labels(account, result, code), 0, 0]
        series[1] += 1
        series[2] += amount

    def incoming_money(self, account, result, amount):
        """Add a settlement received to the total."""
        self._add(self._incoming_money, account, result, amount)

    def outgoing_money(self, account, result, amount):
        """Add a settlement sent (or failed) to the total."""
        self._add(self._outgoing_money, account, result, amount)

    def rate_limited_packet(self, account):
        """Count a Prepare refused by ``rateLimit``."""
        self._add(self._rate_limited_packets, account, None, 1)

    def rate_limited_money(self, account):
        """Count a settlement refused by ``rateLimit``."""
        self._add(self._rate_limited_money, account, None, 1)

    def balance(self, account, value):
        """Set the account's balance gauge (``value``: ``int`` base units)."""
        series = self._balances.get(account)
        if series is None:
            series = self._balances[account] = [_account_labels({}, account), 0]
        series[1] = value

    @staticmethod
    def _add(table: dict, account, result: Optional[str], amount: int) -> None:
        key = (account, result)
        series = table.get(key)
        if series is None:
            labels = {"result": result} if result is not None else {}
            series = table[key] = [_account_labels(labels, account), 0]
        series[1] += amount

    # -- reading ---------------------------------------------------------------------------------

    def families(self) -> list[Metric]:
        """:returns: the nine ``ilp_connector_*`` families, in the reference's order, with
        their current samples (values are exact ``int``)."""
        sources = {
            INCOMING_PACKETS: ((s[0], s[1]) for s in self._incoming.values()),
            INCOMING_PACKET_VALUE: ((s[0], s[2]) for s in self._incoming.values()),
            OUTGOING_PACKETS: ((s[0], s[1]) for s in self._outgoing.values()),
            OUTGOING_PACKET_VALUE: ((s[0], s[2]) for s in self._outgoing.values()),
            INCOMING_MONEY: ((s[0], s[1]) for s in self._incoming_money.values()),
            OUTGOING_MONEY: ((s[0], s[1]) for s in self._outgoing_money.values()),
            RATE_LIMITED_PACKETS: ((s[0], s[1]) for s in self._rate_limited_packets.values()),
            RATE_LIMITED_MONEY: ((s[0], s[1]) for s in self._rate_limited_money.values()),
            BALANCE: ((s[0], s[1]) for s in self._balances.values()),
        }
        out = []
        for name, help_text, kind in _FAMILIES:
            family = _ExactMetric(name, help_text, kind)
            for labels, value in sources[name]:
                family.add_sample(name, dict(labels), value)
            out.append(family)
        return out

    def as_json(self) -> list[dict]:
        """:returns: the ``ilp_connector_*`` families as prom-client's ``getMetricsAsJSON``
        (the reference's ``GET /stats``); see :func:`metrics_as_json`."""
        return metrics_as_json(self.families())

    def exposition(self) -> bytes:
        """:returns: everything in :attr:`registry` in the text format (see :func:`exposition`)."""
        return exposition(self.registry)


class _IlpCollector:
    """Hands :meth:`PrometheusStats.families` to the registry."""

    def __init__(self, stats: PrometheusStats) -> None:
        self._stats = stats

    def collect(self) -> list[Metric]:
        return self._stats.families()

    def describe(self) -> list[Metric]:
        return [_ExactMetric(name, help_text, kind) for name, help_text, kind in _FAMILIES]


class _Families:
    """A collector of metrics already collected (to render them with prometheus_client)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> list[Metric]:
        return self._metrics


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value) -> str:
    if isinstance(value, int):
        return str(value)  # exact, however large
    from prometheus_client.utils import floatToGoString

    return floatToGoString(value)


def _render_exact(metric: Metric) -> str:
    help_text = metric.documentation.replace("\\", "\\\\").replace("\n", "\\n")
    lines = [f"# HELP {metric.name} {help_text}\n", f"# TYPE {metric.name} {metric.type}\n"]
    for sample in metric.samples:
        labels = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sample.labels.items())
        lines.append(f"{sample.name}{{{labels}}} {_number(sample.value)}\n" if labels
                     else f"{sample.name} {_number(sample.value)}\n")
    return "".join(lines)


def exposition(registry: CollectorRegistry) -> bytes:
    """Render ``registry`` in the Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`).

    The ``ilp_connector_*`` families are written exactly as the reference writes them: no
    ``_total`` suffix, labels in the reference's order, integer values written exactly.
    Any other family is rendered by ``prometheus_client.generate_latest``.

    :returns: UTF-8 bytes.
    """
    out = []
    others: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, _ExactMetric):
            if others:
                out.append(generate_latest(_Families(others)).decode("utf-8"))
                others = []
            out.append(_render_exact(metric))
        else:
            others.append(metric)
    if others:
        out.append(generate_latest(_Families(others)).decode("utf-8"))
    return "".join(out).encode("utf-8")


def metrics_as_json(families: Iterable[Metric]) -> list[dict]:
    """:returns: ``[{"help", "name", "type", "values": [{"value", "labels"}], "aggregator": "sum"}]``,
    the shape of prom-client's ``Registry#getMetricsAsJSON`` (values are JSON numbers; an
    ``int`` is written exactly)."""
    return [{"help": m.documentation, "name": m.name, "type": m.type,
             "values": [{"value": s.value, "labels": dict(s.labels)} for s in m.samples],
             "aggregator": "sum"}
            for m in families]
