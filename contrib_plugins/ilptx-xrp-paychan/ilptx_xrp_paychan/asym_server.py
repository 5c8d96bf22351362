"""The ``xrp-asym-server`` ledger plugin: the server of ``ilp-plugin-xrp-asym-server`` 1.8.1
(``src/index.ts``, what an ILSP runs for its moneyd users) on the framework's server role
(:class:`~ilptx.settlement.server.SettlingServerPlugin`: mini-accounts, one settlement account and
one :class:`XrpAsymServerModule` per client, per-client balances in the store).

Per client ``C`` (its module's ``account_id`` is ``A:C``), answering the client's MESSAGEs as the
JS ``_handleCustomData`` does (one handler sees the whole MESSAGE, as ``channel`` and
``channel_signature`` travel together, often with ``fund_channel``):

* ``last_claim`` → JSON ``{"amount", "signature"}``: the best claim the client gave us (plugin
  units on its channel; ``{"amount": "0"}`` before any).
* ``info`` → JSON ``{"address", "account"`` (the client's ILP address), ``"currencyScale",
  "channel"?`` (the client's channel), ``"clientChannel"?}`` (ours to it).
* ``channel`` + ``channel_signature``: the client's channel, checked: on the validated ledger, the
  proof (:func:`~ilptx_xrp_paychan.asym.verify_channel_proof`, the client's ILP address decoded
  as Node does) against the channel's key, destination us, settle delay >= 3600 s, no CancelAfter,
  no Expiration, not linked to another client (``xrp-asym-server:incoming-channel:<id>``, for
  life); its source becomes the client's r-address (linked for life). The same channel again is
  re-read (after a fund); another one while it is open is refused (JS: "there is already an
  existing channel"); one whose channel is gone from the ledger is unlinked first.
* ``fund_channel`` (text: the client's r-address): once the client's channel holds at least
  ``minIncomingChannelAmount`` drops (default 10 XRP), a ``PaymentChannelCreate`` of
  ``outgoingChannelAmount`` drops (default 1 XRP; settle delay 3600 s; key HMAC-SHA256(secret,
  ``"ilp-plugin-multi-xrp-paychan-channel-keys"`` + C), as JS) to it → its id (32 bytes). Asked
  twice (in parallel or not) it opens one channel; all clients' transactions go one at a time
  through one ledger client (:class:`SharedLedger`), so sequences never collide.

Money: claims from the client are BTP TRANSFERs verified by the symmetric module's code (the key
and amount of the client's channel, never lower than the last, idempotent by the lifetime total;
a claim of 0 is acknowledged and credits nothing); after each Fulfill of a Prepare to the client
the framework pays it with a claim on our channel (a TRANSFER), funding it as the symmetric module
does. Prefunding: ``maxBalance`` (account units, default ``"0"``, as JS) is the framework's
``clientBalance.maximum``: a client must pay before its Prepares are forwarded (T04 past it).
The watcher (``channelWatcherInterval``) claims a client's channel on the ledger when it gets an
Expiration, and unlinks it when it is gone (the client may then open a new one).
"""

from __future__ import annotations

import json
from typing import Callable, Optional

from twisted.internet.defer import DeferredLock, inlineCallbacks, maybeDeferred, succeed

from ilptx.codec.btp import CONTENT_JSON, CONTENT_OCTET_STREAM, ProtocolDataEntry
from ilptx.errors import ConfigError
from ilptx.settlement import ClaimRejectedError
from ilptx.settlement.server import SettlingServerPlugin

from ilptx_xrp_paychan import asym, protocol
from ilptx_xrp_paychan.claims import channel_key, drops_to_units
from ilptx_xrp_paychan.module import ChannelNotReadyError, XrpPaychanModule, _drops
from ilptx_xrp_paychan.options import DEFAULT_CURRENCY_SCALE

__all__ = ["XrpAsymServerModule", "SharedLedger", "xrp_asym_server_plugin", "last_claim_response", "info_response",
           "SERVER_CHANNEL_KEYS_TAG",
           "DEFAULT_OUTGOING_CHANNEL_DROPS", "DEFAULT_MIN_INCOMING_CHANNEL_DROPS"]

#: the HMAC tag of the server's channel key to a client (JS ``CHANNEL_KEYS``) + the client's name
SERVER_CHANNEL_KEYS_TAG = "ilp-plugin-multi-xrp-paychan-channel-keys"
#: drops of the channel to a client (JS ``OUTGOING_CHANNEL_DEFAULT_AMOUNT``, 1 XRP)
DEFAULT_OUTGOING_CHANNEL_DROPS = 10 ** 6
#: the least a client's channel must hold before we open one to it (JS ``MIN_INCOMING_CHANNEL``, 10 XRP)
DEFAULT_MIN_INCOMING_CHANNEL_DROPS = 10 ** 7

_HANDLED = (asym.LAST_CLAIM, protocol.INFO, asym.CHANNEL, asym.FUND_CHANNEL)


def _drops_option(options: dict, key: str, default: int, account_id: str) -> int:
    raw = options.get(key, default)
    text = str(raw)
    if isinstance(raw, bool) or not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"accounts.{account_id}.options.{key}", f"must be a whole number of drops > 0, got {raw!r}")
    return int(text)


def last_claim_response(best) -> ProtocolDataEntry:
    """``last_claim`` answer: JSON ``{"amount", "signature"}`` of ``best`` (the incoming claim
    tracker's max; its ``data`` the credited record), ``{"amount": "0", "signature": null}`` before any."""
    claim = json.loads(best.data) if best.data else {"amount": "0"}
    return ProtocolDataEntry(asym.LAST_CLAIM, CONTENT_JSON, json.dumps(
        {"amount": claim["amount"], "signature": claim.get("signature")}).encode())


def info_response(module: XrpPaychanModule, ilp_address: str) -> ProtocolDataEntry:
    """``info`` answer (JS ``_extraInfo``): ``{"address", "account": ilp_address, "currencyScale",
    "channel"?`` (the client's channel), ``"clientChannel"?}`` (ours to it) of ``module``."""
    info = {"address": module.address, "account": ilp_address, "currencyScale": module.options.currency_scale}
    if module.incoming is not None:
        info["channel"] = module.incoming["channelId"]
    if module.outgoing is not None:
        info["clientChannel"] = module.outgoing["channelId"]
    return ProtocolDataEntry(protocol.INFO, CONTENT_JSON, json.dumps(info).encode())


class SharedLedger:
    """One ledger client for every client's module of one server (one key, so one sequence):
    started by the first module's ``start()``, stopped by the last one's ``stop()``, and
    ``submit_transaction`` one at a time across all of them.

    :param make: ``make(url) -> IXrpLedger``; called once, with the first module's ``xrpServer``.
    """

    def __init__(self, make: Callable) -> None:
        self._make = make
        self.ledger = None
        self._users = 0
        self.submit_lock = DeferredLock()

    def __call__(self, url: str) -> "_Lease":
        if self.ledger is None:
            self.ledger = self._make(url)
        return _Lease(self)


class _Lease:
    """One module's handle on a :class:`SharedLedger`: ``start``/``stop`` counted, submits serialised."""

    def __init__(self, shared: SharedLedger) -> None:
        self._shared, self._started = shared, False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._shared._users += 1
            if self._shared._users == 1:
                self._shared.ledger.start()

    def stop(self):
        if not self._started:
            return succeed(None)
        self._started = False
        self._shared._users -= 1
        return maybeDeferred(self._shared.ledger.stop) if self._shared._users == 0 else succeed(None)

    def submit_transaction(self, wallet, tx):
        return self._shared.submit_lock.run(self._shared.ledger.submit_transaction, wallet, tx)

    def __getattr__(self, name: str):
        return getattr(self._shared.ledger, name)


class XrpAsymServerModule(XrpPaychanModule):
    """The server side of one client (see the module docstring). Store keys as the symmetric
    module's under ``xrp-asym-server:<account>:<client>:``.

    :param min_incoming_drops: ``minIncomingChannelAmount``. Other parameters: :class:`XrpPaychanModule`.
    """

    name = "xrp-asym-server"
    channel_keys_tag = SERVER_CHANNEL_KEYS_TAG
    accept_zero_claims = True

    def __init__(self, options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None,
                 min_incoming_drops: int = DEFAULT_MIN_INCOMING_CHANNEL_DROPS) -> None:
        super().__init__(options, account_id=account_id, services=services, ledger_factory=ledger_factory)
        self.client = account_id.rpartition(":")[2]
        self._own_key = channel_key(self.options.secret, self.client, SERVER_CHANNEL_KEYS_TAG)
        self.key = self._own_key
        self.min_incoming_drops = min_incoming_drops

    @inlineCallbacks
    def connect(self, ctx):
        """As :meth:`XrpPaychanModule.connect`, with the asym handlers (whole MESSAGEs) and our key
        to this client."""
        yield super().connect(ctx)
        self.key = self._own_key
        for name in _HANDLED:
            ctx.register_sub_protocol(name, self.handle_message, whole_message=True)

    def _sub_protocols(self):
        return ()

    @inlineCallbacks
    def _link_peer(self, address: str):
        yield super()._link_peer(address)
        self.key = self._own_key

    def peer_connected(self):  # the client drives the handshake
        return None

    def _check_peer_scale(self):  # the client checks ours (info)
        return None

    def _learn_incoming(self):
        return None

    def _setup(self):
        if self.outgoing is None or self.incoming is None:
            raise ChannelNotReadyError(f"client {self.client} has no channel from us yet (no fund_channel)")
        self.ready = True
        return None

    def _announce_outgoing(self):
        """``channel``: the client re-reads our channel to it (after a fund)."""
        return self.plugin.send_entries([ProtocolDataEntry(asym.CHANNEL, CONTENT_OCTET_STREAM,
                                                           bytes.fromhex(self.outgoing["channelId"]))])

    @inlineCallbacks
    def handle_message(self, message):
        """Answer one MESSAGE from the client (see the module docstring).
        :returns: ``Deferred[list[ProtocolDataEntry]]``.
        :raises ClaimRejectedError: a check failed (F00 with the reason; nothing linked)."""
        entries = {e.protocol_name: e for e in message.protocol_data}
        if asym.LAST_CLAIM in entries:
            return [last_claim_response((yield self.ctx.best_incoming_claim()))]
        if protocol.INFO in entries:
            return [info_response(self, self.plugin.ilp_address)]
        if asym.CHANNEL in entries:
            yield self._incoming_lock.run(self._on_client_channel, entries)
        if asym.FUND_CHANNEL in entries:
            channel = yield self._fund_lock.run(self._open_to_client, entries[asym.FUND_CHANNEL])
            return [ProtocolDataEntry(asym.FUND_CHANNEL, CONTENT_OCTET_STREAM, bytes.fromhex(channel))]
        return []

    @inlineCallbacks
    def _on_client_channel(self, entries):
        channel = bytes(entries[asym.CHANNEL].data).hex().upper()
        proof = entries.get(asym.CHANNEL_SIGNATURE)
        if proof is None:
            raise ClaimRejectedError("got channel without signature of channel ownership")
        if self.incoming is not None and self.incoming["channelId"] != channel:
            if (yield self.ledger.channel(self.incoming["channelId"])) is not None:
                raise ClaimRejectedError(f"there is already an existing channel {self.incoming['channelId']} on "
                                         f"this account and it is not {channel}")
            yield self._unlink_incoming()
        node = yield self.ledger.channel(channel)
        if node is None:
            raise ClaimRejectedError(f"the client's channel {channel} is not on the validated ledger")
        if not asym.verify_channel_proof(node.get("PublicKey", ""), channel, self.plugin.ilp_address,
                                         bytes(proof.data)):
            raise ClaimRejectedError(f"invalid signature for proving channel ownership ({channel})")
        if self.peer_address is not None and node.get("Account") != self.peer_address:
            raise ClaimRejectedError(f"channel {channel} is from {node.get('Account')}, not from the client's "
                                     f"address {self.peer_address}")
        yield self._link_incoming(channel)  # settle delay, destination, closing, linked to another client
        yield self._link_peer(node["Account"])

    @inlineCallbacks
    def _open_to_client(self, entry):
        destination = protocol.decode_text(entry, "fund_channel").strip()
        if self.incoming is None or self.incoming_node is None:
            raise ClaimRejectedError("fund_channel before the client's channel (channel + channel_signature)")
        if destination != self.peer_address:
            raise ClaimRejectedError(f"fund_channel for {destination!r:.60}, not the client's address "
                                     f"{self.peer_address}")
        if self.outgoing is not None:
            return self.outgoing["channelId"]  # JS: "outgoing channel already exists"
        if _drops(self.incoming_node, "Amount") < self.min_incoming_drops:
            raise ClaimRejectedError(f"not enough has been escrowed in channel; must put {self.min_incoming_drops} "
                                     "drops on hold")
        yield self._ensure_outgoing()
        self.ready = True
        return self.outgoing["channelId"]

    @inlineCallbacks
    def _unlink_incoming(self):
        channel = self.incoming["channelId"]
        yield self.ctx.store.delete(f"{self.name}:incoming-channel:{channel}")
        yield self.ctx.store.delete(self.ctx.key("incoming-channel"))
        self.incoming = self.incoming_node = None
        self.ready = False
        self._log("warn", "the client's channel {channel} is gone from the ledger; unlinked", channel=channel)

    @inlineCallbacks
    def watch(self):
        """As :meth:`XrpPaychanModule.watch`; a client's channel gone from the ledger is unlinked."""
        if self.incoming is not None and self.ledger is not None \
                and (yield self.ledger.channel(self.incoming["channelId"])) is None:
            yield self._incoming_lock.run(self._unlink_incoming)
            return
        yield super().watch()


def server_module_options(options: dict, account_id: str) -> tuple:
    """:returns: ``(module options, min incoming drops)``: ``channelAmount`` (plugin units) from
    ``outgoingChannelAmount`` (drops). :raises ConfigError: a bad drops option."""
    outgoing = _drops_option(options, "outgoingChannelAmount", DEFAULT_OUTGOING_CHANNEL_DROPS, account_id)
    minimum = _drops_option(options, "minIncomingChannelAmount", DEFAULT_MIN_INCOMING_CHANNEL_DROPS, account_id)
    scale = options.get("assetScale", options.get("currencyScale", DEFAULT_CURRENCY_SCALE))
    mapped = dict(options)
    if isinstance(scale, int) and not isinstance(scale, bool) and 0 <= scale <= 18:
        mapped["channelAmount"] = max(1, drops_to_units(outgoing, scale))
    return mapped, minimum


def xrp_asym_server_plugin(options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None):
    """The ``xrp-asym-server`` ledger plugin factory: ``factory(options, *, account_id, services) ->``
    :class:`~ilptx.settlement.server.SettlingServerPlugin` with one :class:`XrpAsymServerModule` per
    client on one :class:`SharedLedger` (``ledger_factory``: ``callable(url) -> IXrpLedger``,
    default the rippled client). ``maxBalance`` (account units) is ``clientBalance.maximum``.
    :raises ConfigError: invalid options (mini-accounts', the module's, the drops options)."""
    module_options, minimum = server_module_options(options, account_id)
    server_options = dict(options)
    if "maxBalance" in options and "clientBalance" not in options:
        server_options["clientBalance"] = {"maximum": str(options["maxBalance"])}
    holder: dict = {}

    def make(url: str):
        return (ledger_factory or holder["default"])(url)

    shared = SharedLedger(make)

    def per_client(client_options: dict, *, account_id: str, services) -> XrpAsymServerModule:
        module = XrpAsymServerModule(module_options, account_id=account_id, services=services,
                                     ledger_factory=shared, min_incoming_drops=minimum)
        holder.setdefault("default", module._rippled)
        return module

    plugin = SettlingServerPlugin(server_options, account_id=account_id, services=services, module_factory=per_client)
    plugin.shared_ledger = shared
    return plugin
