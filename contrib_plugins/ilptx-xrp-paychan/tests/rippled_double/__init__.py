"""A rippled WebSocket API double for the tests of ilptx-xrp-paychan: NOT rippled (see README.md)."""

from .ledger import (BASE_FEE, GENESIS_ADDRESS, GENESIS_DROPS, GENESIS_SEED, RESERVE_BASE, RESERVE_INC,
                     RIPPLE_EPOCH, TF_CLOSE, TF_RENEW, Ledger, RpcError, channel_id, tx_hash)
from .server import RippledDouble

__all__ = ["BASE_FEE", "GENESIS_ADDRESS", "GENESIS_DROPS", "GENESIS_SEED", "RESERVE_BASE", "RESERVE_INC",
           "RIPPLE_EPOCH", "TF_CLOSE", "TF_RENEW", "Ledger", "RippledDouble", "RpcError", "channel_id", "tx_hash"]
