"""The options of the ``lightning`` ledger plugin. Every problem is one
:class:`~ilptx.errors.ConfigError` naming ``accounts.<id>.options.<key>``; the RPC password is
never echoed.

``electrumUrl`` (required with the Electrum backend)
    the Electrum daemon's JSON-RPC URL with its ``rpcuser``/``rpcpassword``:
    ``http://user:password@127.0.0.1:7777``.
``lnd`` (instead of ``electrumUrl``)
    ``{restUrl: https://127.0.0.1:8080, macaroonPath | macaroon (hex), tlsCertPath}``: lnd's REST
    API (:mod:`ilptx_lightning.lnd`); the files are read when the plugin is made.
``invoicePoolSize`` (default 10, as ``ilp-plugin-lightning`` 1.0.0-beta.25 sends on connect)
    amountless invoices kept at the peer (``paymentRequest``); 0 sends none.
``invoiceExpiry`` (s, default 3600: lnd's default, which the JS plugin relies on)
    how long our invoices are valid; a pool invoice is replaced ``invoiceExpiry − 300`` s after it
    was made (the JS 3300 s) or once paid.
``invoicePollInterval`` (ms, default 1000)
    how often the node is asked about the invoices we issued that are not settled yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ilptx.errors import ConfigError
from ilptx.plugins.base import int_option

__all__ = ["LightningOptions", "parse_options", "DEFAULT_POOL_SIZE", "DEFAULT_EXPIRY_S", "REPLACE_BEFORE_EXPIRY_S",
           "DEFAULT_POLL_MS"]

DEFAULT_POOL_SIZE = 10
DEFAULT_EXPIRY_S = 3600
#: a pool invoice is replaced this long before it expires (JS: made with lnd's 3600 s, replaced after 3300 s)
REPLACE_BEFORE_EXPIRY_S = 300
DEFAULT_POLL_MS = 1000


@dataclass(frozen=True)
class LightningOptions:
    """``electrum``: ``(url, user, password)`` or ``None``; ``lnd``: ``(rest url, macaroon hex, tls
    cert PEM bytes)`` or ``None``; ``pool_size``; ``expiry_s``; ``poll_ms``."""

    electrum: Optional[tuple]
    lnd: Optional[tuple]
    pool_size: int
    expiry_s: int
    poll_ms: int


def _lnd(lnd, where) -> tuple:
    if not isinstance(lnd, dict):
        raise ConfigError(where("lnd"), "must be {restUrl, macaroonPath or macaroon, tlsCertPath}")
    url = lnd.get("restUrl")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ConfigError(where("lnd.restUrl"), f"required: lnd's REST URL, https://host:8080, got {url!r}")
    macaroon = lnd.get("macaroon")
    try:
        if macaroon is None:
            with open(lnd["macaroonPath"], "rb") as f:
                macaroon = f.read().hex()
        bytes.fromhex(macaroon)
        with open(lnd["tlsCertPath"], "rb") as f:
            cert = f.read()
    except KeyError as exc:
        raise ConfigError(where(f"lnd.{exc.args[0]}"), "required") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(where("lnd"), f"cannot read the macaroon or the TLS certificate: "
                                        f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or 'not hex'}") from None
    return url, macaroon, cert


def parse_options(options: dict, account_id: str, *, need_electrum: bool = True) -> LightningOptions:
    """:returns: :class:`LightningOptions`. :param need_electrum: ``False`` when a backend is injected.
    :raises ConfigError: a missing or invalid option."""

    def where(name: str) -> str:
        return f"accounts.{account_id}.options.{name}"

    role = options.get("role", "client")
    if role != "client":
        raise ConfigError(where("role"), f"only 'client' (one BTP peer) is supported, got {role!r}")
    lnd = _lnd(options.get("lnd"), where) if options.get("lnd") is not None else None
    electrum = None
    url = options.get("electrumUrl")
    if lnd is not None and url is not None:
        raise ConfigError(where("lnd"), "give either lnd or electrumUrl, not both")
    if url is not None or (need_electrum and lnd is None):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme != "http" or not parts.hostname or not parts.port \
                or parts.username is None or parts.password is None:
            raise ConfigError(where("electrumUrl"), "required: the Electrum daemon's JSON-RPC URL with its rpcuser "
                                                    "and rpcpassword, http://user:password@127.0.0.1:7777")
        electrum = (f"http://{parts.hostname}:{parts.port}{parts.path or '/'}", parts.username, parts.password)
    expiry = int_option(options, "invoiceExpiry", DEFAULT_EXPIRY_S, where, 2 * REPLACE_BEFORE_EXPIRY_S)
    return LightningOptions(electrum=electrum, lnd=lnd,
                            pool_size=int_option(options, "invoicePoolSize", DEFAULT_POOL_SIZE, where, 0),
                            expiry_s=expiry, poll_ms=int_option(options, "invoicePollInterval", DEFAULT_POLL_MS, where, 1))
