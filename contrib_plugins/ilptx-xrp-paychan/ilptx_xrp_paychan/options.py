"""The options of the ``xrp-paychan`` ledger plugin, with the names and defaults of
``ilp-plugin-xrp-paychan`` 2.4.1 (``index.js``, the ``PluginXrpPaychan`` constructor).

Units as in the JS plugin: ``channelAmount`` is in plugin units (ILP amounts at
``currencyScale``; default 1 XRP), ``claimInterval`` ms, ``settleDelay`` seconds,
``fundThreshold`` and ``maxFeePercent`` fractions. Every problem is one
:class:`~ilptx.errors.ConfigError` naming ``accounts.<id>.options.<key>``; the secret is never
echoed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Optional
from urllib.parse import urlsplit

from xrpl.core import addresscodec
from xrpl.wallet import Wallet

from ilptx.errors import ConfigError
from ilptx.plugins.base import int_option

__all__ = ["XrpPaychanOptions", "parse_options", "MIN_SETTLE_DELAY", "DEFAULT_CLAIM_INTERVAL_MS",
           "DEFAULT_FUND_THRESHOLD", "DEFAULT_MAX_FEE_PERCENT", "DEFAULT_CURRENCY_SCALE"]

#: seconds; the least settle delay of an incoming channel, and the default of ours (JS ``util.MIN_SETTLE_DELAY``)
MIN_SETTLE_DELAY = 3600
#: ms between on-ledger claims of the incoming channel (JS ``util.DEFAULT_CLAIM_INTERVAL``, 5 min)
DEFAULT_CLAIM_INTERVAL_MS = 5 * 60 * 1000
#: fund the outgoing channel once a claim passes this fraction of it (JS ``DEFAULT_FUND_THRESHOLD``)
DEFAULT_FUND_THRESHOLD = Decimal("0.5")
#: claim on the ledger only when fee / income <= this (JS ``opts.maxFeePercent || 0.01``)
DEFAULT_MAX_FEE_PERCENT = Decimal("0.01")
#: JS ``currencyScale`` default: drops
DEFAULT_CURRENCY_SCALE = 6


@dataclass(frozen=True)
class XrpPaychanOptions:
    """The parsed options.

    :ivar xrp_server: rippled's WebSocket URL (``xrpServer``, alias ``rippledServer``).
    :ivar secret: the XRP secret (seed) of our account.
    :ivar address: our r-address (``address``, default the secret's).
    :ivar peer_address: the peer's r-address if configured (else learned with ``xrp_address``).
    :ivar currency_scale: ``int``, the asset scale of the account's ILP amounts.
    :ivar channel_amount: ``int`` plugin units a new outgoing channel holds.
    :ivar fund_threshold: ``Decimal``, fraction of the channel after which it is funded.
    :ivar claim_interval_ms: ``int`` ms between on-ledger claims.
    :ivar settle_delay: ``int`` seconds, the SettleDelay of channels we create.
    :ivar max_fee_percent: ``Decimal``, largest fee / income ratio of an on-ledger claim.
    """

    xrp_server: str
    secret: str
    address: str
    peer_address: Optional[str]
    currency_scale: int
    channel_amount: int
    fund_threshold: Decimal
    claim_interval_ms: int
    settle_delay: int
    max_fee_percent: Decimal


def _fraction(options: dict, name: str, default: Decimal, where) -> Decimal:
    value = options.get(name, default)
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ConfigError(where(name), f"must be a number, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ConfigError(where(name), f"must be a number > 0, got {value!r}")
    return number


def _address(options: dict, name: str, where) -> Optional[str]:
    value = options.get(name)
    if value is not None and not (isinstance(value, str) and addresscodec.is_valid_classic_address(value)):
        raise ConfigError(where(name), f"must be a classic XRP address (r...), got {value!r}")
    return value


def parse_options(options: dict, account_id: str) -> XrpPaychanOptions:
    """:returns: :class:`XrpPaychanOptions` from an account's ``options``.
    :raises ConfigError: a missing or invalid option, or both ``assetScale`` and
        ``currencyScale`` (the JS plugin throws: one is an alias of the other)."""

    def where(name: str) -> str:
        return f"accounts.{account_id}.options.{name}"

    server_key = "xrpServer" if "xrpServer" in options or "rippledServer" not in options else "rippledServer"
    server = options.get(server_key)
    if not isinstance(server, str) or urlsplit(server).scheme not in ("ws", "wss") or not urlsplit(server).hostname:
        raise ConfigError(where(server_key), f"required: rippled's WebSocket URL (ws:// or wss://), got {server!r}")
    secret = options.get("secret")
    try:
        if not isinstance(secret, str):
            raise ValueError
        wallet = Wallet.from_seed(secret)
    except Exception:  # noqa: BLE001 - any failure to decode the seed is the same config error
        raise ConfigError(where("secret"), "required: the XRP secret (seed, s...) of the account") from None
    address = _address(options, "address", where) or wallet.classic_address
    if "assetScale" in options and "currencyScale" in options:
        raise ConfigError(where("assetScale"), "assetScale is an alias of currencyScale; give only one")
    scale_key = "assetScale" if "assetScale" in options else "currencyScale"
    scale = int_option(options, scale_key, DEFAULT_CURRENCY_SCALE, where, 0)
    if scale > 18:
        raise ConfigError(where(scale_key), f"must be at most 18, got {scale}")
    return XrpPaychanOptions(
        xrp_server=server, secret=secret, address=address,
        peer_address=_address(options, "peerAddress", where),
        currency_scale=scale,
        channel_amount=int_option(options, "channelAmount", 10 ** scale, where, 1),
        fund_threshold=_fraction(options, "fundThreshold", DEFAULT_FUND_THRESHOLD, where),
        claim_interval_ms=int_option(options, "claimInterval", DEFAULT_CLAIM_INTERVAL_MS, where, 1),
        settle_delay=int_option(options, "settleDelay", MIN_SETTLE_DELAY, where, 0),
        max_fee_percent=_fraction(options, "maxFeePercent", DEFAULT_MAX_FEE_PERCENT, where),
    )
