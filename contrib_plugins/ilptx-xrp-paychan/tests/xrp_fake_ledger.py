"""An in-process IXrpLedger for unit tests: the rippled double's ledger engine
(:class:`rippled_double.Ledger`, the same XRPL rules, signatures and fees), called directly
instead of over a WebSocket, on an injected clock.

Each :meth:`FakeXrpLedger.submit_transaction` signs the transaction with xrpl-py (as
:class:`~ilptx_xrp_paychan.rippled.RippledClient` does), submits the blob and closes a ledger,
so its result is validated when the Deferred fires. ``down = True`` makes every call fail with
:class:`~ilptx_xrp_paychan.rippled.LedgerUnavailableError` (a ledger that is unreachable).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from ilptx_xrp_paychan.rippled import (
    IXrpLedger, LedgerUnavailableError, TransactionFailedError, TransactionRejectedError, TxResult, sign_transaction,
)
from rippled_double import Ledger
from rippled_double.ledger import BASE_FEE


#: Unix time of the fake ledger's clock at 0 (Clock() starts before the Ripple epoch)
START = 1_700_000_000


class SharedLedger:
    """One ledger engine on ``clock`` (its seconds count from :data:`START`, Unix time);
    :meth:`client` gives an IXrpLedger on it (one per plugin)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.ledger = Ledger(lambda: START + clock.seconds())
        self.down = False
        self.submitted: list[dict[str, Any]] = []

    def fund(self, address: str, drops: int) -> None:
        self.ledger.fund(address, drops)
        self.ledger.close()

    def balance(self, address: str) -> int:
        account = self.ledger.account(address, True)
        return 0 if account is None else account.balance

    def client(self, url: str = "ws://fake") -> "FakeXrpLedger":
        return FakeXrpLedger(self)


@implementer(IXrpLedger)
class FakeXrpLedger:
    """IXrpLedger on a :class:`SharedLedger` (see the module docstring)."""

    def __init__(self, shared: SharedLedger) -> None:
        self.shared = shared
        self.started = False

    def _read(self, value):
        if self.shared.down:
            return fail(LedgerUnavailableError("the fake ledger is down"))
        return succeed(value)

    def start(self) -> None:
        self.started = True

    def stop(self):
        self.started = False
        return succeed(None)

    def server_info(self):
        return self._read({"validated_ledger": {"seq": self.shared.ledger.validated_index}})

    def fee(self):
        return self._read({"drops": {"open_ledger_fee": str(BASE_FEE)},
                           "ledger_current_index": self.shared.ledger.current_index})

    def account_info(self, address: str, ledger_index: str = "validated"):
        account = self.shared.ledger.account(address, ledger_index == "validated")
        return self._read(None if account is None else account.json())

    def account_channels(self, address: str, destination: Optional[str] = None):
        return self._read([c.account_channels_json() for c in self.shared.ledger.channels_of(address, destination, True)])

    def channel(self, channel_id: str):
        chan = self.shared.ledger.channel(channel_id, True)
        return self._read(None if chan is None else chan.json())

    def tx(self, tx_hash: str):
        record = self.shared.ledger.txs.get(tx_hash)
        return self._read(None if record is None else record.json())

    def submit(self, blob: str):
        if self.shared.down:
            return fail(LedgerUnavailableError("the fake ledger is down"))
        result = self.shared.ledger.submit(blob)
        code, digest = result["engine_result"], result["tx_json"]["hash"]
        self.shared.submitted.append(result["tx_json"])
        if code != "tesSUCCESS" and not code.startswith("tec"):
            return fail(TransactionRejectedError(code, result["engine_result_message"], digest))
        self.shared.ledger.close()
        record = self.shared.ledger.txs[digest]
        tx = record.json()
        outcome = TxResult(digest, record.ledger_index, record.result,
                           {k: v for k, v in tx.items() if k not in ("meta", "validated")}, record.meta)
        if record.result != "tesSUCCESS":
            return fail(TransactionFailedError(outcome))
        return succeed(outcome)

    def submit_transaction(self, wallet, tx):
        if self.shared.down:
            return fail(LedgerUnavailableError("the fake ledger is down"))
        account = self.shared.ledger.account(wallet.classic_address)
        blob, _ = sign_transaction(tx, wallet, fee=BASE_FEE, sequence=account.sequence if account else 1,
                                   last_ledger_sequence=self.shared.ledger.current_index + 20)
        return self.submit(blob)

    def subscribe_account(self, address, callback) -> None:
        pass

    def on_ledger_closed(self, callback) -> None:
        pass
