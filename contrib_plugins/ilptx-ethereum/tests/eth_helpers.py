"""Small helpers the real-reactor tests share: free ports, and waiting for a condition (only tests of real
processes and sockets wait)."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater


def free_ports(count: int = 1) -> list:
    """:returns: ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


@pytest_twisted.inlineCallbacks
def until(predicate, what: str, timeout: float = 30.0):
    """Poll ``predicate()`` (a truth value or a Deferred of one) every 50 ms on the real reactor.

    :raises AssertionError: not true within ``timeout`` seconds (naming ``what``)."""
    for _ in range(int(timeout / 0.05)):
        if (yield maybeDeferred(predicate)):
            return
        yield deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
