"""The options of the ``ethereum`` ledger plugin, with the names and defaults of
``ilp-plugin-ethereum`` 3.0.0-beta.20 (``build/index.js``, the ``EthereumPlugin`` constructor).

Units as in the JS plugin: ``outgoingChannelAmount`` and ``minIncomingChannelAmount`` are
**gwei** (the JS converts them with ``convert(gwei(x), wei())``), dispute periods are blocks,
``channelWatcherInterval`` is ms (read by :mod:`ilptx.settlement.plugin`). Every problem is one
:class:`~ilptx.errors.ConfigError` naming ``accounts.<id>.options.<key>``; the private key is
never echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from eth_utils import is_address

from ilptx.errors import ConfigError
from ilptx.plugins.base import int_option

__all__ = ["EthereumOptions", "parse_options", "GWEI", "DEFAULT_OUTGOING_CHANNEL_AMOUNT_GWEI",
           "DEFAULT_OUTGOING_DISPUTE_PERIOD", "DEFAULT_MIN_INCOMING_DISPUTE_PERIOD"]

GWEI = 10 ** 9
#: 0.05 ETH, in gwei (JS ``OUTGOING_CHANNEL_AMOUNT_GWEI``)
DEFAULT_OUTGOING_CHANNEL_AMOUNT_GWEI = 50_000_000
_BLOCKS_PER_DAY = 24 * 60 * 60 // 15
#: 6 days of 15 s blocks (JS ``OUTGOING_DISPUTE_PERIOD_BLOCKS``)
DEFAULT_OUTGOING_DISPUTE_PERIOD = 6 * _BLOCKS_PER_DAY
#: 3 days of 15 s blocks (JS ``MIN_INCOMING_DISPUTE_PERIOD_BLOCKS``)
DEFAULT_MIN_INCOMING_DISPUTE_PERIOD = 3 * _BLOCKS_PER_DAY


@dataclass(frozen=True)
class EthereumOptions:
    """The parsed options.

    :ivar private_key: ``0x`` + 64 hex digits.
    :ivar provider: the JSON-RPC URL (``http``/``https``).
    :ivar outgoing_channel_amount: ``int`` wei a new outgoing channel (or a deposit) holds at least.
    :ivar min_incoming_channel_amount: ``int`` wei an incoming channel must hold for us to open
        a channel back by ourselves, or ``None`` (the JS ``Infinity``: never).
    :ivar outgoing_dispute_period: ``int`` blocks, the settling period of channels we open.
    :ivar min_incoming_dispute_period: ``int`` blocks, the least an incoming channel may have.
    :ivar contract_address: the configured ``Unidirectional`` contract, or ``None``.
    """

    private_key: str
    provider: str
    outgoing_channel_amount: int
    min_incoming_channel_amount: Optional[int]
    outgoing_dispute_period: int
    min_incoming_dispute_period: int
    contract_address: Optional[str]


def parse_options(options: dict, account_id: str) -> EthereumOptions:
    """:returns: :class:`EthereumOptions` from an account's ``options``.
    :raises ConfigError: a missing or invalid option (key ``accounts.<id>.options.<name>``);
        a ``role`` other than ``client``/``server``; ``tokenAddress`` (not supported yet)."""

    def where(name: str) -> str:
        return f"accounts.{account_id}.options.{name}"

    role = options.get("role", "client")
    if role not in ("client", "server"):
        raise ConfigError(where("role"), f"must be 'client' (one BTP peer) or 'server' (mini-accounts, one "
                                         f"account per client), got {role!r}")
    if options.get("tokenAddress") is not None:
        raise ConfigError(where("tokenAddress"), "ERC-20 channels (TokenUnidirectional) are not supported yet")
    key = options.get("ethereumPrivateKey")
    if not isinstance(key, str) or not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", key):
        raise ConfigError(where("ethereumPrivateKey"), "required: the account's secp256k1 private key, "
                                                       "0x + 64 hex digits")
    provider = options.get("ethereumProvider")
    if not isinstance(provider, str) or urlsplit(provider).scheme not in ("http", "https") \
            or not urlsplit(provider).hostname:
        raise ConfigError(where("ethereumProvider"), f"required: the JSON-RPC URL of an Ethereum node "
                                                     f"(http:// or https://), got {provider!r}")
    contract = options.get("contractAddress")
    if contract is not None and not (isinstance(contract, str) and is_address(contract)):
        raise ConfigError(where("contractAddress"), f"must be a 0x + 40 hex digit address, got {contract!r}")
    outgoing = int_option(options, "outgoingChannelAmount", DEFAULT_OUTGOING_CHANNEL_AMOUNT_GWEI, where, 1)
    min_incoming = int_option(options, "minIncomingChannelAmount", None, where)
    return EthereumOptions(
        private_key=key if key.startswith("0x") else "0x" + key,
        provider=provider,
        outgoing_channel_amount=outgoing * GWEI,
        min_incoming_channel_amount=None if min_incoming is None else min_incoming * GWEI,
        outgoing_dispute_period=int_option(options, "outgoingDisputePeriod", DEFAULT_OUTGOING_DISPUTE_PERIOD, where, 1),
        min_incoming_dispute_period=int_option(options, "minIncomingDisputePeriod", DEFAULT_MIN_INCOMING_DISPUTE_PERIOD,
                                         where),
        contract_address=contract,
    )
