"""The routing table: ILP address prefix → next-hop account id (RFC 15, "Routing").

Longest-prefix match on segment boundaries: a route for ``g.alice`` matches ``g.alice`` and
``g.alice.x`` but never ``g.alicebob``. The empty prefix is the default route.

The routing table does not touch balances, rates or expiry, and does not know whether a
next hop is connected: it only answers "which account is the next hop for this address".
"""

from __future__ import annotations

from typing import Iterator, Optional

__all__ = ["RoutingTable"]


class RoutingTable:
    """A map of address prefixes to account ids with longest-prefix lookup.

    Lookup cost is one dict probe per segment of the destination, independent of the number
    of routes.
    """

    def __init__(self) -> None:
        self._routes: dict[str, str] = {}

    def add(self, target_prefix: str, account_id: str) -> None:
        """Route ``target_prefix`` (``""`` for the default route) to ``account_id``, replacing
        any earlier route for the same prefix."""
        self._routes[target_prefix] = account_id

    def remove(self, target_prefix: str) -> None:
        """Drop the route for ``target_prefix`` if there is one."""
        self._routes.pop(target_prefix, None)

    def set_default(self, account_id: Optional[str]) -> None:
        """Set (or with ``None`` clear) the default route."""
        if account_id is None:
            self._routes.pop("", None)
        else:
            self._routes[""] = account_id

    def resolve(self, destination: str) -> Optional[str]:
        """:returns: the next-hop account id for ``destination``, or ``None`` (no route)."""
        routes = self._routes
        prefix = destination
        while True:
            hop = routes.get(prefix)
            if hop is not None:
                return hop
            cut = prefix.rfind(".")
            if cut < 0:
                return routes.get("")
            prefix = prefix[:cut]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._routes.items()))

    def __len__(self) -> int:
        return len(self._routes)
