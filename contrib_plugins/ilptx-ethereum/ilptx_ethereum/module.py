"""The ``ethereum`` settlement module (:class:`EthereumModule`): one account and one BTP peer
(in the server role, one client: :mod:`ilptx_ethereum.server` makes one per client with
``account_id="<account>:<client>"``), wire-compatible with ``ilp-plugin-ethereum`` 3.0.0-beta.20
(``build/account.js``).

It plugs into :mod:`ilptx.settlement` (the framework keeps the payout queue, the idempotent
credits and the gwei ↔ wei leftovers); this module does the Ethereum part:

* ``info`` (JSON ``{"ethereumAddress"}``) both ways when the peer connects; the peer's address
  is linked to the account for life (another one is refused);
* paying: :meth:`EthereumModule.create_claim` opens a channel to the peer (at least
  ``outgoingChannelAmount``, settling period ``outgoingDisputePeriod``) and sends a zero claim
  on it, deposits when a claim would exceed it (then ``channelDeposit``), and signs the claim;
  :meth:`send_claim` sends it as a ``machinomy`` MESSAGE (answered ``[]``);
* being paid: a ``machinomy`` claim passes every check of the JS plugin
  (:func:`ilptx_ethereum.checks.check_incoming_claim`; the channel is re-read 20 times 250 ms
  apart on the injected clock while it is not mined or the deposit not seen), then
  ``ctx.credit_claim``; a claim that fails is refused (:class:`~ilptx.settlement.ClaimRejectedError`:
  one warning line with the reason, BTP Error F00, nothing credited);
* ``requestClose`` from the peer: we claim its channel on chain (which closes it);
  :meth:`request_close` asks the peer to do the same with ours;
* the channel watcher claims the incoming channel once its sender started settling; on
  disconnect the incoming channel is claimed when worthwhile (claim value − fee > 0, the fee
  being the node's gas price × :data:`CLAIM_GAS`).

Totals: the framework's claim totals span the account's whole life. A channel carries
``base`` (the total of earlier channels, stored with its id), so claims on it are signed for
``total − base`` and an incoming claim of channel value ``v`` is credited as ``base + v``.

Store keys (``ctx.key``: ``ethereum:<account>:…``): ``peer-address``, ``outgoing-channel`` and
``incoming-channel`` (JSON ``{"channelId", "base"[, "opened"]}``); and
``ethereum:incoming-channel:<channelId>`` = the account an incoming channel is linked to.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional

from twisted.internet.defer import DeferredLock, inlineCallbacks
from twisted.internet.task import deferLater
from zope.interface import implementer

from ilptx.codec.btp import ProtocolDataEntry
from ilptx.settlement import CLAIM, SCALE_GWEI, SCALE_WEI, ClaimRejectedError, ISettlementModule

from ilptx_ethereum import protocol
from ilptx_ethereum.abi import resolve_contract_address
from ilptx_ethereum.checks import InvalidClaimError, check_incoming_claim
from ilptx_ethereum.claims import address_of, make_claim
from ilptx_ethereum.model import Claim
from ilptx_ethereum.options import parse_options

__all__ = ["EthereumModule", "CLAIM_GAS", "CHANNEL_RETRIES", "CHANNEL_RETRY_DELAY", "INFO_RETRY_DELAYS"]

#: gas a ``claim`` transaction uses at most (the Unidirectional contract's claim takes ~50-70k):
#: the fee estimate is ``gas price × CLAIM_GAS``
CLAIM_GAS = 100_000
#: how often an incoming claim's channel is re-read while not yet mined / deposited (JS: 20 × 250 ms)
CHANNEL_RETRIES = 20
#: seconds between those reads
CHANNEL_RETRY_DELAY = 0.25
#: seconds before each new ``info`` request to a peer that refused the last one
INFO_RETRY_DELAYS = (0.1, 0.25, 0.5, 1, 2)


def _entry(sub: protocol.SubProtocolEntry) -> ProtocolDataEntry:
    return ProtocolDataEntry(sub.protocol_name, sub.content_type, sub.data)


@implementer(ISettlementModule)
class EthereumModule:
    """:class:`~ilptx.settlement.ISettlementModule` for machinomy payment channels (ETH).

    :param options: the account's options (see :mod:`ilptx_ethereum.options`).
    :param account_id: ``str``. :param services: the ``PluginServices`` (reactor, log, store).
    :param ledger_factory: ``callable(contract_address) -> IEthereumLedger`` (default: a
        :class:`~ilptx_ethereum.chain.Web3Ledger` on ``ethereumProvider`` with our key).
    :raises ConfigError: invalid options.
    """

    name = "ethereum"
    kind = CLAIM
    ledger_scale = SCALE_WEI
    asset_scale = SCALE_GWEI

    def __init__(self, options: dict, *, account_id: str, services, ledger_factory: Optional[Callable] = None) -> None:
        self.options = parse_options(options, account_id)
        self.account_id = account_id
        self.address = address_of(self.options.private_key)
        self._reactor = services.reactor
        self._ledger_factory = ledger_factory or self._web3_ledger
        self.ledger = None
        self.ctx = None
        self.peer_address: Optional[str] = None
        self.outgoing: Optional[dict] = None
        self.incoming: Optional[dict] = None
        self._outgoing_lock = DeferredLock()

    def _web3_ledger(self, contract_address: str):
        from ilptx_ethereum.chain import Web3Ledger

        return Web3Ledger(self.options.provider, self.options.private_key, contract_address, reactor=self._reactor)

    @property
    def contract_address(self) -> str:
        return self.ledger.contract_address

    # -- lifecycle --------------------------------------------------------------------------------

    @inlineCallbacks
    def connect(self, ctx):
        """Register ``info``, ``machinomy``, ``channelDeposit``, ``requestClose``; load the linked
        peer address and channels; start the chain client and check the contract is deployed
        (the JS ``getContract``: built-in address on chains 3/4/42, else ``contractAddress``).
        :raises ValueError: no contract for the chain, or no code at its address."""
        self.ctx = ctx
        for name, handler in ((protocol.INFO, self._on_info), (protocol.MACHINOMY, self._on_claim),
                              (protocol.CHANNEL_DEPOSIT, self._on_deposit),
                              (protocol.REQUEST_CLOSE, self._on_request_close)):
            ctx.register_sub_protocol(name, handler)
        self.peer_address = yield ctx.store.get(ctx.key("peer-address"))
        self.outgoing = yield self._load("outgoing-channel")
        self.incoming = yield self._load("incoming-channel")
        configured = self.options.contract_address or "0x" + "00" * 20
        self.ledger = self._ledger_factory(configured)
        self.ledger.start()
        try:
            chain_id = yield self.ledger.chain_id()
            contract = resolve_contract_address(chain_id, self.options.contract_address)
            if contract.lower() != configured.lower():
                self.ledger.stop()
                self.ledger = self._ledger_factory(contract)
                self.ledger.start()
            if not (yield self.ledger.contract_deployed()):
                raise ValueError(f"accounts.{self.account_id}.options.contractAddress: no contract code at "
                                 f"{contract} on chain {chain_id}")
        except Exception:
            self.ledger.stop()  # its thread pool, so a failed start leaves no thread behind
            self.ledger = None
            raise
        ctx.log.info("account {account}: ethereum settlement as {address} on chain {chain}, contract {contract}",
                     account=self.account_id, address=self.address, chain=chain_id, contract=contract)

    @inlineCallbacks
    def _load(self, suffix: str):
        raw = yield self.ctx.store.get(self.ctx.key(suffix))
        return json.loads(raw) if raw else None

    def _save(self, suffix: str, value: dict):
        return self.ctx.store.put(self.ctx.key(suffix), json.dumps(value, sort_keys=True))

    @inlineCallbacks
    def peer_connected(self):
        """``info`` exchange: send our address, link the peer's (for life). A peer that refuses
        it at first is asked again after each of :data:`INFO_RETRY_DELAYS` seconds (the JS
        client answers ``Account peer is not yet loaded`` until it has loaded its account,
        just after its WebSocket connected). :raises: the last attempt's error."""
        for delay in INFO_RETRY_DELAYS:
            try:
                yield self._exchange_info()
                return
            except (ClaimRejectedError, ValueError):
                raise
            except Exception as exc:
                self.ctx.log.info("account {account}: info exchange failed ({error}); again in {delay} s",
                                  account=self.account_id, error=str(exc), delay=delay)
                yield deferLater(self.ctx.clock, delay, lambda: None)
        yield self._exchange_info()

    @inlineCallbacks
    def _exchange_info(self):
        entries = yield self._call(protocol.encode_info(self.address))
        info = protocol.select(entries)
        if info is None or info.protocol_name != protocol.INFO:
            raise ValueError("the peer answered info without an info entry")
        yield self._link_peer(protocol.decode_info(info))

    @inlineCallbacks
    def _link_peer(self, address: str):
        if self.peer_address is not None and self.peer_address.lower() != address.lower():
            raise ClaimRejectedError(f"peer's Ethereum address {address} is not the one linked to account "
                                     f"{self.account_id} ({self.peer_address})")
        if self.peer_address is None:
            self.peer_address = address
            yield self.ctx.store.put(self.ctx.key("peer-address"), address)
            self.ctx.log.info("account {account}: linked to the peer's Ethereum address {address}",
                              account=self.account_id, address=address)

    @inlineCallbacks
    def disconnect(self):
        """Claim the incoming channel on chain when worthwhile, then stop the chain client."""
        if self.ledger is None:
            return
        try:
            yield self.claim_incoming(reason="disconnect")
        except Exception as exc:  # the link goes down anyway; the watcher of the next start retries
            self.ctx.log.warn("account {account}: claiming the incoming channel on disconnect failed: {error}",
                              account=self.account_id, error=str(exc))
        finally:
            self.ledger.stop()
            self.ledger = None

    # -- paying -----------------------------------------------------------------------------------

    def create_claim(self, total: int):
        """Sign a claim for the lifetime ``total`` (``int`` wei): on the current channel for
        ``total − base``; open a channel first (at least ``outgoingChannelAmount``) when there is
        none or it was closed or is settling, deposit when it holds less than the claim.
        :returns: the ``machinomy`` JSON (``str``).
        Before the first ``info`` exchange has finished, it does that exchange first.
        :raises PeerUnreachableError: no peer to learn its address from (the payout stays queued).

        One at a time (the opening of a channel back for ``minIncomingChannelAmount`` goes
        through here too): two callers never open two channels."""
        return self._outgoing_lock.run(self._create_claim, total)

    @inlineCallbacks
    def _create_claim(self, total: int):
        if self.peer_address is None:
            yield self._exchange_info()
        channel = None
        if self.outgoing is not None:
            channel = yield self.ledger.channel(self.outgoing["channelId"])
            if channel is not None and not self.outgoing.get("opened"):  # opened, then a crash before the save
                self.outgoing = dict(self.outgoing, opened=True)
                yield self._save("outgoing-channel", self.outgoing)
            elif self.outgoing.get("opened") and (channel is None or channel.is_settling):
                channel = None  # claimed by the peer or settling: open a new one
                yield self._new_outgoing()
        else:
            yield self._new_outgoing()
        channel_id, base = self.outgoing["channelId"], self.outgoing["base"]
        value = total - base
        if channel is None:
            amount = max(self.options.outgoing_channel_amount, value)
            tx = yield self.ledger.open_channel(channel_id, self.peer_address, self.options.outgoing_dispute_period,
                                                amount)
            self.outgoing = dict(self.outgoing, opened=True)
            yield self._save("outgoing-channel", self.outgoing)
            self.ctx.log.info("account {account}: opened channel {channel} to {peer} with {amount} wei (tx {tx})",
                              account=self.account_id, channel=channel_id, peer=self.peer_address, amount=amount,
                              tx=tx.tx_hash)
            yield self._send_quietly(protocol.encode_claim(self._sign(channel_id, 0)), "zero claim")
        elif channel.value < value:
            amount = max(self.options.outgoing_channel_amount, value - channel.value)
            tx = yield self.ledger.deposit(channel_id, amount)
            self.ctx.log.info("account {account}: deposited {amount} wei to channel {channel} (tx {tx})",
                              account=self.account_id, channel=channel_id, amount=amount, tx=tx.tx_hash)
            yield self._send_quietly(protocol.encode_channel_deposit(), "channelDeposit")
        return protocol.encode_claim(self._sign(channel_id, value)).data.decode("utf-8")

    @inlineCallbacks
    def _new_outgoing(self):
        """A new channel id, its base the lifetime total signed so far, stored before it is opened
        (a restart opens it with the same id)."""
        best = yield self.ctx.best_outgoing_claim()
        self.outgoing = {"channelId": "0x" + os.urandom(32).hex(), "base": best.value, "opened": False}
        yield self._save("outgoing-channel", self.outgoing)

    def _sign(self, channel_id: str, value: int) -> Claim:
        return make_claim(self.options.private_key, self.contract_address, channel_id, value)

    def _send_quietly(self, sub: protocol.SubProtocolEntry, what: str):
        def failed(failure):
            self.ctx.log.warn("account {account}: sending the {what} to the peer failed: {error}",
                              account=self.account_id, what=what, error=failure.getErrorMessage())

        return self._call(sub).addErrback(failed)

    def _call(self, sub: protocol.SubProtocolEntry):
        return self.ctx.call_peer(sub.protocol_name, sub.data, sub.content_type)

    def send_claim(self, claim: str):
        """Send ``claim`` (the ``machinomy`` JSON) to the peer. :returns: ``Deferred`` of its answer."""
        return self.ctx.call_peer(protocol.MACHINOMY, claim.encode("utf-8"), protocol.CONTENT_JSON)

    def pay(self, amount, payment_id):  # claim-based: never called
        raise NotImplementedError("ethereum settles with payment-channel claims")

    def request_close(self):
        """Ask the peer to claim (and so close) our channel to it (``requestClose``).
        :returns: ``Deferred`` of its answer."""
        return self._call(protocol.encode_request_close())

    # -- being paid -------------------------------------------------------------------------------

    @staticmethod
    def _decode(decoder: Callable, entry):
        """``decoder(entry)``; a malformed entry is refused (ClaimRejectedError naming the field)."""
        try:
            return decoder(entry)
        except protocol.MalformedMessageError as exc:
            raise ClaimRejectedError(str(exc)) from None

    @inlineCallbacks
    def _on_info(self, entry):
        yield self._link_peer(self._decode(protocol.decode_info, entry))
        return [_entry(protocol.encode_info(self.address))]

    def _on_deposit(self, entry):
        self.ctx.log.info("account {account}: the peer deposited to its channel", account=self.account_id)
        return []

    @inlineCallbacks
    def _on_request_close(self, entry):
        self.ctx.log.info("account {account}: the peer asked us to close its channel", account=self.account_id)
        yield self.claim_incoming(reason="requestClose", worthwhile_only=False)
        return []

    @inlineCallbacks
    def _on_claim(self, entry):
        claim = self._decode(protocol.decode_claim, entry)
        best = yield self.ctx.best_incoming_claim()
        incoming, previous = self.incoming, None
        if incoming is not None:
            if incoming["channelId"].lower() == claim.channel_id.lower():
                previous = (incoming["channelId"], best.value - incoming["base"])
            else:
                current = yield self.ledger.channel(incoming["channelId"])
                if current is not None:  # still open: a claim on another channel is refused by the checks
                    previous = (incoming["channelId"], best.value - incoming["base"])
        linked = yield self.ctx.store.get(f"{self.name}:incoming-channel:{claim.channel_id.lower()}")
        for attempt in range(CHANNEL_RETRIES):
            channel = yield self.ledger.channel(claim.channel_id)
            try:
                credit = check_incoming_claim(
                    claim, channel, our_address=self.address, contract_address=self.contract_address,
                    account=self.account_id, min_dispute_period=self.options.min_incoming_dispute_period,
                    previous=previous, linked_account=linked)
                break
            except InvalidClaimError as exc:
                if not exc.retryable or attempt == CHANNEL_RETRIES - 1:
                    raise ClaimRejectedError(f"claim for {claim.value} wei on channel {claim.channel_id}: "
                                             f"{type(exc).__name__}: {exc}") from None
                yield deferLater(self.ctx.clock, CHANNEL_RETRY_DELAY, lambda: None)
        if credit.first:
            base = best.value
            yield self.ctx.store.put(f"{self.name}:incoming-channel:{claim.channel_id.lower()}", self.account_id)
            self.incoming = {"channelId": claim.channel_id, "base": base}
            yield self._save("incoming-channel", self.incoming)
            self.ctx.log.info("account {account}: incoming channel {channel} ({value} wei) linked",
                              account=self.account_id, channel=claim.channel_id, value=channel.value)
            self._maybe_fund_back(channel.value)
        if credit.increment_wei > 0:
            yield self.ctx.credit_claim(self.incoming["base"] + claim.value, bytes(entry.data).decode("utf-8"))
        return []

    def _maybe_fund_back(self, incoming_value: int) -> None:
        minimum = self.options.min_incoming_channel_amount
        if minimum is None or incoming_value < minimum or self.outgoing is not None:
            return

        def failed(failure):
            self.ctx.log.warn("account {account}: opening a channel back failed: {error}",
                              account=self.account_id, error=failure.getErrorMessage())

        # the JS autoFundOutgoingChannel: a channel of outgoingChannelAmount, announced by a zero claim;
        # signing for the best total so far opens it without paying anything more
        self.ctx.best_outgoing_claim().addCallback(lambda best: self.create_claim(best.value)).addErrback(failed)

    # -- on chain ---------------------------------------------------------------------------------

    @inlineCallbacks
    def claim_incoming(self, reason: str, worthwhile_only: bool = True):
        """Claim the best incoming claim on chain (the contract pays it and closes the channel).

        :param worthwhile_only: claim only if the claim's value exceeds the fee estimate
            (gas price × :data:`CLAIM_GAS`), as the JS ``claimIfProfitable``.
        :returns: ``Deferred[TxResult | None]`` (``None``: nothing to claim or not worthwhile)."""
        best = yield self.ctx.best_incoming_claim()
        if best.data is None or self.incoming is None:
            return None
        claim = json.loads(best.data)
        if claim["channelId"].lower() != self.incoming["channelId"].lower():
            return None
        channel = yield self.ledger.channel(claim["channelId"])
        if channel is None:
            return None
        value = min(int(claim["value"]), channel.value)
        fee = (yield self.ledger.gas_price()) * CLAIM_GAS
        if value == 0 or (worthwhile_only and value - fee <= 0):
            self.ctx.log.info("account {account}: not claiming channel {channel} ({reason}): {value} wei, "
                              "fee about {fee} wei", account=self.account_id, channel=claim["channelId"],
                              reason=reason, value=value, fee=fee)
            return None
        tx = yield self.ledger.claim(claim["channelId"], int(claim["value"]), claim["signature"])
        self.ctx.log.info("account {account}: claimed channel {channel} for {value} wei on chain ({reason}; tx {tx}, "
                          "fee {fee} wei)", account=self.account_id, channel=claim["channelId"], value=value,
                          reason=reason, tx=tx.tx_hash, fee=tx.fee_wei)
        return tx

    @inlineCallbacks
    def watch(self):
        """One watcher tick: claim the incoming channel if its sender started settling."""
        if self.incoming is None:
            return
        channel = yield self.ledger.channel(self.incoming["channelId"])
        if channel is not None and channel.is_settling:
            self.ctx.log.warn("account {account}: the peer started settling channel {channel}; claiming it",
                              account=self.account_id, channel=self.incoming["channelId"])
            yield self.claim_incoming(reason="sender started settling")

    @inlineCallbacks
    def admin_info(self):
        """:returns: ``{"address", "peerAddress", "contractAddress", "outgoingChannel":
        {"channelId", "deposited", "claimed", "settling"} | None, "incomingChannel":
        {"channelId", "deposited", "bestClaim", "settling"} | None}``, wei as decimal strings
        (``deposited`` is what the channel holds now; ``None`` once closed on chain). The
        queued payouts are the framework's ``settlement.queuedPayouts``."""
        info = {"address": self.address, "peerAddress": self.peer_address,
                "contractAddress": self.contract_address if self.ledger else self.options.contract_address,
                "outgoingChannel": None, "incomingChannel": None}
        out_best = yield self.ctx.best_outgoing_claim()
        in_best = yield self.ctx.best_incoming_claim()
        for key, state, best, field in (("outgoingChannel", self.outgoing, out_best, "claimed"),
                                        ("incomingChannel", self.incoming, in_best, "bestClaim")):
            if state is None:
                continue
            channel = (yield self.ledger.channel(state["channelId"])) if self.ledger else None
            info[key] = {"channelId": state["channelId"],
                         "deposited": None if channel is None else str(channel.value),
                         field: str(max(0, best.value - state["base"])),
                         "settling": bool(channel and channel.is_settling)}
        return info
