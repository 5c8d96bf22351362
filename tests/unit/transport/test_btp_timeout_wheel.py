"""BTP response timeouts of requests in flight share the clock's one timer wheel."""

from __future__ import annotations

from test_btp_session import failure_of, ilp, open_server  # the session harness

from ilptx.transport.btp_session import BtpTimeoutError


def test_requests_in_flight_arm_no_call_later_each():
    """100 requests waiting for answers: one wheel callLater, not 100; each times out after exactly 35 s."""
    session, clock, owner, wire = open_server()
    before = len(clock.getDelayedCalls())
    requests = [session.request(lambda rid: ilp(rid)) for _ in range(100)]
    assert len(clock.getDelayedCalls()) == before + 1
    clock.advance(34.999)
    assert not any(d.called for d in requests)
    clock.advance(0.001)
    assert all(failure_of(d).check(BtpTimeoutError) for d in requests)
    assert session.pending_count == 0
