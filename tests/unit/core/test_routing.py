"""Routing table: longest-prefix match on segment boundaries."""

from ilptx.core.routing import RoutingTable


def make_table():
    table = RoutingTable()
    table.add("g.alice", "alice")
    table.add("g.alice.sub", "sub")
    table.add("g.bob", "bob")
    return table


def test_exact_and_child_addresses_match():
    """A prefix matches itself and any address below it."""
    table = make_table()
    assert table.resolve("g.alice") == "alice"
    assert table.resolve("g.alice.x.y") == "alice"


def test_longest_prefix_wins():
    """The most specific route is chosen."""
    table = make_table()
    assert table.resolve("g.alice.sub.1") == "sub"
    assert table.resolve("g.alice.subway") == "alice"


def test_no_match_across_segment_boundary():
    """``g.alice`` must not match ``g.alicebob``."""
    table = make_table()
    assert table.resolve("g.alicebob") is None
    assert table.resolve("g.alicebob.x") is None


def test_default_route_catches_the_rest():
    """The empty prefix is the default route; more specific routes still win."""
    table = make_table()
    table.set_default("parent")
    assert table.resolve("g.alicebob") == "parent"
    assert table.resolve("test.other") == "parent"
    assert table.resolve("g.bob.1") == "bob"
    table.set_default(None)
    assert table.resolve("test.other") is None


def test_remove_route():
    """Removing a route falls back to the next shorter prefix."""
    table = make_table()
    table.remove("g.alice.sub")
    assert table.resolve("g.alice.sub.1") == "alice"
