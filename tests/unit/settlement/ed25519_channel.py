"""A reference claim-based settlement module on ilptx.testing.FakeLedger, for the framework's tests.

Cumulative claims ``{"channelId", "value", "signature"}`` (value in ledger units, signature Ed25519 by
``cryptography`` over ``FakeLedger.claim_digest``) in the ``claim`` sub-protocol; addresses exchanged
with ``info``. One outgoing channel per account for life, opened on the first claim and topped up
when a claim would exceed it. Every incoming check a channel plugin makes: channel exists, pays us,
its sender is the peer, it is the channel linked to this account, value within the deposit, the
sender's signature. The watcher cashes the best incoming claim on the ledger.

Options: ``ledgerScale`` (default 12; the account is at scale 9), ``channelAmount`` (ledger units,
default 10**15), ``seed`` (hex of the 32-byte Ed25519 private key).
"""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from ilptx.codec.btp import CONTENT_JSON, ProtocolDataEntry
from ilptx.settlement.engine import CLAIM, ClaimRejectedError
from ilptx.settlement.interfaces import ISettlementModule


def module_factory(ledger):
    """:returns: a module factory ``(options, *, account_id, services)`` on ``ledger`` (a FakeLedger)."""

    def make(options, *, account_id, services):
        return Ed25519ChannelModule(ledger, options)

    return make


@implementer(ISettlementModule)
class Ed25519ChannelModule:
    name = "ed25519-channel"
    kind = CLAIM
    asset_scale = 9

    def __init__(self, ledger, options: dict) -> None:
        self.ledger = ledger
        self.ledger_scale = options.get("ledgerScale", 12)
        self.channel_amount = options.get("channelAmount", 10 ** 15)
        self.key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(options["seed"]))
        self.address = ledger.address_of(self.key)
        self.ctx = None
        self.peer_address = None
        self.channel_id = None
        self.incoming_channel = None

    # -- lifecycle --------------------------------------------------------------------------------

    @inlineCallbacks
    def connect(self, ctx):
        self.ctx = ctx
        ctx.register_sub_protocol("info", self._on_info)
        ctx.register_sub_protocol("claim", self._on_claim)
        self.peer_address = yield ctx.store.get(ctx.key("peer-address"))
        self.channel_id = yield ctx.store.get(ctx.key("channel"))
        self.incoming_channel = yield ctx.store.get(ctx.key("incoming-channel"))

    @inlineCallbacks
    def peer_connected(self):
        entries = yield self.ctx.call_peer("info", json.dumps({"address": self.address}).encode(), CONTENT_JSON)
        yield self._learn_peer(json.loads(entries[0].data)["address"])

    def disconnect(self):
        return None

    @inlineCallbacks
    def _learn_peer(self, address: str):
        if self.peer_address not in (None, address):
            raise ClaimRejectedError(f"peer address {address[:8]}… is not the linked {self.peer_address[:8]}…")
        if self.peer_address is None:
            self.peer_address = address
            yield self.ctx.store.put(self.ctx.key("peer-address"), address)

    @inlineCallbacks
    def _on_info(self, entry):
        yield self._learn_peer(json.loads(entry.data)["address"])
        return [ProtocolDataEntry("info", CONTENT_JSON, json.dumps({"address": self.address}).encode())]

    # -- paying -----------------------------------------------------------------------------------

    @inlineCallbacks
    def create_claim(self, total: int):
        if self.peer_address is None:
            raise RuntimeError("the peer's address is not known yet")
        if self.channel_id is None:
            self.channel_id = self.ledger.open_channel(self.key, self.peer_address, max(self.channel_amount, total))
            yield self.ctx.store.put(self.ctx.key("channel"), self.channel_id)
        channel = self.ledger.channel(self.channel_id)
        if channel.amount < total:
            self.ledger.deposit(self.key, self.channel_id, total - channel.amount + self.channel_amount)
        signature = self.ledger.sign_claim(self.key, self.channel_id, total)
        return json.dumps({"channelId": self.channel_id, "value": str(total), "signature": signature.hex()})

    def send_claim(self, claim: str):
        return self.ctx.call_peer("claim", claim.encode(), CONTENT_JSON)

    def pay(self, amount, payment_id):  # pragma: no cover - claim-based
        raise NotImplementedError

    # -- being paid -------------------------------------------------------------------------------

    @inlineCallbacks
    def _on_claim(self, entry):
        try:
            claim = json.loads(entry.data)
            channel_id, value, signature = claim["channelId"], int(claim["value"]), bytes.fromhex(claim["signature"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ClaimRejectedError(f"unreadable claim: {exc}") from None
        channel = self.ledger.channel(channel_id)
        if channel is None or channel.closed:
            raise ClaimRejectedError(f"no open channel {channel_id}")
        if channel.receiver != self.address:
            raise ClaimRejectedError(f"channel {channel_id} does not pay us")
        if channel.sender != self.peer_address:
            raise ClaimRejectedError(f"channel {channel_id} is not from the peer")
        if self.incoming_channel not in (None, channel_id):
            raise ClaimRejectedError(f"channel {channel_id} is not the channel linked to this account")
        if value > channel.amount:
            raise ClaimRejectedError(f"claim of {value} is above the deposit {channel.amount}")
        if not self.ledger.verify_claim(channel_id, value, signature):
            raise ClaimRejectedError(f"claim signature does not verify for the sender of {channel_id}")
        if self.incoming_channel is None:
            self.incoming_channel = channel_id
            yield self.ctx.store.put(self.ctx.key("incoming-channel"), channel_id)
        yield self.ctx.credit_claim(value, entry.data.decode())
        return []

    @inlineCallbacks
    def watch(self):
        best = yield self.ctx.best_incoming_claim()
        if best.data is None:
            return
        claim = json.loads(best.data)
        channel = self.ledger.channel(claim["channelId"])
        if best.value > channel.claimed:
            self.ledger.claim(self.key, claim["channelId"], best.value, bytes.fromhex(claim["signature"]))

    def admin_info(self):
        channel = self.ledger.channel(self.channel_id) if self.channel_id else None
        return {"address": self.address, "peerAddress": self.peer_address, "channel": self.channel_id,
                "deposited": str(channel.amount) if channel else "0"}
