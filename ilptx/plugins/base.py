"""What every ledger plugin does the same way: its handlers and connection listeners
(the bookkeeping half of :class:`ilptx.interfaces.ILedgerPlugin`)."""

from __future__ import annotations

from typing import Callable, Optional

from twisted.logger import LogLevel
from twisted.python.failure import Failure

__all__ = ["PluginHandlers", "resolve_all"]


class PluginHandlers:
    """Mixin: ``register_*``/``deregister_*`` handlers and connection listeners.

    Subclasses set ``account_id`` and ``_log`` (a :class:`twisted.logger.Logger`) and call
    :meth:`_notify_connection` when their counterparty comes or goes.
    """

    data_handler: Optional[Callable] = None
    money_handler: Optional[Callable] = None

    def _init_handlers(self) -> None:
        self.data_handler = None
        self.money_handler = None
        self._connection_listeners: list[Callable[[bool], object]] = []

    def register_data_handler(self, handler: Callable) -> None:
        """Set the handler of incoming ILP Prepares (``callable(bytes) -> bytes | Deferred[bytes]``).

        :raises RuntimeError: one is already registered. :raises TypeError: not callable.
        """
        if self.data_handler is not None:
            raise RuntimeError("requestHandler is already registered")
        if not callable(handler):
            raise TypeError("requestHandler must be a function")
        self.data_handler = handler

    def deregister_data_handler(self) -> None:
        """Remove the data handler."""
        self.data_handler = None

    def register_money_handler(self, handler: Callable) -> None:
        """Set the handler of incoming settlements (``callable(int) -> None | Deferred``).

        :raises RuntimeError: one is already registered. :raises TypeError: not callable.
        """
        if self.money_handler is not None:
            raise RuntimeError("moneyHandler is already registered")
        if not callable(handler):
            raise TypeError("moneyHandler must be a function")
        self.money_handler = handler

    def deregister_money_handler(self) -> None:
        """Remove the money handler."""
        self.money_handler = None

    def add_connection_listener(self, listener: Callable[[bool], object]) -> None:
        """Call ``listener(True)`` when the counterparty is there and ``listener(False)`` when it is gone."""
        self._connection_listeners.append(listener)

    def _notify_connection(self, connected: bool) -> None:
        """Tell every listener; one that fails is logged and does not stop the others."""
        for listener in list(self._connection_listeners):
            try:
                listener(connected)
            except Exception:
                self._log.failure("{account}: connection listener failed", None, LogLevel.error,
                                  account=self.account_id)


def resolve_all(waiters: list, result) -> None:
    """Fire every Deferred in ``waiters`` with ``result`` (errback if it is a Failure)."""
    for d in waiters:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
