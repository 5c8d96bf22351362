"""The chain client: a narrow :class:`IEthereumLedger` and :class:`Web3Ledger`, its web3.py
adapter over a JSON-RPC URL (the JS plugin's ``ethereumProvider``).

Transactions are signed here with ``ethereumPrivateKey`` (eth-account; EIP-155 legacy
transactions at the node's ``eth_gasPrice``, as ethers v4 in ``ilp-plugin-ethereum``
3.0.0-beta.20 sends them), one at a time (each waits for its receipt before the next takes a
nonce: parallel opens cannot collide), and each must succeed (receipt ``status`` 1).

Every web3 call blocks, so every one runs on this client's own thread pool
(:func:`twisted.internet.threads.deferToThreadPool`), never on the reactor thread: each method
returns a :class:`~twisted.internet.defer.Deferred`. Call :meth:`Web3Ledger.start` before use
and :meth:`Web3Ledger.stop` after (it joins the pool's threads).

Amounts are ``int`` wei; settling periods and block numbers ``int`` blocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import Attribute, Interface, implementer

from ilptx_ethereum.abi import UNIDIRECTIONAL_ABI
from ilptx_ethereum.claims import check_channel_id
from ilptx_ethereum.model import ChannelSnapshot

__all__ = [
    "IEthereumLedger", "Web3Ledger", "TxResult", "LedgerError", "TransactionFailedError", "LedgerUnavailableError",
]

_ZERO_ADDRESS = "0x" + "00" * 20


class LedgerError(Exception):
    """Base of the chain client's errors."""


class TransactionFailedError(LedgerError):
    """The transaction did not succeed: the contract's gas estimate reverted or the node refused
    it, e.g. for lack of ether (nothing was sent), or it was mined with ``status`` 0 (its gas is
    spent). The message names the call."""


class LedgerUnavailableError(LedgerError):
    """The JSON-RPC node could not be reached or gave no answer in time (retry later)."""


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction.

    :ivar tx_hash: ``0x`` hex.
    :ivar block_number: the block it was mined in.
    :ivar gas_used: ``int`` gas.
    :ivar effective_gas_price: ``int`` wei per gas actually paid.
    :ivar events: names of the contract's events it emitted, in order (e.g. ``("DidOpen",)``).
    """

    tx_hash: str
    block_number: int
    gas_used: int
    effective_gas_price: int
    events: tuple[str, ...]

    @property
    def fee_wei(self) -> int:
        """``gas_used × effective_gas_price``: what the transaction cost its sender, in wei."""
        return self.gas_used * self.effective_gas_price


class IEthereumLedger(Interface):
    """What a settling plugin needs from an Ethereum chain with a machinomy ``Unidirectional``
    contract. Transaction methods fire with a :class:`TxResult` once mined, or fail with
    :class:`TransactionFailedError` / :class:`LedgerUnavailableError`."""

    address = Attribute("our checksummed address (the key signing transactions)")
    contract_address = Attribute("the checksummed Unidirectional contract address")

    def start() -> None:
        """Start the client's thread pool."""

    def stop() -> None:
        """Stop the thread pool (joins its threads)."""

    def open_channel(channel_id: str, receiver: str, settling_period: int, value_wei: int) -> Deferred:
        """``open``: a channel from us to ``receiver`` holding ``value_wei``, disputable for ``settling_period``
        blocks."""

    def deposit(channel_id: str, value_wei: int) -> Deferred:
        """``deposit``: add ``value_wei`` to our channel."""

    def claim(channel_id: str, value_wei: int, signature: str) -> Deferred:
        """``claim`` (as the receiver): take min(``value_wei``, channel value); the rest returns to the sender
        and the channel is deleted."""

    def start_settling(channel_id: str) -> Deferred:
        """``startSettling`` (as the sender): the channel can be settled ``settling_period`` blocks later."""

    def settle(channel_id: str) -> Deferred:
        """``settle`` (as the sender, after the settling period): the whole value returns to us."""

    def channel(channel_id: str) -> Deferred:
        """Fires with the :class:`~ilptx_ethereum.model.ChannelSnapshot`, or ``None`` when the contract holds no
        such channel."""

    def balance(address: str) -> Deferred:
        """Fires with the ``int`` wei balance of ``address`` at the latest block."""

    def block_number() -> Deferred:
        """Fires with the latest block number (``int``)."""

    def gas_price() -> Deferred:
        """Fires with the node's gas price (``int`` wei per gas)."""

    def chain_id() -> Deferred:
        """Fires with the chain id (``int``, ``eth_chainId``; used for EIP-155 signatures)."""

    def contract_deployed() -> Deferred:
        """Fires with ``True`` when there is code at :attr:`contract_address` (a wrong address or
        chain gives ``False``)."""


@implementer(IEthereumLedger)
class Web3Ledger:
    """:class:`IEthereumLedger` over web3.py's HTTP provider.

    :param provider_url: the JSON-RPC endpoint (``ethereumProvider``), e.g. ``http://127.0.0.1:8545``.
    :param private_key: ``ethereumPrivateKey`` (``0x`` hex).
    :param contract_address: the ``Unidirectional`` contract (``contractAddress``).
    :param reactor: the reactor the Deferreds fire on (default: the global one).
    :param max_threads: size of the client's thread pool.
    :param request_timeout: seconds for one JSON-RPC request.
    :param receipt_timeout: seconds to wait for a transaction to be mined.
    :param poll_latency: seconds between receipt polls.
    """

    def __init__(self, provider_url: str, private_key: str, contract_address: str, *, reactor: Any = None,
                 max_threads: int = 4, request_timeout: float = 30.0, receipt_timeout: float = 120.0,
                 poll_latency: float = 0.05) -> None:
        from eth_account import Account
        from web3 import Web3

        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self._reactor = reactor
        self._w3 = Web3(Web3.HTTPProvider(provider_url, request_kwargs={"timeout": request_timeout}))
        self._account = Account.from_key(private_key)
        self._contract = self._w3.eth.contract(address=Web3.to_checksum_address(contract_address),
                                               abi=UNIDIRECTIONAL_ABI)
        self._receipt_timeout = receipt_timeout
        self._poll_latency = poll_latency
        self._tx_lock = threading.Lock()
        self._chain_id: Optional[int] = None
        self._event_names = {
            bytes(Web3.keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")): e["name"]
            for e in UNIDIRECTIONAL_ABI if e["type"] == "event"}
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name="ilptx-ethereum-web3")
        self.address: str = self._account.address
        self.contract_address: str = self._contract.address

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    def _defer(self, f: Callable[..., Any], *args: Any) -> Deferred:
        if not self._pool.started:
            return fail(LedgerError("the Ethereum chain client is not started (call start() first)"))
        return deferToThreadPool(self._reactor, self._pool, self._guard, f, *args)

    @staticmethod
    def _guard(f: Callable[..., Any], *args: Any) -> Any:
        import requests
        from web3.exceptions import TimeExhausted

        try:
            return f(*args)
        except (requests.ConnectionError, requests.Timeout, TimeExhausted) as exc:
            # a receipt timeout leaves the transaction's outcome open: it may still be mined
            raise LedgerUnavailableError(f"Ethereum node unavailable: {exc}") from exc

    # -- reads -------------------------------------------------------------------------------

    def channel(self, channel_id: str) -> Deferred:
        return self._defer(self._channel, channel_id)

    def _channel(self, channel_id: str) -> Optional[ChannelSnapshot]:
        sender, receiver, value, settling_period, settling_until = (
            self._contract.functions.channels(check_channel_id(channel_id)).call())
        if sender == _ZERO_ADDRESS:
            return None
        return ChannelSnapshot(channel_id, self.contract_address, sender, receiver, value, settling_period,
                               settling_until or None)

    def balance(self, address: str) -> Deferred:
        return self._defer(lambda: self._w3.eth.get_balance(self._w3.to_checksum_address(address)))

    def block_number(self) -> Deferred:
        return self._defer(lambda: self._w3.eth.block_number)

    def gas_price(self) -> Deferred:
        return self._defer(lambda: self._w3.eth.gas_price)

    def chain_id(self) -> Deferred:
        return self._defer(lambda: self._w3.eth.chain_id)

    def contract_deployed(self) -> Deferred:
        return self._defer(lambda: len(self._w3.eth.get_code(self.contract_address)) > 0)

    # -- transactions ------------------------------------------------------------------------

    def open_channel(self, channel_id: str, receiver: str, settling_period: int, value_wei: int) -> Deferred:
        return self._transact("open", value_wei, lambda: (
            check_channel_id(channel_id), self._w3.to_checksum_address(receiver), settling_period))

    def deposit(self, channel_id: str, value_wei: int) -> Deferred:
        return self._transact("deposit", value_wei, lambda: (check_channel_id(channel_id),))

    def claim(self, channel_id: str, value_wei: int, signature: str) -> Deferred:
        return self._transact("claim", 0, lambda: (
            check_channel_id(channel_id), value_wei, bytes.fromhex(signature.removeprefix("0x"))))

    def start_settling(self, channel_id: str) -> Deferred:
        return self._transact("startSettling", 0, lambda: (check_channel_id(channel_id),))

    def settle(self, channel_id: str) -> Deferred:
        return self._transact("settle", 0, lambda: (check_channel_id(channel_id),))

    def _transact(self, method: str, value_wei: int, make_args: Callable[[], tuple]) -> Deferred:
        """Check the arguments here (a bad channel id, address or hex fails the Deferred with
        ``ValueError`` before anything is sent), then send the transaction on the pool."""
        try:
            args = make_args()
        except (ValueError, TypeError) as exc:
            return fail(ValueError(f"{method}: {exc}"))
        return self._defer(self._send, method, value_wei, args)

    def _send(self, method: str, value_wei: int, args: tuple) -> TxResult:
        from web3.exceptions import ContractLogicError, Web3RPCError

        eth = self._w3.eth
        with self._tx_lock:
            if self._chain_id is None:
                self._chain_id = eth.chain_id
            call = getattr(self._contract.functions, method)(*args)
            try:
                tx = call.build_transaction({
                    "from": self.address, "value": value_wei, "gasPrice": eth.gas_price, "chainId": self._chain_id,
                    "nonce": eth.get_transaction_count(self.address, "pending"),
                })
            except ContractLogicError as exc:
                raise TransactionFailedError(f"{method} would revert (nothing sent): {exc}") from None
            except Web3RPCError as exc:  # e.g. not enough ether for value + gas
                raise TransactionFailedError(f"{method} refused by the node (nothing sent): {exc}") from None
            signed = self._account.sign_transaction(tx)
            try:
                tx_hash = eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                raise TransactionFailedError(f"{method} refused by the node (nothing sent): {exc}") from None
            receipt = eth.wait_for_transaction_receipt(tx_hash, timeout=self._receipt_timeout,
                                                       poll_latency=self._poll_latency)
        if receipt["status"] != 1:
            raise TransactionFailedError(f"{method} reverted in transaction {tx_hash.to_0x_hex()} (gas spent)")
        events = tuple(self._event_names[bytes(log["topics"][0])] for log in receipt["logs"]
                       if log["address"] == self.contract_address and log["topics"]
                       and bytes(log["topics"][0]) in self._event_names)
        return TxResult(tx_hash.to_0x_hex(), receipt["blockNumber"], receipt["gasUsed"],
                        receipt["effectiveGasPrice"], events)

