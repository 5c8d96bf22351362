"""``@frozen_dataclass``: ``@dataclass(frozen=True, slots=True)`` on Python 3.10 and later, and a
class of the same shape on 3.9, whose ``dataclass`` has no ``slots`` (PyPy 3.9: Debian's ``pypy3``
7.3.11, issue 12 item 4).

On 3.9 the dataclass is made first, then remade with ``__slots__`` naming its fields and without
their class attributes (the defaults live on in ``__init__`` and in :func:`dataclasses.fields`),
as CPython 3.10's ``slots=True`` does. Zero-argument ``super()`` in such a class's methods would
see the first class (as on 3.10); none of ours uses it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeVar

__all__ = ["frozen_dataclass"]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform

    @dataclass_transform(frozen_default=True)
    def frozen_dataclass(cls: type[T]) -> type[T]: ...

elif sys.version_info >= (3, 10):
    frozen_dataclass = dataclass(frozen=True, slots=True)

else:

    def frozen_dataclass(cls):
        cls = dataclass(frozen=True)(cls)
        names = tuple(f.name for f in fields(cls))
        namespace = {key: value for key, value in cls.__dict__.items()
                     if key not in names and key not in ("__dict__", "__weakref__")}
        namespace["__slots__"] = names
        slotted = type(cls)(cls.__name__, cls.__bases__, namespace)
        slotted.__qualname__ = cls.__qualname__
        return slotted
