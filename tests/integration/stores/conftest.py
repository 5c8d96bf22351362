"""Fixtures for the store tests: one redis-server per session, and a store of each kind."""

from __future__ import annotations

import itertools

import pytest
import pytest_twisted

from integration.stores.redis_server import RedisServer

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server for the whole session (tests separate themselves by key prefix)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


class StoreMaker:
    """Makes store objects of one kind over one backing (file / Redis prefix), and closes
    every one still open at teardown.

    :ivar kind: ``"memory"``, ``"sqlite"`` or ``"redis"``.
    """

    def __init__(self, kind: str, request, tmp_path) -> None:
        from twisted.internet import reactor

        self.kind = kind
        self.reactor = reactor
        self.path = str(tmp_path / "store.sqlite")
        self.prefix = f"test{next(_prefixes)}:"
        self.server = request.getfixturevalue("redis_server") if kind == "redis" else None
        self.opened = []

    def new(self, **kwargs):
        """:returns: a new, unopened store over this maker's backing."""
        if self.kind == "memory":
            from ilptx.stores.memory import MemoryStore

            return MemoryStore()
        if self.kind == "sqlite":
            from ilptx.stores.sqlite import SqliteStore

            return SqliteStore(self.path, reactor=self.reactor, **kwargs)
        from ilptx.stores.redis import RedisStore

        return RedisStore(port=self.server.port, prefix=self.prefix, reactor=self.reactor, **kwargs)

    def open(self, **kwargs):
        """:returns: a new store, opened (blocks on the real reactor)."""
        store = self.new(**kwargs)
        pytest_twisted.blockon(store.open())
        self.opened.append(store)
        return store

    def open_later(self, **kwargs):
        """:returns: ``Deferred`` firing with a new store, opened (for use inside a test)."""
        store = self.new(**kwargs)
        self.opened.append(store)
        return store.open().addCallback(lambda _: store)

    def close_all(self) -> None:
        for store in self.opened:
            pytest_twisted.blockon(store.close())
        self.opened.clear()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request, tmp_path):
    """A :class:`StoreMaker` for each kind of store."""
    maker = StoreMaker(request.param, request, tmp_path)
    yield maker
    maker.close_all()


@pytest.fixture(params=["sqlite", "redis"])
def durable_stores(request, tmp_path):
    """A :class:`StoreMaker` for each durable kind of store (memory forgets by design)."""
    maker = StoreMaker(request.param, request, tmp_path)
    yield maker
    maker.close_all()


@pytest.fixture
def store(stores):
    """An opened store of each kind, empty."""
    return stores.open()
