"""BtpSession, the sans-IO BTP engine: frames in, frames out, a Clock for timeouts."""

from __future__ import annotations

import json

import pytest
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel

from ilptx.codec.btp import (
    Error,
    Message,
    ProtocolDataEntry,
    Response,
    Transfer,
    auth_message,
    decode_frame,
    encode_frame,
)
from ilptx.errors import PeerUnreachableError, UnreachableError
from ilptx.transport import btp_session
from ilptx.transport.btp_session import (
    BtpAuthError,
    BtpRemoteError,
    BtpSession,
    BtpTimeoutError,
    Role,
    State,
    btp_error_for_exception,
)

SECRET = b"s3cret"


class Owner:
    """A stand-in for the ledger plugin, recording what the session tells it."""

    def __init__(self):
        self.data_handler = None
        self.money_handler = None
        self.opened, self.auth_failed, self.closed = [], [], []
        self.verify = None  # verify_transfer's stand-in; None refuses as the plain plugins do

    def verify_transfer(self, transfer):
        if self.verify is None:
            raise btp_session.NotAcceptedError("unverifiable")
        return self.verify(transfer)

    def session_open(self, session):
        self.opened.append(session)

    def session_auth_failed(self, session, error):
        self.auth_failed.append(error)

    def session_closed(self, session, reason):
        self.closed.append(reason)


class Wire:
    """Records frames the session sends and close requests."""

    def __init__(self):
        self.sent, self.closes = [], []

    def send(self, data):
        self.sent.append(data)

    def close(self, code, reason):
        self.closes.append((code, reason))

    def frames(self):
        return [decode_frame(d) for d in self.sent]

    def last(self):
        return decode_frame(self.sent[-1])


def make(role=Role.SERVER, **kw):
    clock, owner, wire = Clock(), Owner(), Wire()
    clock.advance(1514764799.5)  # 2017-12-31T23:59:59.5Z
    if role is Role.SERVER:
        kw.setdefault("secret", SECRET)
    owner.events = []
    session = BtpSession(role=role, send=wire.send, close=wire.close, clock=clock, owner=owner,
                         account_id="alice", log=Logger(observer=owner.events.append), **kw)
    return session, clock, owner, wire


def open_server(**kw):
    session, clock, owner, wire = make(**kw)
    session.data_received(encode_frame(auth_message(7, SECRET.decode(), "alice")))
    wire.sent.clear()
    return session, clock, owner, wire


def ilp(rid, data=b"prepare"):
    return Message(rid, (ProtocolDataEntry("ilp", 0, data),))


def failure_of(d):
    failures = []
    d.addErrback(failures.append)
    assert failures, "expected the Deferred to have failed"
    return failures[0]


def result_of(d):
    results = []
    d.addCallback(results.append)
    assert results, "expected the Deferred to have fired"
    return results[0]


# -- server-side authentication ----------------------------------------------------------

def test_good_auth_gets_empty_response_and_opens():
    """A correct auth Message is answered by an empty Response with its request id."""
    session, clock, owner, wire = make()
    session.data_received(encode_frame(auth_message(7, "s3cret", "bob")))
    assert wire.frames() == [Response(7, ())]
    assert session.state is State.OPEN and owner.opened == [session] and session.username == "bob"


def test_bad_token_gets_f00_error_then_close():
    """A wrong token gets F00 NotAcceptedError 'invalid auth_token', then the socket is closed."""
    session, clock, owner, wire = make()
    session.data_received(encode_frame(auth_message(9, "wrong")))
    err = wire.last()
    assert (type(err), err.request_id, err.code, err.name, err.data) == (
        Error, 9, "F00", "NotAcceptedError", b"invalid auth_token")
    assert err.triggered_at == "20171231235959.500Z"
    assert wire.closes and owner.opened == [] and session.state is State.CLOSING


@pytest.mark.parametrize("frame, text", [
    (Transfer(3, 10), "First message sent over BTP connection must be auth packet"),
    (ilp(3), "Auth packet must have auth and auth_token subprotocols"),
    (Message(3, (ProtocolDataEntry("ilp", 0, b""), ProtocolDataEntry("auth_token", 1, b"s3cret"))),
     "First subprotocol must be auth"),
    (Message(3, (ProtocolDataEntry("auth", 0, b""), ProtocolDataEntry("auth_username", 1, b"a"))),
     "auth_token subprotocol is required"),
])
def test_non_auth_first_frame_is_refused_with_reference_text(frame, text):
    """Anything but a valid auth Message first gets F00 with the reference's wording, then close."""
    session, clock, owner, wire = make()
    session.data_received(encode_frame(frame))
    err = wire.last()
    assert (err.request_id, err.code, err.name, err.data.decode()) == (3, "F00", "NotAcceptedError", text)
    assert wire.closes and owner.opened == []


def test_unreadable_first_frame_closes_without_answer():
    """An undecodable first frame is not answered (no request to answer); the socket closes."""
    session, clock, owner, wire = make()
    session.data_received(b"\x06\x00\x00\x00\x01\x05garb")
    assert wire.sent == [] and wire.closes and owner.opened == []


def test_token_compared_with_hmac_compare_digest(monkeypatch):
    """The token check goes through hmac.compare_digest (constant time) with token and secret."""
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(btp_session.hmac, "compare_digest", spy)
    session, clock, owner, wire = make()
    session.data_received(encode_frame(auth_message(1, "guess")))
    assert calls == [(b"guess", SECRET)]


def test_auth_timeout_closes_silent_connection():
    """A connection that sends nothing is closed once auth_timeout has passed, not before."""
    session, clock, owner, wire = make(auth_timeout=35.0)
    clock.advance(34.9)
    assert wire.closes == []
    clock.advance(0.1)
    assert wire.closes and session.state is State.CLOSING


def test_auth_timer_cancelled_by_auth():
    """Authenticating in time leaves no auth timer behind."""
    session, clock, owner, wire = make(auth_timeout=35.0)
    session.data_received(encode_frame(auth_message(1, "s3cret")))
    clock.advance(100)
    assert wire.closes == [] and clock.getDelayedCalls() == []


# -- requests we send ----------------------------------------------------------------------

def test_request_round_trip():
    """A request goes out with a fresh id and its Deferred fires with the matching Response."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid, b"hello"))
    sent = wire.last()
    assert sent.protocol_data == (ProtocolDataEntry("ilp", 0, b"hello"),)
    reply = Response(sent.request_id, (ProtocolDataEntry("ilp", 0, b"fulfill"),))
    session.data_received(encode_frame(reply))
    assert result_of(d) == reply
    assert session.pending_count == 0 and clock.getDelayedCalls() == []


def test_error_answer_errbacks_with_reference_message():
    """A BTP Error answer errbacks with BtpRemoteError (F02) whose message is the reference's JSON."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    rid = wire.last().request_id
    session.data_received(encode_frame(Error(rid, "F00", "NotAcceptedError", "20180102030405.678Z",
                                             b'{"message":"nope"}')))
    f = failure_of(d)
    assert f.check(BtpRemoteError) and f.value.code == "F02"
    assert f.value.message == ('{"code":"F00","name":"NotAcceptedError","triggeredAt":"2018-01-02T03:04:05.678Z",'
                               '"data":"{\\"message\\":\\"nope\\"}","protocolData":[]}')
    assert f.value.btp_error.code == "F00"


def test_error_with_bad_time_renders_null_like_js():
    """An unparseable triggeredAt renders as null, as JSON.stringify(Invalid Date) does."""
    err = BtpRemoteError(Error(1, "T00", "UnreachableError", "garbage", b""))
    assert json.loads(err.message)["triggeredAt"] is None


def test_request_times_out_after_response_timeout():
    """No answer within 35 s errbacks with BtpTimeoutError '<id> timed out', not a moment before."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    rid = wire.last().request_id
    clock.advance(34.999)
    assert not d.called
    clock.advance(0.001)
    f = failure_of(d)
    assert f.check(BtpTimeoutError) and f.value.message == f"{rid} timed out"
    assert session.pending_count == 0


def test_cancel_forgets_request_and_ignores_late_answer():
    """Cancelling removes the pending request and its timer; a late Response is then ignored."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    rid = wire.last().request_id
    d.cancel()
    assert failure_of(d).check(CancelledError)
    assert session.pending_count == 0 and clock.getDelayedCalls() == []
    n = len(wire.sent)
    session.data_received(encode_frame(Response(rid, ())))
    assert len(wire.sent) == n and session.state is State.OPEN


def test_connection_lost_fails_pending_with_t01():
    """Losing the connection errbacks pending requests with PeerUnreachableError and tells the owner."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    session.connection_lost(None)
    assert failure_of(d).value.code == "T01"
    assert owner.closed == [None] and session.state is State.CLOSED
    assert result_of(session.when_closed()) is None


def test_close_fails_pending_at_once():
    """close() errbacks pending requests immediately (T01) and asks the transport to close."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    session.close(1000, "bye")
    assert failure_of(d).check(PeerUnreachableError)
    assert wire.closes == [(1000, "bye")]


def test_request_on_unopened_session_fails_t01():
    """A session that has not authenticated refuses requests with PeerUnreachableError."""
    session, clock, owner, wire = make()
    assert failure_of(session.request(lambda rid: ilp(rid))).check(PeerUnreachableError)
    assert wire.sent == []


def test_request_ids_never_collide_in_flight(monkeypatch):
    """A random id already in flight is drawn again."""
    draws = iter([5, 5, 5, 8])
    monkeypatch.setattr(btp_session.random, "getrandbits", lambda bits: next(draws))
    session, clock, owner, wire = open_server()
    session.request(lambda rid: ilp(rid))
    session.request(lambda rid: ilp(rid))
    assert [f.request_id for f in wire.frames()] == [5, 8]


def test_unexpected_answer_is_ignored():
    """A Response to no request of ours gets no answer (RFC 23 feedback-loop rule)."""
    session, clock, owner, wire = open_server()
    session.data_received(encode_frame(Response(1234, ())))
    session.data_received(encode_frame(Error(1235, "F00", "NotAcceptedError", "20180101000000.000Z", b"")))
    assert wire.sent == [] and session.state is State.OPEN


# -- requests we answer ----------------------------------------------------------------------

def test_message_with_ilp_goes_to_data_handler():
    """The ilp entry goes to the data handler; its bytes come back as the Response's ilp entry."""
    session, clock, owner, wire = open_server()
    seen = []
    owner.data_handler = lambda data: seen.append(data) or b"fulfill"
    session.data_received(encode_frame(ilp(41, b"prepare")))
    assert seen == [b"prepare"]
    assert wire.last() == Response(41, (ProtocolDataEntry("ilp", 0, b"fulfill"),))


def test_deferred_data_handler_answers_when_it_fires():
    """A handler returning a Deferred is answered when the Deferred fires."""
    session, clock, owner, wire = open_server()
    pending = Deferred()
    owner.data_handler = lambda data: pending
    session.data_received(encode_frame(ilp(42)))
    assert wire.sent == []
    pending.callback(b"reject")
    assert wire.last() == Response(42, (ProtocolDataEntry("ilp", 0, b"reject"),))


def test_handler_exception_becomes_f00_error_with_json_message():
    """A failing handler gives F00 NotAcceptedError with data {"message": ...} and the session stays open."""
    session, clock, owner, wire = open_server()
    owner.data_handler = lambda data: fail(RuntimeError("boom"))
    session.data_received(encode_frame(ilp(43)))
    err = wire.last()
    assert (err.request_id, err.code, err.name, err.data) == (43, "F00", "NotAcceptedError", b'{"message":"boom"}')
    assert session.state is State.OPEN
    assert [(e["account"], e["log_level"]) for e in owner.events if "log_failure" in e] == [("alice", LogLevel.error)]


def test_handler_exception_named_like_btp_error_keeps_its_code():
    """An exception class named after a BTP error (e.g. InsufficientBalanceError) keeps its code."""
    class InsufficientBalanceError(Exception):
        pass

    assert btp_error_for_exception(InsufficientBalanceError("low")) == (
        "F08", "InsufficientBalanceError", b'{"message":"low"}')


def test_no_data_handler_gives_error():
    """Without a data handler a Message gets F00 'no request handler registered'."""
    session, clock, owner, wire = open_server()
    session.data_received(encode_frame(ilp(44)))
    err = wire.last()
    assert (err.code, json.loads(err.data)) == ("F00", {"message": "no request handler registered"})


def test_message_without_ilp_gets_empty_response():
    """A Message of another sub-protocol is acknowledged with an empty Response; the handler is not called."""
    session, clock, owner, wire = open_server()
    owner.data_handler = lambda data: pytest.fail("handler must not run")
    session.data_received(encode_frame(Message(45, (ProtocolDataEntry("balance", 2, b"{}"),))))
    assert wire.last() == Response(45, ())


def test_verified_transfer_amount_goes_to_money_handler():
    """A Transfer's verified amount (not the amount it claims) goes to the money handler; an empty Response follows."""
    session, clock, owner, wire = open_server()
    amounts, seen = [], []
    owner.verify = lambda transfer: seen.append(transfer) or succeed(7)
    owner.money_handler = lambda amount: amounts.append(amount) or succeed(None)
    transfer = Transfer(46, 2**64 - 1, (ProtocolDataEntry("claim", 0, b"sig"),))
    session.data_received(encode_frame(transfer))
    assert seen == [transfer] and amounts == [7] and wire.last() == Response(46, ())


def test_unverified_transfer_is_f00_and_never_reaches_money_handler():
    """A Transfer the owner does not verify gets F00 NotAcceptedError with its message, logged as a warning."""
    session, clock, owner, wire = open_server()
    owner.money_handler = lambda amount: pytest.fail("no money may move")
    session.data_received(encode_frame(Transfer(46, 2**64 - 1)))
    error = wire.last()
    assert (error.request_id, error.code, error.name) == (46, "F00", "NotAcceptedError")
    assert json.loads(error.data) == {"message": "unverifiable"}
    assert [e for e in owner.events if "log_failure" in e] == []
    assert any(e["log_level"] is LogLevel.warn and e.get("why") == "unverifiable" for e in owner.events)


@pytest.mark.parametrize("verified", [-1, "5", 5.0, True, None])
def test_verifier_must_return_an_amount(verified):
    """verify_transfer returning anything but an int >= 0 is answered F00 and moves no money."""
    session, clock, owner, wire = open_server()
    owner.verify = lambda transfer: verified
    owner.money_handler = lambda amount: pytest.fail("no money may move")
    session.data_received(encode_frame(Transfer(46, 5)))
    assert (wire.last().request_id, wire.last().code) == (46, "F00")


def test_transfer_without_money_handler_gives_error():
    """Without a money handler a Transfer gets a BTP Error F00."""
    session, clock, owner, wire = open_server()
    session.data_received(encode_frame(Transfer(47, 5)))
    assert (wire.last().request_id, wire.last().code) == (47, "F00")


def test_answer_after_close_is_dropped():
    """A handler that finishes after the session closed sends nothing."""
    session, clock, owner, wire = open_server()
    pending = Deferred()
    owner.data_handler = lambda data: pending
    session.data_received(encode_frame(ilp(48)))
    session.connection_lost(None)
    pending.callback(b"late")
    assert wire.sent == []


# -- unreadable frames ---------------------------------------------------------------------

def test_malformed_request_gets_f01_and_session_stays_up():
    """An undecodable request gets F01 InvalidFieldsError with its request id; the session stays open."""
    session, clock, owner, wire = open_server()
    owner.data_handler = lambda data: b"ok"
    session.data_received(b"\x06\x00\x00\x01\x00\x03\x01\x01")  # Message whose entry is cut short
    err = wire.last()
    assert (type(err), err.request_id, err.code, err.name) == (Error, 256, "F01", "InvalidFieldsError")
    assert "message" in json.loads(err.data)
    session.data_received(encode_frame(ilp(49)))
    assert wire.last() == Response(49, (ProtocolDataEntry("ilp", 0, b"ok"),))


def test_tiny_garbage_gets_error_with_request_id_zero():
    """Fewer than five bytes: the Error goes out with request id 0."""
    session, clock, owner, wire = open_server()
    session.data_received(b"\x07\x01")
    assert (wire.last().request_id, wire.last().code) == (0, "F01")


def test_malformed_answer_is_not_answered_and_fails_its_request():
    """An undecodable Response is never answered; the request it answers fails at once."""
    session, clock, owner, wire = open_server()
    d = session.request(lambda rid: ilp(rid))
    rid = wire.last().request_id
    n = len(wire.sent)
    session.data_received(b"\x01" + rid.to_bytes(4, "big") + b"\x05\x01")
    assert len(wire.sent) == n
    assert failure_of(d).check(UnreachableError) and session.pending_count == 0


# -- client-side authentication ------------------------------------------------------------

def test_client_sends_auth_message_and_opens_on_response():
    """start_auth sends auth/auth_username/auth_token (+ extra entries); a Response opens the session."""
    session, clock, owner, wire = make(role=Role.CLIENT)
    extra = (ProtocolDataEntry("flag", 1, b"x"),)
    session.start_auth("alice", "tok", extra)
    sent = wire.last()
    assert [(e.protocol_name, e.content_type, e.data) for e in sent.protocol_data] == [
        ("auth", 0, b""), ("auth_username", 1, b"alice"), ("auth_token", 1, b"tok"), ("flag", 1, b"x")]
    assert session.state is State.AUTHENTICATING and owner.opened == []
    session.data_received(encode_frame(Response(sent.request_id, ())))
    assert session.state is State.OPEN and owner.opened == [session]


def test_client_auth_refused_reports_and_closes():
    """An Error answer to our auth tells the owner (BtpAuthError) and closes the connection."""
    session, clock, owner, wire = make(role=Role.CLIENT)
    session.start_auth("", "bad")
    rid = wire.last().request_id
    session.data_received(encode_frame(Error(rid, "F00", "NotAcceptedError", "20180101000000.000Z",
                                             b"invalid auth_token")))
    assert len(owner.auth_failed) == 1 and isinstance(owner.auth_failed[0], BtpAuthError)
    assert "invalid auth_token" in str(owner.auth_failed[0])
    assert wire.closes and owner.opened == []


def test_client_auth_unanswered_closes_after_timeout():
    """No answer to our auth Message within the response timeout closes the connection."""
    session, clock, owner, wire = make(role=Role.CLIENT, response_timeout=35.0)
    session.start_auth("", "tok")
    clock.advance(35)
    assert wire.closes and owner.opened == [] and owner.auth_failed == []
