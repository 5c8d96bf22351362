"""make_store: the ``store`` / ``storePath`` / ``storeConfig`` keys to a store object (none opened)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from ilptx.errors import ConfigError
from ilptx.interfaces import IStore
from ilptx.stores import DEFAULT_SQLITE_PATH, make_store
from ilptx.stores.memory import MemoryStore
from ilptx.stores.redis import RedisStore
from ilptx.stores.sqlite import SqliteStore


def test_memory():
    """store: memory ignores storePath and storeConfig."""
    store = make_store("memory", "ignored", {"anything": 1}, Clock())
    assert isinstance(store, MemoryStore) and verifyObject(IStore, store)


def test_sqlite_default_path():
    """store: sqlite without storePath uses ilptx.sqlite and synchronous FULL."""
    store = make_store("sqlite", "", None, Clock())
    assert isinstance(store, SqliteStore) and verifyObject(IStore, store)
    assert store.path == DEFAULT_SQLITE_PATH == "ilptx.sqlite"
    assert store._db.synchronous == "FULL"


def test_sqlite_path_and_synchronous():
    """storePath is the file; storeConfig.synchronous is passed on (case-insensitive)."""
    store = make_store("sqlite", "/var/lib/ilptx/state.db", {"synchronous": "normal"}, Clock())
    assert store.path == "/var/lib/ilptx/state.db" and store._db.synchronous == "NORMAL"


@pytest.mark.parametrize("config, key", [
    ({"synchronous": "OFF"}, "storeConfig.synchronous"),
    ({"synchronous": 2}, "storeConfig.synchronous"),
    ({"journal": "wal"}, "storeConfig.journal"),
])
def test_sqlite_bad_config(config, key):
    """A durable-less synchronous mode or an unknown key is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as caught:
        make_store("sqlite", "x.db", config, Clock())
    assert caught.value.key == key


def test_redis_defaults():
    """store: redis defaults to 127.0.0.1:6379 db 0, prefix ilptx:, instance default, 10 s to connect."""
    store = make_store("redis", "", {}, Clock())
    assert isinstance(store, RedisStore) and verifyObject(IStore, store)
    assert (store.host, store.port, store.db, store.password, store.prefix, store.instance) == (
        "127.0.0.1", 6379, 0, None, "ilptx:", "default")
    assert store.connect_timeout == 10.0


def test_redis_config_keys():
    """Every storeConfig key reaches the store."""
    store = make_store("redis", None, {"host": "redis.local", "port": 6380, "db": 2, "password": "pw",
                                       "prefix": "c1:", "instance": "node-a", "connectTimeout": 2500}, Clock())
    assert (store.host, store.port, store.db, store.password, store.prefix, store.instance) == (
        "redis.local", 6380, 2, "pw", "c1:", "node-a")
    assert store.connect_timeout == 2.5


def test_redis_url():
    """storePath redis://[:password@]host:port/db sets host, port, password and db."""
    store = make_store("redis", "redis://:s%40cret@10.0.0.5:6390/4", None, Clock())
    assert (store.host, store.port, store.db, store.password) == ("10.0.0.5", 6390, 4, "s@cret")
    bare = make_store("redis", "redis://cache", None, Clock())
    assert (bare.host, bare.port, bare.db, bare.password) == ("cache", 6379, 0, None)


def test_redis_config_overrides_url():
    """storeConfig keys given as well win over the URL."""
    store = make_store("redis", "redis://a:1/1", {"port": 2, "db": 5}, Clock())
    assert (store.host, store.port, store.db) == ("a", 2, 5)


@pytest.mark.parametrize("path, config, key", [
    ("http://a:1/0", {}, "storePath"),
    ("redis://a:1/x", {}, "storePath"),
    ("redis://a:99999/0", {}, "storePath"),
    ("redis:///0", {}, "storePath"),
    ("", {"port": "6379"}, "storeConfig.port"),
    ("", {"port": 0}, "storeConfig.port"),
    ("", {"db": -1}, "storeConfig.db"),
    ("", {"host": ""}, "storeConfig.host"),
    ("", {"instance": ""}, "storeConfig.instance"),
    ("", {"prefix": 3}, "storeConfig.prefix"),
    ("", {"hots": "x"}, "storeConfig.hots"),
    ("", {"connectTimeout": 0}, "storeConfig.connectTimeout"),
    ("", {"connectTimeout": "1s"}, "storeConfig.connectTimeout"),
])
def test_redis_bad_config(path, config, key):
    """Bad URLs and bad or unknown storeConfig keys are ConfigErrors naming the key."""
    with pytest.raises(ConfigError) as caught:
        make_store("redis", path, config, Clock())
    assert caught.value.key == key


def test_unknown_store():
    """An unknown store name lists the available ones."""
    with pytest.raises(ConfigError) as caught:
        make_store("ilp-store-nope", "", {}, Clock())
    assert str(caught.value) == "store: unknown store 'ilp-store-nope'; available: memory, redis, sqlite"
