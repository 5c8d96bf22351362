"""A steady load for the dashboard's browser tests: run as ``python dashboard_loadgen.py
SENDER_PORT RECEIVER_PORT ADDRESS [RATE]`` against a running connector.

Two real :class:`~ilptx.plugins.btp.BtpPlugin` clients dial the connector's BTP listeners of
child accounts ``alice`` (secret ``alice``, the sender) and ``bob`` (secret ``bob``, which fulfills
every Prepare, except to ``ADDRESS.bob.full``, which it rejects with ``T04 exceeded maximum
balance.``: the connector's ``alert`` middleware turns that into an alert). First alice sends
one Prepare to ``ADDRESS.bob.full`` and waits for its Reject; then it prints ``connected``, and
every tenth of a second sends RATE/10 Prepares of 1 unit: nine in ten to ``ADDRESS.bob.x``
(fulfilled) and one in ten to ``ADDRESS.nobody`` (no route: the connector rejects it with F02).
It prints one line per second with the counts, and runs until SIGTERM.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timedelta, timezone

from twisted.internet import reactor, task
from twisted.internet.defer import DeferredList, inlineCallbacks

from ilptx.codec.ilp import ErrorCode, Fulfill, Prepare, Reject, decode_prepare, decode_response, encode_packet
from ilptx.plugins.btp import BtpPlugin
from ilptx.testing import fulfilling_handler

FULFILLMENT = hashlib.sha256(b"ilptx dashboard load").digest()
CONDITION = hashlib.sha256(FULFILLMENT).digest()


@inlineCallbacks
def main(sender_port: int, receiver_port: int, address: str, rate: int):
    bob = BtpPlugin({"server": f"btp+ws://:bob@127.0.0.1:{receiver_port}"}, account_id="bob", reactor=reactor)
    fulfill = fulfilling_handler([FULFILLMENT], address=f"{address}.bob")

    def receive(data: bytes) -> bytes:
        if decode_prepare(data).destination == f"{address}.bob.full":
            return encode_packet(Reject(ErrorCode.T04_INSUFFICIENT_LIQUIDITY, f"{address}.bob",
                                        "exceeded maximum balance.", b""))
        return fulfill(data)

    bob.register_data_handler(receive)
    alice = BtpPlugin({"server": f"btp+ws://:alice@127.0.0.1:{sender_port}"}, account_id="alice", reactor=reactor)
    yield DeferredList([bob.connect(), alice.connect()], fireOnOneErrback=True, consumeErrors=True)
    full = Prepare(1, datetime.now(timezone.utc) + timedelta(seconds=10), CONDITION, f"{address}.bob.full", b"")
    yield alice.send_data(encode_packet(full))
    print("connected", flush=True)
    counts = {"sent": 0, "fulfilled": 0, "rejected": 0}

    def answered(raw: bytes) -> None:
        counts["fulfilled" if isinstance(decode_response(raw), Fulfill) else "rejected"] += 1

    def burst() -> None:
        for _ in range(max(1, rate // 10)):
            counts["sent"] += 1
            destination = f"{address}.nobody" if counts["sent"] % 10 == 0 else f"{address}.bob.x"
            prepare = Prepare(1, datetime.now(timezone.utc) + timedelta(seconds=10), CONDITION, destination,
                              counts["sent"].to_bytes(8, "big"))
            alice.send_data(encode_packet(prepare)).addCallbacks(answered, lambda f: None)

    task.LoopingCall(burst).start(0.1)
    task.LoopingCall(lambda: print(counts, flush=True)).start(1.0)


if __name__ == "__main__":
    sender, receiver, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    main(sender, receiver, prefix, int(sys.argv[4]) if len(sys.argv) > 4 else 100).addErrback(
        lambda failure: (print(f"loadgen: {failure.getErrorMessage()}", flush=True), reactor.stop()))
    reactor.run()
