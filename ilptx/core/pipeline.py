"""Composing middlewares into each account's four pipelines.

Every account gets its own middleware instances (see :class:`ilptx.interfaces.IMiddleware`)
and its own composed handlers, built once when the account is added, so the per-packet
path is plain calls: ``incoming(account, prepare)``, ``outgoing(account, prepare)``,
``incoming_money(account, amount)``, ``outgoing_money(account, amount)``.

Built-ins run in the reference connector's order
(:data:`ilptx.core.middleware.INCOMING_ORDER` / :data:`~ilptx.core.middleware.OUTGOING_ORDER`);
custom middlewares (config ``middlewares`` and the ``ilptx_middlewares`` hook) follow the
built-ins, in config order, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from zope.interface.verify import verifyObject

from ilptx.core.middleware import BUILTIN_NAMES, INCOMING_ORDER, OUTGOING_ORDER
from ilptx.interfaces import IMiddleware

__all__ = ["AccountPipelines", "compose", "make_middlewares", "build_pipelines", "Handler"]

#: ``handler(account, value) -> Deferred``
Handler = Callable


def _bind(handle: Callable, next_handler: Handler) -> Handler:
    def handler(account, value):
        return handle(account, value, next_handler)

    return handler


def compose(handles: Sequence[Callable], terminal: Handler) -> Handler:
    """Chain ``handles`` (each ``handle(account, value, next)``, outermost first) before ``terminal``.

    :returns: ``handler(account, value)``.
    """
    handler = terminal
    for handle in reversed(list(handles)):
        handler = _bind(handle, handler)
    return handler


@dataclass
class AccountPipelines:
    """One account's composed handlers and the middleware instances behind them."""

    incoming: Handler
    outgoing: Handler
    incoming_money: Handler
    #: ``handle(account, amount, next)`` steps of the outgoing money pipeline; composed per
    #: settlement (rare) because the terminal carries that settlement's idempotency key.
    outgoing_money: tuple
    middlewares: tuple

    def send_money(self, account, amount: int, terminal: Handler):
        """Run the outgoing money pipeline for one settlement ending in ``terminal``."""
        return compose(self.outgoing_money, terminal)(account, amount)

    def start(self) -> None:
        """Start every middleware's timers."""
        for middleware in self.middlewares:
            middleware.start()

    def stop(self) -> None:
        """Stop every middleware's timers."""
        for middleware in self.middlewares:
            middleware.stop()


def make_middlewares(account, factories: Mapping[str, Callable], disabled, custom: Sequence[tuple],
                     services) -> list:
    """Instantiate the middlewares of ``account``.

    :param factories: built-in name → ``create(options, *, account, services)``.
    :param disabled: names from ``disableMiddleware``.
    :param custom: ``(name, factory, options)`` for each custom middleware, in order.
    :returns: instances (built-ins first), each verified against ``IMiddleware``.
    """
    instances = []
    for name in BUILTIN_NAMES:
        if name in disabled:
            continue
        instance = factories[name]({}, account=account, services=services)
        if instance is not None:
            instances.append(instance)
    for name, factory, options in custom:
        if name in disabled:
            continue
        instance = factory(dict(options), account=account, services=services)
        if instance is not None:
            instance.name = getattr(instance, "name", name) or name
            instances.append(instance)
    for instance in instances:
        verifyObject(IMiddleware, instance)
    return instances


def _ordered(instances: Sequence, order: Sequence[str], attribute: str) -> list[Callable]:
    by_name = {m.name: m for m in instances}
    builtin = [getattr(by_name[name], attribute) for name in order
               if name in by_name and getattr(by_name[name], attribute) is not None]
    extra = [getattr(m, attribute) for m in instances
             if m.name not in BUILTIN_NAMES and getattr(m, attribute) is not None]
    return builtin + extra


def build_pipelines(instances: Sequence, *, incoming: Handler, outgoing: Handler,
                    incoming_money: Handler) -> AccountPipelines:
    """Compose one account's pipelines around the given terminal handlers."""
    return AccountPipelines(
        incoming=compose(_ordered(instances, INCOMING_ORDER, "incoming"), incoming),
        outgoing=compose(_ordered(instances, OUTGOING_ORDER, "outgoing"), outgoing),
        incoming_money=compose(_ordered(instances, INCOMING_ORDER, "incoming_money"), incoming_money),
        outgoing_money=tuple(_ordered(instances, OUTGOING_ORDER, "outgoing_money")),
        middlewares=tuple(instances),
    )
