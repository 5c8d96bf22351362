"""Stores (``store: memory | sqlite | redis``) implementing :class:`ilptx.interfaces.IStore`.

:func:`make_store` turns the config keys ``store``, ``storePath`` and ``storeConfig`` into a
store (not yet opened):

=========  =====================================  ==========================================
store      ``storePath``                           ``storeConfig``
=========  =====================================  ==========================================
memory     ignored                                 ignored
sqlite     the database file (default              ``synchronous``: ``FULL`` (default),
           ``ilptx.sqlite``, relative to the       ``EXTRA`` or ``NORMAL``
           working directory)
redis      optional ``redis://[:password@]host     ``host`` (127.0.0.1), ``port`` (6379),
           [:port][/db]``; ``storeConfig`` keys    ``db`` (0), ``password``, ``prefix``
           given as well take precedence           (``ilptx:``), ``instance`` (``default``),
                                                   ``connectTimeout`` (ms, 10000)
=========  =====================================  ==========================================
"""

from __future__ import annotations

from typing import Any, Mapping, Optional
from urllib.parse import unquote, urlsplit

from ilptx.errors import ConfigError

__all__ = ["make_store", "STORES", "DEFAULT_SQLITE_PATH"]

#: The names ``store`` accepts.
STORES = ("memory", "redis", "sqlite")

#: ``storePath`` of ``store: sqlite`` when none is given.
DEFAULT_SQLITE_PATH = "ilptx.sqlite"

_SQLITE_KEYS = ("synchronous",)
_REDIS_KEYS = ("host", "port", "db", "password", "prefix", "instance", "connectTimeout")


def make_store(name: str, store_path: Optional[str], store_config: Optional[Mapping[str, Any]], reactor):
    """Build the store the config asks for; the caller calls ``open()`` (and ``close()``).

    :param name: ``"memory"``, ``"sqlite"`` or ``"redis"`` (the ``store`` key).
    :param store_path: the ``storePath`` key (``""``/``None``: the store's default).
    :param store_config: the ``storeConfig`` mapping (``None``: empty).
    :param reactor: the reactor the store schedules on (the SQLite store's group commit).
    :returns: an :class:`ilptx.interfaces.IStore` provider.
    :raises ConfigError: an unknown store, an unknown or invalid ``storeConfig`` key, or a
        ``storePath`` that is not a ``redis://`` URL for ``store: redis``.
    """
    config = dict(store_config or {})
    if name == "memory":
        from ilptx.stores.memory import MemoryStore

        return MemoryStore()
    if name == "sqlite":
        _known_keys(config, _SQLITE_KEYS)
        from ilptx.stores.sqlite import SYNCHRONOUS_MODES, SqliteStore

        synchronous = config.get("synchronous", "FULL")
        if not isinstance(synchronous, str) or synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ConfigError("storeConfig.synchronous", f"must be one of {', '.join(SYNCHRONOUS_MODES)}")
        return SqliteStore(store_path or DEFAULT_SQLITE_PATH, reactor=reactor, synchronous=synchronous)
    if name == "redis":
        _known_keys(config, _REDIS_KEYS)
        options = _redis_url(store_path) if store_path else {}
        options.update(config)
        options = _redis_options(options)
        from ilptx.stores.redis import RedisStore

        return RedisStore(**options, reactor=reactor)
    raise ConfigError("store", f"unknown store {name!r}; available: {', '.join(STORES)}")


def _known_keys(config: Mapping[str, Any], known: tuple) -> None:
    for key in config:
        if key not in known:
            raise ConfigError(f"storeConfig.{key}", f"unknown key; known: {', '.join(known)}")


def _redis_url(url: str) -> dict:
    """``redis://[:password@]host[:port][/db]`` → options (only those the URL gives)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError("storePath", f"not a redis:// URL: {e}") from None
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError("storePath", "must be a redis://host[:port][/db] URL for store: redis")
    options: dict = {"host": parts.hostname}
    if port is not None:
        options["port"] = port
    if parts.password:
        options["password"] = unquote(parts.password)
    db = parts.path.strip("/")
    if db:
        if not db.isdigit():
            raise ConfigError("storePath", f"the database in a redis:// URL is a number, not {db!r}")
        options["db"] = int(db)
    return options


def _redis_options(options: dict) -> dict:
    checks = {
        "host": (lambda v: isinstance(v, str) and v != "", "must be a host name or address"),
        "port": (lambda v: type(v) is int and 0 < v < 65536, "must be a TCP port 1..65535"),
        "db": (lambda v: type(v) is int and v >= 0, "must be a database number >= 0"),
        "password": (lambda v: v is None or isinstance(v, str), "must be a string"),
        "prefix": (lambda v: isinstance(v, str), "must be a string"),
        "instance": (lambda v: isinstance(v, str) and v != "", "must be a non-empty string"),
        "connectTimeout": (lambda v: type(v) in (int, float) and v > 0, "must be a duration in ms > 0"),
    }
    for key, value in options.items():
        ok, problem = checks[key]
        if not ok(value):
            raise ConfigError(f"storeConfig.{key}", problem)
    if "connectTimeout" in options:
        options["connect_timeout"] = options.pop("connectTimeout") / 1000
    return options
