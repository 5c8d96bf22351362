"""The failed-login backoff: AuthBackoff's table on a task.Clock, and BtpSession's server-side
authentication through it (a wrong token slows the next check of its source only)."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ilptx.codec.btp import Error, Response, auth_message, decode_frame, encode_frame
from ilptx.transport.auth_backoff import AuthBackoff
from ilptx.transport.btp_session import AuthRefused, BtpSession, Role, State

SECRET = b"right"


def backoff(**kw):
    clock = Clock()
    clock.advance(1000)
    return AuthBackoff(clock, **kw), clock


# -- the table --------------------------------------------------------------------------

def test_first_attempt_and_a_clean_source_are_checked_at_once():
    """A source without failures never waits."""
    table, _ = backoff()
    assert table.wait("10.0.0.1") == 0
    assert table.wait("10.0.0.1") == 0


def test_each_failure_doubles_the_wait_up_to_the_cap():
    """After the n-th failure in a row the next check waits 0.1 s · 2**(n-1), at most max_delay."""
    table, clock = backoff(first_delay=0.1, max_delay=1.0)
    waits = []
    for _ in range(6):
        table.failed("ip")
        waits.append(round(table.wait("ip"), 6))
        clock.advance(waits[-1])
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_success_clears_the_source_and_other_sources_are_unaffected():
    """succeeded() forgets a source; a failing source never delays another."""
    table, _ = backoff()
    for _ in range(5):
        table.failed("guesser")
    assert table.wait("other") == 0
    table.succeeded("guesser")
    assert table.wait("guesser") == 0 and len(table) == 0


def test_concurrent_attempts_of_one_source_are_spaced_and_the_queue_is_bounded():
    """Attempts queued at once wait one step more each; past max_delay ahead they are refused (None)."""
    table, _ = backoff(first_delay=1.0, max_delay=3.0)
    table.failed("ip")
    assert [table.wait("ip") for _ in range(4)] == [1.0, 2.0, 3.0, None]


def test_table_is_bounded_and_forgets_the_oldest_failure_first():
    """At most max_sources sources are kept; the one whose last failure is oldest goes first."""
    table, clock = backoff(max_sources=3)
    for ip in ("a", "b", "c"):
        table.failed(ip)
        clock.advance(1)
    table.failed("a")  # refreshes a
    table.failed("d")
    assert len(table) == 3
    assert table.wait("b") == 0  # forgotten
    assert table.wait("a") > 0 and table.wait("d") > 0


def test_a_quiet_source_starts_over():
    """No failure for forget_after seconds: the source is checked at once and its count restarts."""
    table, clock = backoff(forget_after=60)
    for _ in range(5):
        table.failed("ip")
    clock.advance(61)
    assert table.wait("ip") == 0
    table.failed("ip")
    assert table.wait("ip") == pytest.approx(0.1)


def test_key_is_the_source_or_the_source_and_name():
    """key() gives the IP alone, or (IP, name) for listeners with one account per user."""
    assert AuthBackoff.key("1.2.3.4") == "1.2.3.4"
    assert AuthBackoff.key("1.2.3.4", "alice") == ("1.2.3.4", "alice")


# -- through BtpSession -----------------------------------------------------------------

class Owner:
    """Records which sessions opened."""

    data_handler = money_handler = None

    def __init__(self):
        self.opened = []

    def session_open(self, session):
        self.opened.append(session)

    def session_closed(self, session, reason):
        pass


class Login:
    """One server-role session on a shared clock and backoff, with what it sent."""

    def __init__(self, clock, table, source, **kw):
        self.sent, self.closes, self.owner = [], [], Owner()
        kw.setdefault("secret", SECRET)
        self.session = BtpSession(role=Role.SERVER, send=self.sent.append,
                                  close=lambda code, reason: self.closes.append(code), clock=clock,
                                  owner=self.owner, auth_backoff=table, source=source, **kw)

    def auth(self, token: str, username: str = ""):
        self.session.data_received(encode_frame(auth_message(1, token, username)))
        return self

    def answer(self):
        return decode_frame(self.sent[-1]) if self.sent else None


def test_wrong_token_delays_the_next_check_from_that_source_only():
    """After a wrong token the same IP's next login is answered only after the backoff; another IP's at once."""
    table, clock = backoff()
    first = Login(clock, table, "10.0.0.1").auth("wrong")
    assert type(first.answer()) is Error and first.answer().data == b"invalid auth_token" and first.closes
    again = Login(clock, table, "10.0.0.1").auth("right")
    other = Login(clock, table, "10.0.0.2").auth("right")
    assert type(other.answer()) is Response and other.owner.opened
    assert again.answer() is None and again.session.state is State.CHECKING_AUTH
    clock.advance(0.099)
    assert again.answer() is None
    clock.advance(0.001)
    assert type(again.answer()) is Response and again.owner.opened  # a success clears the source
    assert type(Login(clock, table, "10.0.0.1").auth("wrong").answer()) is Error  # checked at once again


def test_a_source_with_its_queue_full_is_refused_unchecked():
    """Past max_delay of queued attempts a login is answered at once with F00 'too many failed logins'."""
    table, clock = backoff(first_delay=5.0, max_delay=5.0)
    Login(clock, table, "10.0.0.9").auth("wrong")
    queued = Login(clock, table, "10.0.0.9").auth("right")
    refused = Login(clock, table, "10.0.0.9").auth("right")
    assert queued.answer() is None
    answer = refused.answer()
    assert type(answer) is Error and answer.code == "F00" and b"too many failed logins from 10.0.0.9" in answer.data
    assert refused.closes


def test_closing_while_waiting_cancels_the_check():
    """A connection that goes away during its backoff is never checked or answered."""
    table, clock = backoff()
    Login(clock, table, "ip").auth("wrong")
    waiting = Login(clock, table, "ip").auth("right")
    waiting.session.connection_lost(None)
    clock.advance(10)
    assert waiting.answer() is None and not waiting.owner.opened and clock.getDelayedCalls() == []


def test_authenticator_names_the_user_and_may_answer_later():
    """A custom authenticator's Deferred result becomes the username; frames during the check are dropped."""
    table, clock = backoff()
    checks = []

    def authenticate(username, token):
        checks.append(Deferred())
        return checks[-1]

    login = Login(clock, table, "ip", secret=None, authenticate=authenticate).auth("t", "bob")
    login.session.data_received(b"\x06\x00\x00\x00\x02\x01\x00")  # a request before the answer: dropped
    assert login.answer() is None
    checks[0].callback("client-bob")
    assert type(login.answer()) is Response and login.session.username == "client-bob" and len(login.sent) == 1


def test_backoff_by_name_keeps_other_names_of_one_host_fast():
    """With auth_backoff_by_name, a wrong token for one name does not slow another name from the same IP."""
    table, clock = backoff()

    def authenticate(username, token):
        if token != b"right":
            raise AuthRefused(f"incorrect token for account. account={username}")
        return username

    kw = dict(secret=None, authenticate=authenticate, auth_backoff_by_name=True)
    Login(clock, table, "127.0.0.1", **kw).auth("wrong", "alice")
    bob = Login(clock, table, "127.0.0.1", **kw).auth("right", "bob")
    alice = Login(clock, table, "127.0.0.1", **kw).auth("right", "alice")
    assert type(bob.answer()) is Response
    assert alice.answer() is None
