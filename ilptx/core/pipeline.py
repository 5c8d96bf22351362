"""Composing middlewares into a packet pipeline.

A middleware (:class:`ilptx.interfaces.IMiddleware`) has ``handle(account, prepare,
next_handler)`` and returns ``Deferred[Fulfill | Reject]`` (or raises an
:class:`ilptx.errors.IlpError`). :func:`compose` binds a list of them, outermost first,
around a terminal handler once at start-up, so the per-packet path is plain calls.
"""

from __future__ import annotations

from typing import Callable, Sequence

__all__ = ["compose", "Handler"]

#: ``handler(account, prepare) -> Deferred[Fulfill | Reject]``
Handler = Callable


def _bind(handle: Callable, next_handler: Handler) -> Handler:
    def handler(account, prepare):
        return handle(account, prepare, next_handler)

    handler.__qualname__ = f"pipeline<{getattr(handle, '__self__', handle)!r}>"
    return handler


def compose(middlewares: Sequence, terminal: Handler) -> Handler:
    """Chain ``middlewares`` (outermost first) in front of ``terminal``.

    :param middlewares: objects providing :class:`~ilptx.interfaces.IMiddleware`.
    :param terminal: ``handler(account, prepare)`` called by the innermost middleware.
    :returns: the composed ``handler(account, prepare)``.
    """
    handler = terminal
    for middleware in reversed(list(middlewares)):
        handler = _bind(middleware.handle, handler)
    return handler
