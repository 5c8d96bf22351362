"""The ``xrp-asym-client`` ledger plugin: the client of ``ilp-plugin-xrp-asym-client`` 1.6.0
(``index.js``, the moneyd uplink) on the settlement framework, byte for byte on the wire with
``ilp-plugin-xrp-asym-server`` 1.8.1. It dials the server over BTP (``server`` option) and is
the symmetric module (:class:`~ilptx_xrp_paychan.module.XrpPaychanModule`: claims, funding,
on-ledger claims, the watcher, the incoming channel checks) with the asym handshake instead of
``xrp_address`` / ``ripple_channel_id``:

1. ``info`` → the server's r-address, our ILP address, our channel and its channel to us (if
   it has them). A currencyScale other than ours blocks the account (JS: fatal).
2. The channel key: Ed25519 from HMAC-SHA256(secret, ``"ilp-plugin-xrp-stateless"`` + the
   server's address). Our channel: the one the server names if it is ours on the ledger (our
   account and key; after a lost store it is adopted), else the stored one, else one found with
   ``account_channels``, else a new ``PaymentChannelCreate`` of ``outgoingChannelAmountXRP``
   (settle delay 3600 s). A channel the server does not know yet is announced with ``channel`` +
   ``channel_signature`` (:func:`~ilptx_xrp_paychan.asym.channel_proof`).
3. ``fund_channel`` (when the server has no channel to us): its answer is the channel id; that
   channel is checked as the JS client checks it (destination us, settle delay >= 3600 s, no
   Expiration, no CancelAfter) and not linked to another account; a channel that fails is
   refused and the account blocked (JS: fatal, disconnects).
4. ``last_claim``: the best claim the server holds on our channel. If it is above what we
   signed on it (our store was lost) and its signature is ours, our channel's ``base`` is moved
   so the next claim adds the new payment on top of it (JS would throw on every payment).

A claim of 0 units is acknowledged and credits nothing (never an error). Claims after a
Fulfill and on T04 are the server's (it pays the client); the client pays when the framework
settles (``settleThreshold`` / ``send_money``). Options: ``server`` (BTP URL; without a password
the token is derived as JS does: :func:`~ilptx_xrp_paychan.asym.derive_btp_server`), ``secret``,
``address``, ``xrpServer`` (required: the JS default public servers are not this ledger),
``currencyScale`` / ``assetScale`` (default 6), ``outgoingChannelAmountXRP`` (XRP, default
``"10"``), ``claimInterval`` (ms), ``maxFeePercent``; the channel is funded (its amount doubled,
as the symmetric module does; JS adds ``outgoingChannelAmountXRP``) when a claim passes half of it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Callable, Optional

from twisted.internet.defer import inlineCallbacks

from ilptx.errors import ConfigError, PeerUnreachableError
from ilptx.settlement import ClaimRejectedError

from ilptx_xrp_paychan import asym, protocol
from ilptx_xrp_paychan.claims import drops_to_units, verify_claim, units_to_drops
from ilptx_xrp_paychan.module import XrpPaychanModule, XrpPaychanPlugin
from ilptx_xrp_paychan.options import DEFAULT_CURRENCY_SCALE, MIN_SETTLE_DELAY

__all__ = ["XrpAsymClientModule", "xrp_asym_client_plugin", "DEFAULT_OUTGOING_CHANNEL_AMOUNT_XRP"]

#: JS ``OUTGOING_CHANNEL_DEFAULT_AMOUNT_XRP``
DEFAULT_OUTGOING_CHANNEL_AMOUNT_XRP = "10"

_PASSED = ("xrpServer", "rippledServer", "secret", "address", "currencyScale", "assetScale", "claimInterval",
           "maxFeePercent")


def client_module_options(options: dict, account_id: str) -> dict:
    """The asym client's options as the symmetric module's (``channelAmount`` in plugin units from
    ``outgoingChannelAmountXRP``). :raises ConfigError: a bad ``outgoingChannelAmountXRP``."""
    raw = options.get("outgoingChannelAmountXRP", DEFAULT_OUTGOING_CHANNEL_AMOUNT_XRP)
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        xrp = Decimal(str(raw))
        drops = xrp * 10 ** 6
        if not xrp.is_finite() or drops <= 0 or drops != drops.to_integral_value():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise ConfigError(f"accounts.{account_id}.options.outgoingChannelAmountXRP",
                          f"must be an amount of XRP > 0 in whole drops, got {raw!r}") from None
    mapped = {k: options[k] for k in _PASSED if k in options}
    scale = options.get("assetScale", options.get("currencyScale", DEFAULT_CURRENCY_SCALE))
    if isinstance(scale, int) and not isinstance(scale, bool) and 0 <= scale <= 18:
        mapped["channelAmount"] = max(1, drops_to_units(int(drops), scale))
    mapped["settleDelay"] = MIN_SETTLE_DELAY
    return mapped


class XrpAsymClientModule(XrpPaychanModule):
    """:class:`XrpPaychanModule` with the handshake of ``ilp-plugin-xrp-asym-client`` 1.6.0 (see
    the module docstring). Store keys as the symmetric module's under ``xrp-asym-client:<account>:``."""

    name = "xrp-asym-client"
    channel_keys_tag = asym.STATELESS_TAG
    accept_zero_claims = True  # the JS plugins throw on it

    def __init__(self, options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None) -> None:
        super().__init__(client_module_options(options, account_id), account_id=account_id, services=services,
                         ledger_factory=ledger_factory)
        self.ilp_address: Optional[str] = None

    def _sub_protocols(self):
        return ((asym.CHANNEL, self._on_channel),)

    def _check_peer_scale(self):  # checked on info, in _setup
        if self.blocked:
            raise ClaimRejectedError(self.blocked)

    def _block(self, why: str):
        self.blocked = why
        self._log("error", "{why}; the account is blocked (fatal in ilp-plugin-xrp-asym-client)", why=why)
        return ClaimRejectedError(why)

    @inlineCallbacks
    def _setup(self):
        if self.blocked:
            raise ClaimRejectedError(self.blocked)
        entries = yield self._call(protocol.info_request())
        entry = protocol.find(entries, protocol.INFO)
        if entry is None:
            raise ValueError("the server answered info without an info entry")
        info = self._decode(asym.decode_asym_info, entry)
        if info.currency_scale != self.options.currency_scale:
            raise self._block(f"currency scale mismatch: ours is {self.options.currency_scale}, the server's is "
                              f"{info.currency_scale}")
        yield self._link_peer(info.address)
        self.ilp_address = info.account
        if info.channel is not None and (self.outgoing is None or self.outgoing["channelId"] != info.channel):
            yield self._adopt_known_channel(info.channel)
        channel = self.outgoing["channelId"] if self.outgoing else None
        yield self._ensure_outgoing()
        entries = []
        if info.channel is None or self.outgoing["channelId"] != channel:
            entries += self._channel_entries()
        client_channel = info.client_channel or (self.incoming or {}).get("channelId")
        if client_channel is None:
            entries.append(asym.fund_channel_entry(self.address))
        if entries:
            answer = yield self._call_entries(entries)
            if client_channel is None:
                funded = protocol.find(answer, asym.FUND_CHANNEL)
                if funded is None or len(bytes(funded.data)) != 32:
                    raise ValueError("the server answered fund_channel without a 32-byte channel id")
                client_channel = bytes(funded.data).hex().upper()
        try:
            yield self._link_incoming(client_channel)
        except ClaimRejectedError as exc:
            if "not on the ledger" in str(exc):
                raise
            raise self._block(str(exc)) from None
        yield self._sync_last_claim()
        self.ready = True

    def _call_entries(self, entries):
        if self.plugin is None:
            raise PeerUnreachableError("no BTP plugin to send the handshake with")
        return self.plugin.send_entries(entries)

    def _channel_entries(self):
        channel = self.outgoing["channelId"]
        return asym.channel_entries(channel, asym.sign_channel_proof(self.key, channel, self.ilp_address))

    @inlineCallbacks
    def _adopt_known_channel(self, channel_id: str):
        """The server names a channel we have not stored: use it if it is ours (a lost store)."""
        node = yield self.ledger.channel(channel_id)
        if node is None or node.get("Account") != self.address or node.get("PublicKey", "").upper() \
                != self.key.public_key:
            raise self._block(f"the server says our channel is {channel_id}, which is not a channel of ours "
                              f"(key {self.key.public_key}) on the ledger")
        best = yield self.ctx.best_outgoing_claim()
        self.outgoing = {"channelId": channel_id, "base": best.value}
        yield self._save("outgoing-channel", self.outgoing)
        self._log("info", "the server knows our channel {channel}; using it", channel=channel_id)

    @inlineCallbacks
    def _sync_last_claim(self):
        """``last_claim``: move our channel's base when the server holds more than we signed on it."""
        answer = yield self._call(asym.last_claim_entry())
        entry = protocol.find(answer, asym.LAST_CLAIM)
        if entry is None:
            return
        amount, signature = self._decode(asym.decode_last_claim, entry)
        best = yield self.ctx.best_outgoing_claim()
        ours = best.value - self.outgoing["base"]
        if amount <= ours or signature is None:
            return
        channel = self.outgoing["channelId"]
        if not verify_claim(self.key.public_key, channel, units_to_drops(amount, self.options.currency_scale),
                            signature):
            self._log("warn", "the server's last claim ({amount} units on {channel}) is not signed by us; ignored",
                      amount=amount, channel=channel)
            return
        self.outgoing = {**self.outgoing, "base": best.value - amount}
        yield self._save("outgoing-channel", self.outgoing)
        self._log("warn", "the server holds our claim for {amount} units on {channel}, above the {ours} we know "
                  "of (a lost store); our next claims add to it", amount=amount, channel=channel, ours=ours)

    def _announce_outgoing(self):
        """``channel`` + ``channel_signature``: the server re-reads our channel (after a fund)."""
        return self._call_entries(self._channel_entries())

    def _learn_incoming(self):
        return self._setup_lock.run(self._setup) if not self.blocked else None

    def _on_channel(self, entry):
        """The server's ``channel`` MESSAGE: its channel to us changed (funded); re-read it."""
        channel = bytes(entry.data).hex().upper()
        if self.incoming is None or channel != self.incoming["channelId"]:
            return []
        return self.ledger.channel(channel).addCallback(self._reread, channel)

    def _reread(self, node, channel):
        if node is not None and self.incoming is not None and self.incoming["channelId"] == channel:
            self.incoming_node = node
        return []


def xrp_asym_client_plugin(options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None):
    """The ``xrp-asym-client`` ledger plugin factory: ``factory(options, *, account_id, services) ->``
    :class:`~ilptx_xrp_paychan.module.XrpPaychanPlugin` dialling ``server`` with an
    :class:`XrpAsymClientModule`. :raises ConfigError: invalid options (no ``server``/``secret``)."""
    for key in ("server", "secret"):
        if not isinstance(options.get(key), str):
            raise ConfigError(f"accounts.{account_id}.options.{key}", "required (opts.server and opts.secret)")
    options = {**options, "server": asym.derive_btp_server(options["server"], options["secret"])}
    module = XrpAsymClientModule(options, account_id=account_id, services=services, ledger_factory=ledger_factory)
    return XrpPaychanPlugin(options, account_id=account_id, services=services, module=module)
