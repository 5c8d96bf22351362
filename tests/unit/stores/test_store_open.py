"""Opening a store: where the SQLite file goes (storePath a folder, store: leveldown), why it cannot open."""

from __future__ import annotations

import os
import subprocess

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from ilptx.stores import DEFAULT_SQLITE_PATH, StoreOpenError, make_store
from ilptx.stores.memory import MemoryStore
from ilptx.stores.sqlite import SqliteStore


def test_store_path_that_is_a_directory_holds_the_sqlite_file(tmp_path):
    """store: sqlite with storePath an existing directory puts ilptx.sqlite inside it."""
    store = make_store("sqlite", str(tmp_path), {}, Clock())
    assert store.path == str(tmp_path / DEFAULT_SQLITE_PATH)


def test_leveldown_is_sqlite_in_the_store_path_folder(tmp_path):
    """store: leveldown (the reference's default) is sqlite with its file in the storePath folder, made if missing."""
    folder = tmp_path / "connector-data"
    store = make_store("leveldown", str(folder), {}, Clock())
    assert isinstance(store, SqliteStore) and store.path == str(folder / DEFAULT_SQLITE_PATH)
    assert folder.is_dir()


def test_memdown_is_memory():
    """store: memdown (the reference's in-memory store) is the memory store."""
    assert isinstance(make_store("memdown", "", {}, Clock()), MemoryStore)


@pytest.fixture
def read_only_file(tmp_path):
    """A file no one may write: mode 0444, and immutable (chattr +i) when running as root, whom modes do not stop."""
    path = tmp_path / "ro.sqlite"
    path.write_bytes(b"")
    path.chmod(0o444)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def open_error(path):
    from twisted.internet import reactor

    return SqliteStore(str(path), reactor=reactor).open()


@pytest_twisted.inlineCallbacks
def test_missing_directory_is_named(tmp_path):
    """A storePath whose directory does not exist: StoreOpenError naming storePath and the directory."""
    path = tmp_path / "nope" / "x.sqlite"
    with pytest.raises(StoreOpenError) as info:
        yield open_error(path)
    assert str(info.value) == (f"storePath: {path}: the directory {tmp_path / 'nope'} does not exist "
                               f"(sqlite: unable to open database file)")


@pytest_twisted.inlineCallbacks
def test_read_only_file_is_named(read_only_file):
    """A read-only storePath file: StoreOpenError saying so, with SQLite's message."""
    with pytest.raises(StoreOpenError) as info:
        yield open_error(read_only_file)
    assert str(info.value) == (f"storePath: {read_only_file} is a read-only file "
                               f"(sqlite: attempt to write a readonly database)")


@pytest_twisted.inlineCallbacks
def test_not_a_database_is_named(tmp_path):
    """A storePath file that is not SQLite: StoreOpenError saying so."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database file at all" * 100)
    with pytest.raises(StoreOpenError) as info:
        yield open_error(path)
    assert str(info.value) == f"storePath: {path} is not an SQLite database (sqlite: file is not a database)"
