"""``@frozen_dataclass`` (``ilptx.codec._dataclass``): the same class shape on every interpreter the
core supports (CPython 3.10+: ``dataclass(frozen=True, slots=True)``; PyPy 3.9: remade with slots)."""

from __future__ import annotations

import dataclasses

import pytest

from ilptx.codec._dataclass import frozen_dataclass
from ilptx.codec.ilp import Prepare
from ilptx.core.balances import BalanceState


@frozen_dataclass
class Pair:
    """Two fields, one with a default."""

    left: int
    right: str = "r"

    def both(self) -> str:
        return f"{self.left}{self.right}"


def test_fields_are_slots_and_defaults_stay():
    """Instances have no __dict__ (slots named after the fields); defaults, methods, eq, repr work."""
    pair = Pair(1)
    assert Pair.__slots__ == ("left", "right")
    assert not hasattr(pair, "__dict__")
    assert (pair.right, pair.both(), pair) == ("r", "1r", Pair(1, "r"))
    assert repr(pair) == "Pair(left=1, right='r')"
    assert [f.default for f in dataclasses.fields(Pair)] == [dataclasses.MISSING, "r"]
    assert Pair.__qualname__ == "Pair" and Pair.__doc__ == "Two fields, one with a default."


def test_instances_are_frozen():
    """Assigning a field raises FrozenInstanceError; replace() makes a new one."""
    pair = Pair(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.left = 2
    assert dataclasses.replace(pair, left=2) == Pair(2)


def test_the_codec_and_core_values_are_slotted():
    """The packet and balance values use it: no per-instance __dict__ on the hot path."""
    assert not hasattr(BalanceState(), "__dict__")
    assert "__slots__" in vars(Prepare) and dataclasses.is_dataclass(Prepare)
