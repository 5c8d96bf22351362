"""expire: the R00 deadlines of Prepares in flight share the clock's one timer wheel."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from test_middlewares import Net  # the composition-root harness of the middleware tests


def test_prepares_in_flight_arm_no_call_later_each():
    """50 Prepares held by the next hop: one wheel callLater, not 50; all get R00 at their expiry."""
    net = Net()
    net.clients["bob"].deregister_data_handler()
    net.clients["bob"].register_data_handler(lambda data: Deferred())
    before = len(net.clock.getDelayedCalls())
    out = []
    for i in range(50):
        net.send(net.prepare(data=b"%d" % i, expires_in=5)).addCallback(out.append)
    assert len(net.clock.getDelayedCalls()) == before + 1
    net.clock.advance(3.999)  # the outgoing expiry is 1 s (minMessageWindow) before the incoming one
    assert out == []
    net.clock.advance(0.001)
    assert [reject.code for reject in out] == ["R00"] * 50
    assert len(net.clock.getDelayedCalls()) == before
