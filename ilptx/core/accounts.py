"""Accounts: who the connector holds a bilateral relationship with.

An :class:`Account` is the validated config of one ``accounts.<id>`` entry plus its ledger
plugin. Relations follow RFC 31 / the reference connector: ``parent``, ``peer``, ``child``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

__all__ = ["Account", "Accounts", "RELATIONS"]

RELATIONS = ("parent", "peer", "child")


@dataclass(eq=False)
class Account:
    """One account.

    :ivar id: the key under ``accounts`` in the config.
    :ivar relation: ``"parent"``, ``"peer"`` or ``"child"``.
    :ivar asset_code: e.g. ``"USD"``.
    :ivar asset_scale: 0..255; amounts on this account are integers in 10^-scale units.
    :ivar ilp_address_segment: the segment a child gets under the connector's address
        (default: the account id).
    :ivar plugin_name: the configured ``plugin`` name.
    :ivar options: the plugin's ``options`` mapping.
    :ivar settings: the whole validated account config (balance, maxPacketAmount, ...).
    :ivar plugin: the :class:`ilptx.interfaces.ILedgerPlugin`, set by the composition root.
    """

    id: str
    relation: str
    asset_code: str
    asset_scale: int
    plugin_name: str = "btp"
    ilp_address_segment: Optional[str] = None
    options: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    plugin: Any = None

    @property
    def segment(self) -> str:
        """The address segment of a child: ``ilpAddressSegment`` or the account id."""
        return self.ilp_address_segment or self.id

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.relation} {self.asset_code}/{self.asset_scale}>"


class Accounts:
    """The set of accounts, by id."""

    def __init__(self, accounts: Optional[list[Account]] = None) -> None:
        self._by_id: dict[str, Account] = {}
        for account in accounts or ():
            self.add(account)

    def add(self, account: Account) -> None:
        """:raises ValueError: the id is taken."""
        if account.id in self._by_id:
            raise ValueError(f"duplicate account id {account.id!r}")
        self._by_id[account.id] = account

    def remove(self, account_id: str) -> Account:
        """:raises KeyError: no such account. :returns: the removed account."""
        return self._by_id.pop(account_id)

    def get(self, account_id: str) -> Account:
        """:raises KeyError: no such account."""
        return self._by_id[account_id]

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._by_id

    def __iter__(self) -> Iterator[Account]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def by_relation(self, relation: str) -> list[Account]:
        """:returns: the accounts with ``relation``, in config order."""
        return [a for a in self._by_id.values() if a.relation == relation]
