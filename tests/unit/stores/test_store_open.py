"""Opening a store: where the SQLite file goes (storePath a folder, store: leveldown), why it cannot open."""

from __future__ import annotations

import sqlite3

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


def missing_directory(tmp_path, request):
    path = tmp_path / "nope" / "x.sqlite"
    try:  # SQLite's own words: "unable to open database file" (CPython), "Could not open database" (PyPy)
        sqlite3.connect(str(path))
    except sqlite3.OperationalError as e:
        words = str(e)
    return path, f"storePath: {path}: the directory {tmp_path / 'nope'} does not exist (sqlite: {words})"


def read_only(tmp_path, request):
    path = request.getfixturevalue("read_only_file")
    return path, f"storePath: {path} is a read-only file (sqlite: attempt to write a readonly database)"


def not_a_database(tmp_path, request):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database file at all" * 100)
    return path, f"storePath: {path} is not an SQLite database (sqlite: file is not a database)"


@pytest.mark.parametrize("case", [missing_directory, read_only, not_a_database])
@pytest_twisted.inlineCallbacks
def test_why_a_file_cannot_open_is_one_line(tmp_path, request, case):
    """A missing directory, a read-only file, not a database: open() fails with StoreOpenError naming storePath."""
    from twisted.internet import reactor

    path, expected = case(tmp_path, request)
    with pytest.raises(StoreOpenError) as info:
        yield SqliteStore(str(path), reactor=reactor).open()
    assert str(info.value) == expected
