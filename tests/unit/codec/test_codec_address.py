"""ILP addresses (RFC 15, ``0015-ilp-addresses.md``): grammar, length limit, prefix matching."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from ilptx.codec.address import (
    ALLOCATION_SCHEMES,
    MAX_ADDRESS_LENGTH,
    has_address_charset,
    is_prefix_of,
    is_valid_address,
    is_valid_segment,
)

#: RFC 15's regular expression, "Address Requirements", with ``^``/``$`` made strict
#: (``\A``/``\Z``: in Python ``$`` also matches before a trailing newline).
RFC15_RE = re.compile(r"\A(?=.{1,1023}\Z)(g|private|example|peer|self|test[1-3]?|local)([.][a-zA-Z0-9_~-]+)+\Z", re.S)

VALID = [
    # RFC 15 "Example Global Allocation Scheme Addresses"
    "g.acme.bob",
    "g.us-fed.ach.0.acmebank.swx0a0.acmecorp.sales.199.~ipr.cdfa5e16-e759-4ba3-88f6-8b9dc83c1868.2",
    # RFC 30 "ILP Address" examples
    "example.top.middle.lower",
    "example.very.long.address.to.exceed.127.characters.and.trigger.a.long.form."
    "length.determinant.to.show.how.that.works.great.as.well",
    # every allocation scheme of RFC 15's table
    "g.a", "private.a", "example.a", "peer.config", "self.a", "test.a", "test1.a", "test2.a",
    "test3.a", "local.a",
    # every allowed character in a segment
    "g.ABCxyz019_~-",
    "test.-._.~",
]

INVALID = [
    "",  # empty
    "g",  # scheme with no segment
    "g.",  # empty trailing segment
    "g..bob",  # empty middle segment
    ".g.bob",  # leading period
    "g.bob.",  # trailing period
    "x.bob",  # unknown scheme
    "test4.bob",
    "G.bob",  # schemes are lower case
    "globe.bob",  # "g" must be a whole segment
    "g.bob smith",
    "g.bob!",
    "g.b\u00f6b",  # non-ASCII letter
    "g.bob\n",  # trailing newline ($ pitfall)
    "g.b\u0661",  # non-ASCII digit
    "g/bob",
]


@pytest.mark.parametrize("address", VALID)
def test_valid_addresses(address):
    """RFC 15 / RFC 30 example addresses and every scheme are valid addresses."""
    assert is_valid_address(address)
    assert has_address_charset(address)


@pytest.mark.parametrize("address", INVALID)
def test_invalid_addresses(address):
    """Addresses breaking RFC 15's grammar (scheme, empty segments, characters) are invalid."""
    assert not is_valid_address(address)


def test_allocation_schemes_match_rfc15():
    """ALLOCATION_SCHEMES is exactly RFC 15's list of schemes."""
    assert ALLOCATION_SCHEMES == {"g", "private", "example", "peer", "self", "test", "test1", "test2", "test3", "local"}


def test_length_boundary():
    """1023 characters is the longest valid address; 1024 is invalid for both checks."""
    assert MAX_ADDRESS_LENGTH == 1023
    at_limit = "g." + "a" * 1021
    over = "g." + "a" * 1022
    assert len(at_limit) == 1023 and len(over) == 1024
    assert is_valid_address(at_limit)
    assert has_address_charset(at_limit)
    assert not is_valid_address(over)
    assert not has_address_charset(over)
    many_segments = ".".join(["g"] + ["ab"] * 340)
    assert len(many_segments) == 1021 and is_valid_address(many_segments)
    assert not is_valid_address(many_segments + ".ab")


def test_has_address_charset_is_the_asn1_constraint():
    """has_address_charset allows the empty string and any mix of allowed characters, nothing else."""
    assert has_address_charset("")
    assert has_address_charset("..")
    assert has_address_charset("no-scheme.needed")
    for bad in ("g.a b", "g.\u00e9", "g.a\n", "g.a/", "g:a", "g.a\x00"):
        assert not has_address_charset(bad), bad


@pytest.mark.parametrize(
    "segment, ok",
    [("bob", True), ("~ipr", True), ("A-Z_0~9", True), ("", False), ("a.b", False), ("a b", False), ("\u00e9", False),
     ("a\n", False)],
)
def test_is_valid_segment(segment, ok):
    """is_valid_segment accepts 1+ characters of [A-Za-z0-9_~-] and nothing else."""
    assert is_valid_segment(segment) is ok


@pytest.mark.parametrize(
    "prefix, address, expected",
    [
        ("g.alice", "g.alice", True),
        ("g.alice", "g.alice.x", True),
        ("g.alice", "g.alice.x.y", True),
        ("g.alice", "g.alicebob", False),
        ("g.alice", "g.alic", False),
        ("g.alice", "g.bob.alice", False),
        ("g", "g.alice", True),
        ("g", "private.alice", False),
        ("", "g.alice", True),
        ("", "", True),
        ("g.alice.x", "g.alice", False),
    ],
)
def test_is_prefix_of(prefix, address, expected):
    """is_prefix_of matches only on a segment boundary; '' matches everything."""
    assert is_prefix_of(prefix, address) is expected


@cs.FAST
@given(st.one_of(cs.full_address, st.text(cs.ADDRESS_ALPHABET + " !/\n\u00e9", max_size=40), st.text(max_size=20)))
def test_is_valid_address_agrees_with_rfc15_regex(address):
    """is_valid_address gives the same answer as RFC 15's own regular expression."""
    assert is_valid_address(address) == (RFC15_RE.match(address) is not None)


@cs.FAST
@given(cs.full_address, st.text(cs.ADDRESS_ALPHABET.replace(".", ""), min_size=1, max_size=10))
def test_prefix_property(address, tail):
    """An address is a prefix of itself and of address.tail, but not of addresstail."""
    assert is_prefix_of(address, address)
    assert is_prefix_of(address, address + "." + tail)
    assert not is_prefix_of(address, address + tail)
    assert not is_prefix_of(address + "." + tail, address)


@cs.FAST
@given(st.one_of(cs.full_address, st.text(string.printable + "\u00e9\u0661", max_size=30)))
def test_valid_implies_charset(text):
    """Every valid address also satisfies the looser ASN.1 charset check."""
    assert not is_valid_address(text) or has_address_charset(text)
