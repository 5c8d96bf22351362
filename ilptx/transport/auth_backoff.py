"""Per-source backoff on failed BTP logins: wrong tokens cost the guesser time, not us.

A BTP listener (the ``btp`` plugin's, or mini-accounts' for all its clients) shares one
:class:`AuthBackoff`. Every auth Message whose credentials are refused (a wrong
``auth_token``: :class:`~ilptx.transport.btp_session.AuthRefused` from the authenticator) is
a *failure* of its **source** — the remote IP address, and for mini-accounts the client name
too (one key per IP and name, so that a guesser of one name does not slow the other clients
that share a host, as moneyd's do). After the ``n``-th failure in a row the next check of
the same source waits ``min(first_delay · 2**(n-1), max_delay)`` seconds (0.1 s, 0.2 s, …
capped at 10 s), and checks of one source run one at a time, spaced that far apart.

What a waiting attempt gets: nothing at first. Its auth Message is simply not checked until
its turn; then it is checked and answered exactly as the reference ``ilp-plugin-btp`` 1.5.0
answers (an empty Response, or BTP Error ``F00 NotAcceptedError`` with ``invalid auth_token``
and the close). So a legitimate client that shares a source with a guesser is only delayed,
never refused for it, and the wire stays the reference's. Only when a source already has
attempts queued for more than ``max_delay`` ahead is a further one answered at once, without
checking its token, with ``F00 NotAcceptedError`` ``too many failed logins from <ip>; try
again later`` and closed: the queue of one source stays short.

What does not slow anybody down: a source's first attempt and every attempt after its last
success (a success forgets the source); other sources; malformed auth Messages (answered at
once: they prove nothing about a token). A source with no failure for ``forget_after``
seconds starts over. The table holds at most ``max_sources`` sources; the one whose last
failure is oldest is forgotten first. Time comes from the injected clock.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable, Optional

__all__ = ["AuthBackoff"]


class _Source:
    __slots__ = ("failures", "next_check", "last_failure")

    def __init__(self, now: float) -> None:
        self.failures = 0
        self.next_check = now
        self.last_failure = now


class AuthBackoff:
    """The failed-login table of one listener.

    :param clock: :class:`~twisted.internet.interfaces.IReactorTime`.
    :param first_delay: seconds a source waits after its first failure.
    :param max_delay: the longest wait between two checks of one source (seconds).
    :param forget_after: seconds without a failure after which a source starts over.
    :param max_sources: how many sources the table holds (oldest failure forgotten first).
    """

    def __init__(self, clock, *, first_delay: float = 0.1, max_delay: float = 10.0,
                 forget_after: float = 600.0, max_sources: int = 10000) -> None:
        self._clock = clock
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_sources = max_sources
        self._sources: OrderedDict[Hashable, _Source] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sources)

    @staticmethod
    def key(host: str, name: Optional[str] = None) -> Hashable:
        """:returns: the table key of a login from ``host`` (an IP address), for the client
        ``name`` when the listener serves several (mini-accounts)."""
        return host if name is None else (host, name)

    def _step(self, failures: int) -> float:
        return min(self.first_delay * 2 ** min(failures - 1, 64), self.max_delay)

    def _live(self, key: Hashable, now: float) -> Optional[_Source]:
        source = self._sources.get(key)
        if source is not None and now - source.last_failure > self.forget_after:
            del self._sources[key]
            return None
        return source

    def wait(self, key: Hashable) -> Optional[float]:
        """Take the next turn of ``key`` to have its credentials checked.

        :returns: seconds to wait before checking (0: at once), or ``None`` when the source's
            queue already reaches ``max_delay`` ahead: refuse this attempt unchecked.
        """
        now = self._clock.seconds()
        source = self._live(key, now)
        if source is None or not source.failures:
            return 0.0
        delay = max(0.0, source.next_check - now)
        if delay > self.max_delay:
            return None
        source.next_check = now + delay + self._step(source.failures)
        return delay

    def failed(self, key: Hashable) -> None:
        """The credentials of ``key`` were refused: lengthen its wait."""
        now = self._clock.seconds()
        source = self._live(key, now)
        if source is None:
            source = self._sources[key] = _Source(now)
            while len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(key)
        source.failures += 1
        source.last_failure = now
        source.next_check = max(source.next_check, now + self._step(source.failures))

    def succeeded(self, key: Hashable) -> None:
        """The credentials of ``key`` were accepted: forget its failures."""
        self._sources.pop(key, None)
