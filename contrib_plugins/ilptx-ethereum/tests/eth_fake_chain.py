"""An in-memory machinomy Unidirectional chain for tests without an EVM: FakeChain, and
FakeChain.client(key) providing IEthereumLedger synchronously (every Deferred has fired).

It applies the contract's rules (Unidirectional.sol ^0.4.24): open needs a fresh id and
moves msg.value into the channel; deposit is the sender's; claim is the receiver's, needs the
sender's signature over the claim digest (checked with ilptx_ethereum.claims.recover_signer),
pays min(payment, value), returns the rest and deletes the channel; startSettling is the
sender's. Gas is free (fee 0)."""

from __future__ import annotations

import dataclasses
import itertools

from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from ilptx_ethereum.chain import IEthereumLedger, TransactionFailedError, TxResult
from ilptx_ethereum.claims import InvalidSignatureError, address_of, recover_signer
from ilptx_ethereum.model import ChannelSnapshot, Claim

CONTRACT = "0x" + "c0" * 20


class FakeChain:
    """Balances (wei) and channels; ``chain_id`` 1337; the contract at :data:`CONTRACT`; ``gas_price`` wei per
    gas (what ``gas_price()`` reports; transactions themselves cost nothing here)."""

    def __init__(self, chain_id: int = 1337, gas_price: int = 1) -> None:
        self.chain_id, self.gas_price = chain_id, gas_price
        self.balances: dict[str, int] = {}
        self.channels: dict[str, ChannelSnapshot] = {}
        self.block = 1
        self.clients: list = []  # every FakeLedgerClient made, to check they were stopped
        self._tx = itertools.count(1)

    def fund(self, key: str, wei: int) -> None:
        address = address_of(key)
        self.balances[address] = self.balances.get(address, 0) + wei

    def client(self, key: str):
        """:returns: an :class:`IEthereumLedger` for ``key`` (the ``ledger_factory`` of EthereumModule)."""
        return lambda contract_address: FakeLedgerClient(self, key, contract_address)

    def tx(self, method: str, f) -> object:
        try:
            events = f()
        except (ValueError, KeyError) as exc:
            return fail(TransactionFailedError(f"{method} would revert (nothing sent): {exc}"))
        self.block += 1
        return succeed(TxResult(f"0x{next(self._tx):064x}", self.block, 0, 0, events))


@implementer(IEthereumLedger)
class FakeLedgerClient:
    def __init__(self, chain: FakeChain, key: str, contract_address: str) -> None:
        self.chain, self.address, self.contract_address = chain, address_of(key), contract_address
        self.running = False
        chain.clients.append(self)

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def _debit(self, wei: int) -> None:
        if self.chain.balances.get(self.address, 0) < wei:
            raise ValueError(f"{self.address} lacks {wei} wei")
        self.chain.balances[self.address] -= wei

    def open_channel(self, channel_id, receiver, settling_period, value_wei):
        def do():
            if channel_id in self.chain.channels:
                raise ValueError(f"channel {channel_id} exists")
            self._debit(value_wei)
            self.chain.channels[channel_id] = ChannelSnapshot(channel_id, self.contract_address, self.address,
                                                              receiver, value_wei, settling_period, None)
            return ("DidOpen",)
        return self.chain.tx("open", do)

    def deposit(self, channel_id, value_wei):
        def do():
            channel = self.chain.channels[channel_id]
            if channel.sender != self.address:
                raise ValueError("not the sender")
            self._debit(value_wei)
            self.chain.channels[channel_id] = dataclasses.replace(channel, value=channel.value + value_wei)
            return ("DidDeposit",)
        return self.chain.tx("deposit", do)

    def claim(self, channel_id, value_wei, signature):
        def do():
            channel = self.chain.channels[channel_id]
            if channel.receiver.lower() != self.address.lower():
                raise ValueError("not the receiver")
            try:
                signer = recover_signer(Claim(channel_id, signature, value_wei, self.contract_address))
            except InvalidSignatureError as exc:
                raise ValueError(str(exc)) from None
            if signer != channel.sender:
                raise ValueError("signature is not the sender's")
            paid = min(value_wei, channel.value)
            balances = self.chain.balances
            balances[self.address] = balances.get(self.address, 0) + paid
            balances[channel.sender] = balances.get(channel.sender, 0) + channel.value - paid
            del self.chain.channels[channel_id]
            return ("DidClaim",)
        return self.chain.tx("claim", do)

    def start_settling(self, channel_id):
        def do():
            channel = self.chain.channels[channel_id]
            if channel.sender != self.address:
                raise ValueError("not the sender")
            until = self.chain.block + channel.settling_period
            self.chain.channels[channel_id] = dataclasses.replace(channel, settling_until=until)
            return ("DidStartSettling",)
        return self.chain.tx("startSettling", do)

    def settle(self, channel_id):  # pragma: no cover - not needed by these tests
        return fail(NotImplementedError("settle"))

    def channel(self, channel_id):
        return succeed(self.chain.channels.get(channel_id))

    def balance(self, address):
        return succeed(self.chain.balances.get(address, 0))

    def block_number(self):
        return succeed(self.chain.block)

    def gas_price(self):
        return succeed(self.chain.gas_price)

    def chain_id(self):
        return succeed(self.chain.chain_id)

    def contract_deployed(self):
        return succeed(self.contract_address.lower() == CONTRACT.lower())
