"""Stores (``store: memory | sqlite | redis``) implementing :class:`ilptx.interfaces.IStore`.

:func:`make_store` turns the config keys ``store``, ``storePath`` and ``storeConfig`` into a
store (not yet opened):

=========  =====================================  ==========================================
store      ``storePath``                           ``storeConfig``
=========  =====================================  ==========================================
memory     ignored                                 ignored
sqlite     the database file (default              ``synchronous``: ``FULL`` (default),
           ``ilptx.sqlite``, relative to the       ``EXTRA`` or ``NORMAL``
           working directory), or a directory
           that holds ``ilptx.sqlite``
redis      optional ``redis://[:password@]host     ``host`` (127.0.0.1), ``port`` (6379),
           [:port][/db]``; ``storeConfig`` keys    ``db`` (0), ``password``, ``prefix``
           given as well take precedence           (``ilptx:``), ``instance`` (``default``),
                                                   ``connectTimeout`` (ms, 10000)
=========  =====================================  ==========================================

The reference connector's built-in store names are accepted, with a warning: ``leveldown``
(its default) is ``sqlite`` with ``storePath`` as the folder (created if missing, as
leveldown does) holding ``ilptx.sqlite``; ``memdown`` is ``memory``.

A store that cannot be opened fails ``open()`` with :class:`StoreOpenError`, one line naming
the key: a missing directory, a read-only file or filesystem, a file that is not an SQLite
database, or one another process holds (each SQLite file belongs to one connector process).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional
from urllib.parse import unquote, urlsplit

from twisted.logger import Logger

from ilptx.errors import ConfigError

__all__ = ["make_store", "STORES", "DEFAULT_SQLITE_PATH", "REFERENCE_STORES", "StoreOpenError"]

_log = Logger(namespace="ilptx.stores")

#: The names ``store`` accepts.
STORES = ("memory", "redis", "sqlite")

#: The reference connector's built-in stores → ours.
REFERENCE_STORES = {"leveldown": "sqlite", "memdown": "memory"}


class StoreOpenError(ConfigError):
    """The store cannot be opened; ``str(error)`` is ``"<key>: <problem>"``, e.g.
    ``"storePath: /var/x.sqlite is a read-only file (sqlite: attempt to write a readonly database)"``."""

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
    if name in REFERENCE_STORES:
        _log.warn("store: {name} is the reference connector's store; using store: {ours}{where}", name=name,
                  ours=REFERENCE_STORES[name],
                  where=" with its file ilptx.sqlite in the folder storePath" if name == "leveldown" else "")
        if name == "leveldown":
            store_path = _leveldown_folder(store_path)
        name = REFERENCE_STORES[name]
    if name == "memory":
        if store_path:
            _log.warn("storePath is set but store is memory: nothing is kept after exit (store: sqlite keeps it "
                      "in storePath; the reference's default store, leveldown, maps to it)")
        from ilptx.stores.memory import MemoryStore

        return MemoryStore()
    if name == "sqlite":
        _known_keys(config, _SQLITE_KEYS)
        from ilptx.stores.sqlite import SYNCHRONOUS_MODES, SqliteStore

        synchronous = config.get("synchronous", "FULL")
        if not isinstance(synchronous, str) or synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ConfigError("storeConfig.synchronous", f"must be one of {', '.join(SYNCHRONOUS_MODES)}")
        path = store_path or DEFAULT_SQLITE_PATH
        if os.path.isdir(path):  # as a reference config holds a folder for leveldown
            path = os.path.join(path, DEFAULT_SQLITE_PATH)
        return SqliteStore(path, reactor=reactor, synchronous=synchronous)
    if name == "redis":
        _known_keys(config, _REDIS_KEYS)
        options = _redis_url(store_path) if store_path else {}
        options.update(config)
        options = _redis_options(options)
        from ilptx.stores.redis import RedisStore

        return RedisStore(**options, reactor=reactor)
    raise ConfigError("store", f"unknown store {name!r}; available: {', '.join(STORES)}")


def _leveldown_folder(store_path: Optional[str]) -> str:
    """The folder of ``store: leveldown``, made if missing (one level, as leveldown does).

    :raises ConfigError: (``storePath``) it cannot be made.
    """
    folder = store_path or "."
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except OSError as e:
        raise ConfigError("storePath", f"cannot create the folder {folder}: {e.strerror}") from None
    if not os.path.isdir(folder):
        raise ConfigError("storePath", f"{folder} is not a folder (store: leveldown keeps its data in a folder)")
    return folder


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
