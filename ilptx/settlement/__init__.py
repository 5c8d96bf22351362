"""The payment-channel framework shared by settling ledger plugins (issue 9): the public API
for third-party settling plugins (README, "Settlement framework").

Built after ``ilp-plugin-payment-channel-framework`` 1.3.5 (its design, not its LPI1 wire
format):

* :mod:`ilptx.settlement.plugin`: :class:`~ilptx.settlement.plugin.SettlingPlugin` (the BTP
  plugin + a ledger module, ``role: client``) and :func:`~ilptx.settlement.plugin.settling_plugin_factory`
  (picks the class from ``role``);
* :mod:`ilptx.settlement.server`: :class:`~ilptx.settlement.server.SettlingServerPlugin`
  (``role: server``: mini-accounts, one module and one settlement account per client);
* :class:`ISettlementModule`: what a ledger module provides; :class:`ISettlementContext`: what
  the framework gives it;
* :mod:`ilptx.settlement.engine`: :class:`SettlementAccount`, the engine-shaped core (persisted
  payout queue with retries by idempotency key, idempotent credits, leftovers kept), with the
  kill -9 analysis of each step;

and the state a settling plugin keeps, in the connector's store
(``memory``, ``sqlite`` or ``redis``), atomic per operation and across processes on Redis:

* :class:`TransferLog`: transfers prepared / fulfilled / cancelled, incoming and outgoing,
  the four sums and a maximum / minimum checked on prepare; idempotent by transfer id;
* :class:`MaxValueTracker`: the best entry seen (e.g. the best incoming claim);
* :class:`ScaleConverter` and :func:`convert_scale`: scale conversion that keeps its leftover.

Start with ``state = make_settlement_state(store)`` (after ``store.open()``), then
``yield state.open()``. This package is not :mod:`ilptx.core.settlement` (the connector's
settlement outbox).
"""

from ilptx.settlement.engine import CLAIM, PAYMENT, ClaimRejectedError, SettlementAccount
from ilptx.settlement.interfaces import (
    IMaxValueTracker, ISettlementContext, ISettlementModule, ISettlementState, ITransferLog,
)
from ilptx.settlement.model import (
    CANCELLED, FULFILLED, PREPARED, SCALE_DROPS, SCALE_GWEI, SCALE_MSAT, SCALE_SAT, SCALE_WEI,
    DuplicateTransferError, MaxEntry, SettlementStateError, Transfer, TransferAlreadyCancelledError,
    TransferAlreadyFulfilledError, TransferLimitError, TransferLogSums, TransferNotFoundError, convert_scale,
)
from ilptx.settlement.state import make_settlement_state
from ilptx.settlement.tracking import MaxValueTracker, ScaleConverter, TransferLog

__all__ = [
    "ISettlementModule", "ISettlementContext", "SettlementAccount", "ClaimRejectedError", "CLAIM", "PAYMENT",
    "ITransferLog", "IMaxValueTracker", "ISettlementState", "TransferLog", "MaxValueTracker", "ScaleConverter",
    "make_settlement_state", "convert_scale", "Transfer", "TransferLogSums", "MaxEntry",
    "PREPARED", "FULFILLED", "CANCELLED", "SCALE_WEI", "SCALE_GWEI", "SCALE_DROPS", "SCALE_SAT", "SCALE_MSAT",
    "SettlementStateError", "DuplicateTransferError", "TransferLimitError", "TransferNotFoundError",
    "TransferAlreadyFulfilledError", "TransferAlreadyCancelledError",
]
