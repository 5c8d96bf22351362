"""The public toolkit for writing a ledger plugin (:class:`ilptx.interfaces.ILedgerPlugin`).

* :class:`PluginServices` -- what the connector hands every plugin factory.
* :class:`PluginHandlers` -- the bookkeeping half of ``ILedgerPlugin`` that every plugin does
  the same way: one data handler, one money handler, connection listeners.
* :func:`resolve_all` -- fire a list of waiting Deferreds with one outcome.

A third-party plugin imports these (and :mod:`ilptx.interfaces`, :mod:`ilptx.testing`),
never a private name of ilptx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ilptx.errors import ConfigError

__all__ = ["PluginServices", "PluginHandlers", "resolve_all", "int_option"]


@dataclass(frozen=True)
class PluginServices:
    """What the connector gives a ledger plugin factory, the same for every plugin::

        factory(options: dict, *, account_id: str, services: PluginServices) -> ILedgerPlugin

    :ivar reactor: the reactor the plugin must use for all I/O and time: it provides
        ``IReactorTime``, ``IReactorTCP``, ``IReactorSSL`` and a name resolver (the global
        reactor under twistd; :class:`twisted.internet.testing.MemoryReactorClock` in tests).
        Never import the global reactor in a plugin.
    :ivar log: a :class:`twisted.logger.Logger` in namespace ``ilptx.account.<id>``; put
        ``account=<id>`` in events so operators can filter them.
    :ivar store: the connector's :class:`ilptx.interfaces.IStore`. A plugin keeps its own
        durable state there with ``get``/``put``/``delete``/``keys`` (``str`` values) under
        keys that start with its plugin name and account id (``mini-accounts:<id>:...``); the
        balance methods belong to the connector.
    """

    reactor: Any
    log: Logger
    store: Any

    def settlement_state(self):
        """:returns: the :class:`ilptx.settlement.interfaces.ISettlementState` kept in
        :attr:`store` (transfer logs, max-value trackers, scale leftovers; see
        :func:`ilptx.settlement.make_settlement_state`); call its ``open()`` once the store is
        open (in the plugin's ``connect``). :raises TypeError: a store with no such backend."""
        from ilptx.settlement.state import make_settlement_state

        return make_settlement_state(self.store)


class PluginHandlers:
    """Mixin for a ledger plugin: the ``register_*``/``deregister_*`` handler methods and the
    connection listeners of :class:`ilptx.interfaces.ILedgerPlugin`, done once.

    Use it like this::

        @implementer(ILedgerPlugin)
        class MyPlugin(PluginHandlers):
            def __init__(self, options, *, account_id, services):
                self.account_id = account_id     # required by ILedgerPlugin
                self._log = services.log         # used to report a failing listener
                self._init_handlers()            # before anything registers

            # ... connect, disconnect, is_connected, send_data, send_money ...
            # when the counterparty comes or goes: self._notify_connection(True / False)
            # an incoming Prepare: self.data_handler(prepare_bytes) -> bytes | Deferred[bytes]
            # an incoming settlement: self.money_handler(amount) -> None | Deferred[None]

    :ivar data_handler: the registered data handler, or ``None``: a plugin answers an
        incoming Prepare then with a T01/F02 error of its own (the connector registers one
        before :meth:`connect`).
    :ivar money_handler: the registered money handler, or ``None``.
    """

    account_id: str  # set by the subclass
    _log: Logger  # set by the subclass
    data_handler: Optional[Callable] = None
    money_handler: Optional[Callable] = None

    def _init_handlers(self) -> None:
        """Start with no handlers and no listeners; call it from ``__init__``."""
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
        """Tell every listener that the counterparty is there (``True``) or gone (``False``).

        Call it on each change only. A listener that raises is logged (at error, on
        ``self._log``) and does not stop the others.
        """
        for listener in list(self._connection_listeners):
            try:
                listener(connected)
            except Exception:
                self._log.failure("{account}: connection listener failed", None, LogLevel.error,
                                  account=self.account_id)


def resolve_all(waiters: list, result) -> None:
    """Fire every Deferred in ``waiters`` with ``result``, e.g. everyone waiting for
    ``connect()`` once the link is up (or could not come up).

    :param waiters: ``list[Deferred]``; take it out of your object before calling, since a
        callback may append new waiters.
    :param result: a value (``callback``) or a :class:`~twisted.python.failure.Failure`
        (``errback``; each waiter gets the same Failure).
    """
    for d in waiters:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)


def int_option(options: dict, name: str, default, where: Callable[[str], str], minimum: int = 0):
    """A whole-number option of a ledger plugin (amounts in base units, seconds, counts): an
    ``int`` or a decimal string of digits (as the JS plugins take them), ``>= minimum``.

    :param default: returned when ``name`` is absent (``None`` allowed: "not set").
    :param where: ``where(name)`` is the config key named in the error.
    :raises ConfigError: anything else (a bool, a float, a negative or non-digit string)."""
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(where(name), f"must be an integer >= {minimum} (a number or a decimal string), got {value!r}")
    return value
