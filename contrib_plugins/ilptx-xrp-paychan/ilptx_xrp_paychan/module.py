"""The ``xrp-paychan`` ledger plugin: :class:`XrpPaychanModule` (an
:class:`~ilptx.settlement.ISettlementModule`) in :class:`XrpPaychanPlugin` (the framework's
:class:`~ilptx.settlement.plugin.SettlingPlugin`, which takes claims as BTP TRANSFERs), the
symmetric plugin of ``ilp-plugin-xrp-paychan`` 2.4.1 (``index.js``), byte for byte on the wire.

Units: the account's ILP amounts are *plugin units* at ``currencyScale``; claims carry cumulative
totals in plugin units, so the module's "ledger units" are plugin units too
(``ledger_scale == asset_scale == currencyScale``: the framework's conversion is the identity)
and drops appear only where XRP moves: a claim for a total of ``t`` units signs
``ceil(t / 10**(scale − 6))`` drops (JS ``toFixed(6, ROUND_UP)``). Totals being cumulative, what
one claim rounds up the next includes: over a whole payment no unit is lost or created, and the
payee can take on the ledger at most the drops of the best claim.

* **connect** (:meth:`XrpPaychanModule.peer_connected`): learn the peer's address with
  ``xrp_address`` unless ``peerAddress`` is configured (linked for life), derive the channel key,
  create our channel (``PaymentChannelCreate``: ``channelAmount``, ``settleDelay``, the key, a
  random SourceTag) unless one exists, then ``ripple_channel_id`` both ways. A ledger or a peer
  that is not ready yet is retried (1, 2, 5, 10, 30, then every 60 s), logged each time.
* **incoming channel** (from ``ripple_channel_id``): settle delay >= 3600 s, no CancelAfter, no
  Expiration, destination = us, not linked to another account; then ``info``: a currencyScale
  other than ours is fatal: the account is **blocked** (every claim refused, an error logged).
* **paying** (:meth:`create_claim`): fund the channel when the claim exceeds it (before signing)
  or passes ``fundThreshold`` of it (in the background), with ``PaymentChannelFund`` of the
  channel's amount (doubling it, as JS), then ``ripple_channel_id`` so the peer re-reads it;
  the claim goes as a BTP TRANSFER (:meth:`send_claim`).
* **being paid** (:meth:`verify_claim_transfer`): only a claim whose signature verifies against
  the channel's key, for at most the channel's amount, moves money; a claim for the total
  already credited is acknowledged and credits nothing (a resend); a lower one is refused. Every
  refusal is :class:`~ilptx.settlement.ClaimRejectedError` (BTP Error F00, one warning line with
  the reason, nothing credited, the connection stays up).
* **on the ledger**: every ``claimInterval`` ms the best incoming claim is submitted
  (``PaymentChannelClaim``) when fee / income <= ``maxFeePercent``; on disconnect whenever it
  is above what the channel paid out; the watcher (``channelWatcherInterval``) claims at once
  when the incoming channel gets an Expiration or CancelAfter (its sender is closing it).

Store keys (``ctx.key``: ``xrp-paychan:<account>:…``): ``peer-address``, ``outgoing-channel``
and ``incoming-channel`` (JSON ``{"channelId", "base"}``; ``base``: the lifetime total of
earlier channels), ``sent-claim`` (the total of the last claim the peer acknowledged);
``xrp-paychan:incoming-channel:<id>`` = the account an incoming channel is linked to.

A channel of ours that the peer closed (or that is closing) is replaced by a new one when the next
claim is signed; its ``base`` is the lifetime total signed so far, the peer links it through
``ripple_channel_id`` (claiming what the old one owed first).

kill -9: the framework keeps payouts and credits (see :mod:`ilptx.settlement.engine`); a
channel created but not yet stored is found again with ``account_channels`` (our key, the
peer) on the next start instead of creating a second one.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Callable, Optional

from twisted.internet.defer import DeferredLock, inlineCallbacks
from twisted.internet.task import LoopingCall
from xrpl.models.transactions import PaymentChannelClaim, PaymentChannelCreate, PaymentChannelFund
from xrpl.wallet import Wallet
from zope.interface import implementer

from ilptx.codec.btp import Transfer
from ilptx.errors import PeerUnreachableError
from ilptx.settlement import CLAIM, ClaimRejectedError, ISettlementModule
from ilptx.settlement.plugin import SettlingPlugin

from ilptx_xrp_paychan import protocol
from ilptx_xrp_paychan.claims import (
    CHANNEL_KEYS_TAG, ChannelKey, channel_key, compute_channel_id, drops_to_units, sign_claim, units_to_drops, verify_claim,
)
from ilptx_xrp_paychan.options import DEFAULT_CURRENCY_SCALE, MIN_SETTLE_DELAY, parse_options

__all__ = ["XrpPaychanModule", "XrpPaychanPlugin", "xrp_paychan_plugin", "SETUP_RETRY_DELAYS"]

#: seconds between attempts to set the channels up while the ledger or the peer is not ready
SETUP_RETRY_DELAYS = (1, 2, 5, 10, 30, 60)


class ChannelNotReadyError(Exception):
    """The channels are not set up yet (no peer address, the ledger down, no outgoing channel);
    a payout waits in the queue."""


def _drops(node: dict, field: str) -> int:
    return int(node.get(field, "0"))


@implementer(ISettlementModule)
class XrpPaychanModule:
    """:class:`~ilptx.settlement.ISettlementModule` for XRP payment channels.

    :param options: the account's options (:mod:`ilptx_xrp_paychan.options`).
    :param account_id: ``str``. :param services: the ``PluginServices`` (reactor, log, store).
    :param ledger_factory: ``callable(url) -> IXrpLedger`` (default:
        :class:`~ilptx_xrp_paychan.rippled.RippledClient` on the reactor).
    :raises ConfigError: invalid options.
    """

    name = "xrp-paychan"
    kind = CLAIM
    #: the HMAC tag of the channel key (:func:`~ilptx_xrp_paychan.claims.channel_key`)
    channel_keys_tag = CHANNEL_KEYS_TAG
    #: a claim of 0 units: acknowledged, crediting nothing (the asym plugins) or refused (F00, JS paychan)
    accept_zero_claims = False

    def __init__(self, options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None) -> None:
        self.options = parse_options(options, account_id)
        self.ledger_scale = self.asset_scale = self.options.currency_scale
        self.account_id = account_id
        self.wallet = Wallet.from_seed(self.options.secret)
        self.address = self.options.address
        self._reactor = services.reactor
        self._ledger_factory = ledger_factory or self._rippled
        self.ledger = None
        self.ctx = None
        self.plugin: Optional[XrpPaychanPlugin] = None
        self.peer_address: Optional[str] = None
        self.key: Optional[ChannelKey] = None
        self.outgoing: Optional[dict] = None
        self.incoming: Optional[dict] = None
        self.outgoing_node: Optional[dict] = None
        self.incoming_node: Optional[dict] = None
        self.blocked: Optional[str] = None
        self.ready = False
        self._scale_checked = False
        self._setup_lock = DeferredLock()
        self._fund_lock = DeferredLock()
        self._incoming_lock = DeferredLock()
        self._funding = False
        self._setup_attempt = 0
        self._setup_timer = None
        self._claimer: Optional[LoopingCall] = None
        self._stopped = False

    def _rippled(self, url: str):
        from ilptx_xrp_paychan.rippled import RippledClient

        return RippledClient(url, self._reactor)

    def _log(self, level: str, text: str, **kw) -> None:
        getattr(self.ctx.log, level)("account {account}: " + text, account=self.account_id, **kw)

    # -- lifecycle --------------------------------------------------------------------------------

    @inlineCallbacks
    def connect(self, ctx):
        """Register ``xrp_address``, ``info``, ``ripple_channel_id``; load the linked peer and
        channels; start the rippled client (it connects and reconnects by itself: a ledger that
        is down does not fail the start) and the on-ledger claim schedule."""
        self.ctx = ctx
        self._stopped = False
        for name, handler in self._sub_protocols():
            ctx.register_sub_protocol(name, handler)
        self.peer_address = self.options.peer_address or (yield ctx.store.get(ctx.key("peer-address")))
        if self.peer_address:
            self.key = channel_key(self.options.secret, self.peer_address, self.channel_keys_tag)
        self.outgoing = yield self._load("outgoing-channel")
        self.incoming = yield self._load("incoming-channel")
        self.ledger = self._ledger_factory(self.options.xrp_server)
        self.ledger.start()
        self._claimer = LoopingCall(self._claim_on_interval)
        self._claimer.clock = ctx.clock
        self._claimer.start(self.options.claim_interval_ms / 1000, now=False)
        self._log("info", "xrp-paychan settlement as {address} on {server} (currencyScale {scale})",
                  address=self.address, server=self.options.xrp_server, scale=self.options.currency_scale)

    def _sub_protocols(self):
        """:returns: the ``(name, handler)`` pairs :meth:`connect` registers."""
        return ((protocol.XRP_ADDRESS, self._on_xrp_address), (protocol.INFO, self._on_info),
                (protocol.RIPPLE_CHANNEL_ID, self._on_channel_id))

    @inlineCallbacks
    def _load(self, suffix: str):
        raw = yield self.ctx.store.get(self.ctx.key(suffix))
        return json.loads(raw) if raw else None

    def _save(self, suffix: str, value: dict):
        return self.ctx.store.put(self.ctx.key(suffix), json.dumps(value, sort_keys=True))

    def _call(self, entry):
        return self.ctx.call_peer(entry.protocol_name, entry.data, entry.content_type)

    @inlineCallbacks
    def _exchange_channel_ids(self):
        """``ripple_channel_id``: tell the peer our channel id; :returns: theirs (``""``: none)."""
        entries = yield self._call(protocol.text_entry(protocol.RIPPLE_CHANNEL_ID, self.outgoing["channelId"]))
        entry = protocol.find(entries, protocol.RIPPLE_CHANNEL_ID)
        return self._decode(protocol.decode_channel_id, entry) if entry is not None else ""

    def _announce_outgoing(self):
        """Tell the peer our channel (new, or funded: it re-reads it). :returns: ``Deferred``."""
        return self._exchange_channel_ids()

    def peer_connected(self):
        """Set the channels up (see the module docstring); retried on the clock until it works."""
        self._setup_attempt = 0
        return self._try_setup()

    def _try_setup(self):
        self._setup_timer = None
        if self._stopped:
            return None

        def failed(failure):
            if self._stopped or self.blocked:
                return None
            delay = SETUP_RETRY_DELAYS[min(self._setup_attempt, len(SETUP_RETRY_DELAYS) - 1)]
            self._setup_attempt += 1
            self._log("warn", "setting up the payment channels failed ({error}); retrying in {delay} s",
                      error=f"{type(failure.value).__name__}: {failure.getErrorMessage()}", delay=delay)
            if self._setup_timer is None or not self._setup_timer.active():
                self._setup_timer = self.ctx.clock.callLater(delay, self._try_setup)
            return None

        return self._setup_lock.run(self._setup).addErrback(failed)

    @inlineCallbacks
    def _setup(self):
        if self.peer_address is None:
            entries = yield self._call(protocol.text_entry(protocol.XRP_ADDRESS, self.address))
            entry = protocol.find(entries, protocol.XRP_ADDRESS)
            if entry is None:
                raise ValueError("the peer answered xrp_address without an xrp_address entry")
            yield self._link_peer(protocol.decode_text(entry, "xrp_address").strip())
        yield self._ensure_outgoing()
        if not self._scale_checked:
            yield self._check_peer_scale()
            self._scale_checked = True
        self.ready = True
        theirs = yield self._exchange_channel_ids()
        if theirs:
            yield self._set_incoming(theirs)

    @inlineCallbacks
    def _check_peer_scale(self):
        """``info``: the peer's currencyScale must be ours (JS ``_getPeerInfo``; a peer that does not
        answer ``info`` passes only at scale 6, as in JS). A mismatch blocks the account for good:
        nothing is paid or credited (JS throws "Fatal! Currency scale mismatch").
        :raises ClaimRejectedError: a mismatch."""
        if self.blocked:
            raise ClaimRejectedError(self.blocked)
        try:
            entries = yield self._call(protocol.info_request())
        except Exception as exc:  # the peer refused it or failed to answer (JS: any error of the call)
            if self.options.currency_scale != DEFAULT_CURRENCY_SCALE or isinstance(exc, PeerUnreachableError):
                raise
            self._log("warn", "the peer does not answer info ({error}); its scale is taken to be 6 like ours",
                      error=str(exc))
            return
        info = protocol.find(entries, protocol.INFO)
        scale = self._decode(protocol.decode_info, info) if info is not None else None
        if scale != self.options.currency_scale:
            self.blocked = (f"currency scale mismatch: ours is {self.options.currency_scale}, the peer's is "
                            f"{scale}; the account is blocked (fatal in ilp-plugin-xrp-paychan)")
            self._log("error", "{why}", why=self.blocked)
            raise ClaimRejectedError(self.blocked)

    @inlineCallbacks
    def _link_peer(self, address: str):
        from xrpl.core.addresscodec import is_valid_classic_address

        if not is_valid_classic_address(address):
            raise ClaimRejectedError(f"the peer's xrp_address {address!r:.60} is not a classic XRP address")
        if self.peer_address is not None and self.peer_address != address:
            raise ClaimRejectedError(f"the peer's XRP address {address} is not the one linked to account "
                                     f"{self.account_id} ({self.peer_address})")
        if self.peer_address is None:
            self.peer_address = address
            self.key = channel_key(self.options.secret, address, self.channel_keys_tag)
            yield self.ctx.store.put(self.ctx.key("peer-address"), address)
            self._log("info", "linked to the peer's XRP address {peer}", peer=address)

    @inlineCallbacks
    def _ensure_outgoing(self):
        """Our channel as the validated ledger shows it: the stored one while it is open; a new one
        (:meth:`_create_outgoing`) when there is none, or it was closed or is closing (also found at
        start-up: a stored channel that no longer exists is replaced, not fatal).
        :returns: ``Deferred[dict]``, the PayChannel node."""
        if self.outgoing is not None:
            node = yield self.ledger.channel(self.outgoing["channelId"])
            if node is not None and "Expiration" not in node and "CancelAfter" not in node:
                self.outgoing_node = node
                return node
            self._log("warn", "our channel {channel} to the peer is {state}; creating a new one (claims on it start "
                      "after the {base} units signed so far)", channel=self.outgoing["channelId"],
                      state="closed" if node is None else "closing", base=(yield self.ctx.best_outgoing_claim()).value)
            self.outgoing = None
        yield self._create_outgoing()
        node = yield self.ledger.channel(self.outgoing["channelId"])
        if node is None:
            raise ChannelNotReadyError(f"our new channel {self.outgoing['channelId']} is not on the validated ledger")
        self.outgoing_node = node
        return node

    @inlineCallbacks
    def _create_outgoing(self):
        best = yield self.ctx.best_outgoing_claim()
        existing = yield self.ledger.account_channels(self.address, self.peer_address)
        for chan in existing:  # created before a crash, never stored: adopt it
            if chan.get("public_key_hex", "").upper() == self.key.public_key and "expiration" not in chan \
                    and "cancel_after" not in chan:
                self.outgoing = {"channelId": chan["channel_id"].upper(), "base": best.value}
                yield self._save("outgoing-channel", self.outgoing)
                self._log("info", "found our channel {channel} to {peer} on the ledger; using it",
                          channel=self.outgoing["channelId"], peer=self.peer_address)
                return
        drops = units_to_drops(self.options.channel_amount, self.options.currency_scale)
        tx = PaymentChannelCreate(account=self.address, amount=str(drops), destination=self.peer_address,
                                  settle_delay=self.options.settle_delay, public_key=self.key.public_key,
                                  source_tag=int.from_bytes(os.urandom(4), "big"))
        self._log("info", "creating a payment channel to {peer} with {drops} drops", peer=self.peer_address,
                  drops=drops)
        result = yield self.ledger.submit_transaction(self.wallet, tx)
        channel_id = compute_channel_id(result.tx["Account"], result.tx["Destination"], int(result.tx["Sequence"]))
        self.outgoing = {"channelId": channel_id, "base": best.value}
        yield self._save("outgoing-channel", self.outgoing)
        self._log("info", "created payment channel {channel} to {peer} ({drops} drops, settle delay {delay} s; "
                  "tx {tx})", channel=channel_id, peer=self.peer_address, drops=drops,
                  delay=self.options.settle_delay, tx=result.hash)

    @inlineCallbacks
    def disconnect(self):
        """Stop the schedules; claim the best incoming claim on the ledger if it is above what the
        channel paid out (JS ``_disconnect``); stop the rippled client."""
        self._stopped = True
        if self._setup_timer is not None and self._setup_timer.active():
            self._setup_timer.cancel()
        if self._claimer is not None and self._claimer.running:
            self._claimer.stop()
        if self.ledger is None:
            return
        try:
            yield self.claim_incoming(reason="disconnect", worthwhile_only=False)
        except Exception as exc:  # the link goes down anyway; the next start's schedule retries
            self._log("warn", "claiming the incoming channel on disconnect failed: {error}", error=str(exc))
        finally:
            ledger, self.ledger = self.ledger, None
            self.ready = False
            yield ledger.stop()

    # -- paying -----------------------------------------------------------------------------------

    def create_claim(self, total: int):
        """Sign a claim for the lifetime ``total`` (``int``, plugin units): on our channel for
        ``total − base``, funding it first when the claim's drops exceed it.
        :returns: the ``claim`` JSON (``str``).
        :raises ChannelNotReadyError: the channels are not set up yet (the payout stays queued)."""
        return self._fund_lock.run(self._create_claim, total)

    @inlineCallbacks
    def _create_claim(self, total: int):
        if self.blocked:
            raise ClaimRejectedError(f"not paying: {self.blocked}")
        if not self.ready:
            yield self._setup_lock.run(self._setup)
        channel = self.outgoing["channelId"]
        node = yield self._ensure_outgoing()
        if self.outgoing["channelId"] != channel:  # replaced: the peer links the new one
            yield self._announce_outgoing()
        amount = total - self.outgoing["base"]
        drops = units_to_drops(amount, self.options.currency_scale)
        if drops > _drops(node, "Amount"):
            yield self._fund(max(_drops(node, "Amount"), drops - _drops(node, "Amount")))
        elif drops > Decimal(_drops(node, "Amount")) * self.options.fund_threshold and not self._funding:
            self._fund_in_background(_drops(node, "Amount"))  # doubles it, as JS
        signature = sign_claim(self.key, self.outgoing["channelId"], drops)
        return protocol.encode_claim(amount, signature)

    @inlineCallbacks
    def _fund(self, drops: int):
        channel = self.outgoing["channelId"]
        tx = PaymentChannelFund(account=self.address, channel=channel, amount=str(drops))
        result = yield self.ledger.submit_transaction(self.wallet, tx)
        self.outgoing_node = yield self.ledger.channel(channel)
        self._log("info", "funded channel {channel} with {drops} drops (tx {tx})", channel=channel, drops=drops,
                  tx=result.hash)
        # the JS peer re-reads our channel (its amount) when told the channel id again
        yield self._announce_outgoing().addErrback(
            lambda f: self._log("warn", "telling the peer about the funding failed: {error}",
                                error=f.getErrorMessage()))

    def _fund_in_background(self, drops: int) -> None:
        self._funding = True

        def done(result):
            self._funding = False
            return result

        def failed(failure):
            self._log("warn", "funding channel {channel} failed: {error}", channel=self.outgoing["channelId"],
                      error=failure.getErrorMessage())

        def fund_if_still_needed():
            node = yield self.ledger.channel(self.outgoing["channelId"])
            if node is not None and _drops(node, "Amount") == drops:  # not funded meanwhile
                yield self._fund(drops)

        self.ctx.clock.callLater(0, lambda: self._fund_lock.run(inlineCallbacks(fund_if_still_needed)).addBoth(
            done).addErrback(failed))

    @inlineCallbacks
    def send_claim(self, claim: str):
        """Send ``claim`` as a BTP TRANSFER (amount: the increase over the last claim the peer
        acknowledged, as the JS plugin's ``sendMoney``); :returns: ``Deferred`` of its Response."""
        if self.plugin is None:
            raise PeerUnreachableError("no BTP plugin to send the claim with")
        total = int(json.loads(claim)["amount"])
        sent = int((yield self.ctx.store.get(self.ctx.key("sent-claim"))) or 0)
        if sent > total:  # acknowledged on an earlier channel
            sent = 0
        yield self.plugin.send_transfer(total - sent, (protocol.claim_entry(claim),))
        yield self.ctx.store.put(self.ctx.key("sent-claim"), str(total))

    def pay(self, amount, payment_id):  # claim-based: never called
        raise NotImplementedError("xrp-paychan settles with payment-channel claims")

    # -- being paid -------------------------------------------------------------------------------

    @inlineCallbacks
    def _on_xrp_address(self, entry):
        yield self._link_peer(protocol.decode_text(entry, "xrp_address").strip())
        return [protocol.text_entry(protocol.XRP_ADDRESS, self.address)]

    def _on_info(self, entry):
        return [protocol.info_response(self.options.currency_scale)]

    @inlineCallbacks
    def _on_channel_id(self, entry):
        theirs = self._decode(protocol.decode_channel_id, entry)
        if theirs:
            yield self._set_incoming(theirs)
        if self.outgoing is None or self.outgoing_node is None:
            # not "": the JS plugin would take "" for a channel id and fail the packet it is handling; an error it
            # logs and goes on (as its own answer before its channel is ready)
            raise ClaimRejectedError("our payment channel to the peer is not set up yet")
        return [protocol.text_entry(protocol.RIPPLE_CHANNEL_ID, self.outgoing["channelId"])]

    @staticmethod
    def _decode(decoder: Callable, *args):
        try:
            return decoder(*args)
        except protocol.MalformedMessageError as exc:
            raise ClaimRejectedError(str(exc)) from None

    def _set_incoming(self, channel_id: str):
        return self._incoming_lock.run(self._link_incoming, channel_id)

    @inlineCallbacks
    def _link_incoming(self, channel_id: str):
        """Check the peer's channel (JS ``_validateChannelDetails`` and ``_getPeerInfo``) and link it;
        the same channel again only re-reads it (its amount after a fund).
        :raises ClaimRejectedError: the channel fails a check."""
        node = yield self.ledger.channel(channel_id)
        if node is None:
            raise ClaimRejectedError(f"the peer's channel {channel_id} is not on the ledger")
        if self.incoming is not None and self.incoming["channelId"] == channel_id:
            self.incoming_node = node
            return
        problem = None
        if node.get("Destination") != self.address:
            problem = f"its destination is {node.get('Destination')}, not us ({self.address})"
        elif node.get("Account") != self.peer_address and self.peer_address is not None:
            problem = f"its source is {node.get('Account')}, not the peer ({self.peer_address})"
        elif int(node.get("SettleDelay", 0)) < MIN_SETTLE_DELAY:
            problem = f"its settle delay {node.get('SettleDelay')} s is below {MIN_SETTLE_DELAY} s"
        elif "CancelAfter" in node:
            problem = "it has CancelAfter set"
        elif "Expiration" in node:
            problem = "it has an Expiration (it is closing)"
        linked = yield self.ctx.store.get(f"{self.name}:incoming-channel:{channel_id}")
        if problem is None and linked not in (None, self.account_id):
            problem = f"it is linked to account {linked}"
        if problem is not None:
            raise ClaimRejectedError(f"the peer's channel {channel_id} is refused: {problem}")
        yield self._check_peer_scale()
        if self.incoming is not None:  # a new channel: claim what the old one owes us first
            try:
                yield self.claim_incoming(reason="the peer changed channels", worthwhile_only=False)
            except Exception as exc:
                self._log("warn", "claiming the old incoming channel failed: {error}", error=str(exc))
        best = yield self.ctx.best_incoming_claim()
        yield self.ctx.store.put(f"{self.name}:incoming-channel:{channel_id}", self.account_id)
        self.incoming = {"channelId": channel_id, "base": best.value}
        self.incoming_node = node
        yield self._save("incoming-channel", self.incoming)
        self._log("info", "incoming channel {channel} ({drops} drops) linked", channel=channel_id,
                  drops=_drops(node, "Amount"))

    def verify_claim_transfer(self, transfer: Transfer):
        """Verify a BTP TRANSFER's ``claim`` and credit it (``ctx.credit_claim``, idempotent by
        its total). :returns: ``Deferred[0]`` (the framework has already credited).
        :raises ClaimRejectedError: a claim that does not verify (F00; nothing credited)."""
        return self._incoming_lock.run(self._verify_claim, transfer)

    @inlineCallbacks
    def _verify_claim(self, transfer: Transfer):
        entry = protocol.find(transfer.protocol_data, protocol.CLAIM)
        if entry is None:
            raise ClaimRejectedError("TRANSFER without a claim entry")
        claim = self._decode(protocol.decode_claim, entry)
        if claim.amount == 0 and self.accept_zero_claims:
            self._log("info", "a claim of 0 units: nothing to credit")
            return 0
        where = f"claim for {claim.amount} units"
        if self.blocked:
            raise ClaimRejectedError(f"{where} refused: {self.blocked}")
        if self.incoming is None:
            yield self._learn_incoming()
            if self.incoming is None:
                raise ClaimRejectedError(f"{where} refused: no incoming channel from the peer yet")
        channel_id = self.incoming["channelId"]
        where += f" on channel {channel_id}"
        if claim.amount == 0:
            raise ClaimRejectedError(f"{where} refused: a claim of 0")
        drops = units_to_drops(claim.amount, self.options.currency_scale)
        node = self.incoming_node
        if node is None or drops > _drops(node, "Amount"):
            node = yield self.ledger.channel(channel_id)  # funded since we last read it?
            if node is None:
                raise ClaimRejectedError(f"{where} refused: the channel is no longer on the ledger")
            self.incoming_node = node
        if not verify_claim(node.get("PublicKey", ""), channel_id, drops, claim.signature):
            raise ClaimRejectedError(f"{where} ({drops} drops) refused: the signature does not verify against "
                                     f"the channel's key {node.get('PublicKey')}")
        if drops > _drops(node, "Amount"):
            raise ClaimRejectedError(f"{where} refused: {drops} drops is above the channel's amount "
                                     f"{_drops(node, 'Amount')} drops")
        total = self.incoming["base"] + claim.amount
        best = yield self.ctx.best_incoming_claim()
        if total < best.value:
            raise ClaimRejectedError(f"{where} refused: lower than the last claim ({best.value - self.incoming['base']}"
                                     " units)")
        if transfer.amount != total - best.value:
            self._log("warn", "the peer says it sent {said}, its claim adds {added} (JS: balances out of sync; "
                      "the claim counts)", said=transfer.amount, added=total - best.value)
        record = json.dumps({"channelId": channel_id, "amount": str(claim.amount), "signature": claim.signature},
                            sort_keys=True)
        if total > best.value:
            yield self.ctx.credit_claim(total, record)
        return 0

    @inlineCallbacks
    def _learn_incoming(self):
        if self.outgoing is None:
            return
        theirs = yield self._exchange_channel_ids()
        if theirs:
            yield self._link_incoming(theirs)

    # -- on the ledger ----------------------------------------------------------------------------

    @inlineCallbacks
    def claim_incoming(self, reason: str, worthwhile_only: bool = True):
        """Submit the best incoming claim (``PaymentChannelClaim``, Balance = its drops).

        :param worthwhile_only: only if fee / income <= ``maxFeePercent`` (JS ``_isClaimProfitable``;
            income = the claim's units above what the channel paid out).
        :returns: ``Deferred[TxResult | None]`` (``None``: nothing new to claim, or not worthwhile)."""
        best = yield self.ctx.best_incoming_claim()
        if best.data is None or self.incoming is None or self.ledger is None:
            return None
        claim = json.loads(best.data)
        if claim["channelId"] != self.incoming["channelId"]:
            return None
        node = yield self.ledger.channel(claim["channelId"])
        if node is None:
            return None
        drops = units_to_drops(int(claim["amount"]), self.options.currency_scale)
        if drops <= _drops(node, "Balance"):
            return None
        if worthwhile_only:
            fee = int((yield self.ledger.fee())["drops"]["open_ledger_fee"])
            income = int(claim["amount"]) - drops_to_units(_drops(node, "Balance"), self.options.currency_scale)
            fee_units = drops_to_units(fee, self.options.currency_scale)
            if income <= 0 or Decimal(fee_units) / income > self.options.max_fee_percent:
                return None
        tx = PaymentChannelClaim(account=self.address, channel=claim["channelId"], balance=str(drops),
                                 amount=str(drops), signature=claim["signature"].upper(),
                                 public_key=node["PublicKey"])
        result = yield self.ledger.submit_transaction(self.wallet, tx)
        self._log("info", "claimed {drops} drops of channel {channel} on the ledger ({reason}; tx {tx})",
                  drops=drops - _drops(node, "Balance"), channel=claim["channelId"], reason=reason, tx=result.hash)
        return result

    def _claim_on_interval(self):
        def failed(failure):
            self._log("warn", "the scheduled on-ledger claim failed: {error}", error=failure.getErrorMessage())

        return self.claim_incoming(reason="claimInterval").addErrback(failed)

    @inlineCallbacks
    def watch(self):
        """One watcher tick (JS ``ChannelWatcher``): the incoming channel got an Expiration or a
        CancelAfter (its sender is closing it): claim it now."""
        if self.incoming is None or self.ledger is None:
            return
        node = yield self.ledger.channel(self.incoming["channelId"])
        if node is not None and ("Expiration" in node or "CancelAfter" in node):
            self._log("warn", "the peer is closing channel {channel} (Expiration {expiration}); claiming it",
                      channel=self.incoming["channelId"], expiration=node.get("Expiration", node.get("CancelAfter")))
            yield self.claim_incoming(reason="the channel is closing", worthwhile_only=False)

    def admin_info(self):
        """:returns: ``{"address", "peerAddress", "currencyScale", "blocked", "outgoingChannel":
        {"channelId", "amount", "balance"} | None, "incomingChannel": {...} | None}``, drops as
        decimal strings (as the ledger last showed them)."""
        info = {"address": self.address, "peerAddress": self.peer_address,
                "currencyScale": self.options.currency_scale, "blocked": self.blocked,
                "outgoingChannel": None, "incomingChannel": None}
        for key, state, node in (("outgoingChannel", self.outgoing, self.outgoing_node),
                                 ("incomingChannel", self.incoming, self.incoming_node)):
            if state is not None:
                info[key] = {"channelId": state["channelId"],
                             "amount": None if node is None else str(_drops(node, "Amount")),
                             "balance": None if node is None else str(_drops(node, "Balance"))}
        return info


class XrpPaychanPlugin(SettlingPlugin):
    """The framework's settling plugin with the claim in a BTP TRANSFER (``ilp-plugin-xrp-paychan``
    2.4.1 ``sendMoney`` / ``_handleMoney``) instead of a MESSAGE: :meth:`verify_transfer`
    verifies and credits it through the module."""

    def __init__(self, options: dict, *, account_id: str, services, module) -> None:
        super().__init__(options, account_id=account_id, services=services, module=module)
        module.plugin = self

    def verify_transfer(self, transfer: Transfer):
        """:returns: ``Deferred[0]``: a verified claim is credited by the framework
        (``credit_claim``), so the session's money handler gets nothing more.
        :raises ClaimRejectedError: see :meth:`XrpPaychanModule.verify_claim_transfer`."""
        return self.module.verify_claim_transfer(transfer)

    def send_entries(self, entries):
        """Send one BTP MESSAGE of ``entries`` (several sub-protocols at once, as the asym
        handshake needs). :returns: ``Deferred[tuple[ProtocolDataEntry, ...]]`` of the Response."""
        return self._send_message(tuple(entries))

    def send_transfer(self, amount: int, entries: tuple):
        """Send a BTP TRANSFER of ``amount`` with ``entries``. :returns: ``Deferred[None]`` on the
        Response; errbacks T01 (not connected), BtpRemoteError (refused)."""
        session = self._session
        if session is None:
            raise PeerUnreachableError(f"BTP peer of account {self.account_id} is not connected")
        return session.request(lambda rid: Transfer(rid, amount, tuple(entries))).addCallback(lambda _: None)


def xrp_paychan_plugin(options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None):
    """The ``xrp-paychan`` ledger plugin factory: ``factory(options, *, account_id, services) ->``
    :class:`XrpPaychanPlugin` (``ledger_factory``: see :class:`XrpPaychanModule`)."""
    module = XrpPaychanModule(options, account_id=account_id, services=services, ledger_factory=ledger_factory)
    return XrpPaychanPlugin(options, account_id=account_id, services=services, module=module)
