"""IL-DCP host (RFC 31): answers a child's ``peer.config`` request.

The child's address is the connector's address, a period, and the account's
``ilpAddressSegment`` (default: the account id), as the reference connector assigns it.
"""

from __future__ import annotations

from typing import Callable

from ilptx.codec.ildcp import IldcpResponse, response_fulfill
from ilptx.codec.ilp import Fulfill, Prepare
from ilptx.core.accounts import Account
from ilptx.errors import BadRequestError

__all__ = ["IldcpHost"]


class IldcpHost:
    """:param address: callable returning the connector's current ILP address."""

    def __init__(self, address: Callable[[], str]) -> None:
        self._address = address

    def child_address(self, account: Account) -> str:
        """:returns: ``<connector address>.<segment>`` for a child account.

        :raises BadRequestError: (F00) the account is not a child.
        """
        if account.relation != "child":
            raise BadRequestError(
                f"IL-DCP is only served to child accounts; account {account.id} is a {account.relation}"
            )
        return f"{self._address()}.{account.segment}"

    def handle(self, account: Account, prepare: Prepare) -> Fulfill:
        """:returns: the Fulfill carrying the child's address, asset scale and code."""
        return response_fulfill(IldcpResponse(self.child_address(account), account.asset_scale, account.asset_code))
