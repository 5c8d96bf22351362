"""Backpressure against a real ``twistd -n ilpconnector``: a BTP peer that never reads (a ping
flood, or Prepares sent to it) must not make the connector buffer without bound; it is
dropped, and the other accounts keep working (issue 8, defect 5)."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import time
from datetime import datetime, timedelta, timezone

import pytest

from ilptx.codec.btp import (
    CONTENT_OCTET_STREAM,
    Message,
    ProtocolDataEntry,
    auth_message,
    decode_frame,
    encode_frame,
    find_entry,
)
from ilptx.codec.ildcp import request_prepare
from ilptx.codec.ilp import Fulfill, Prepare, Reject, decode_response, encode_packet
from ilptx.testing_tls import make_test_pki
from integration.procs import free_ports, wait_for_port
from integration.raw_ws import OP_PING, RawWebSocket, frame

pytestmark = pytest.mark.integration

MAX_UNSENT = 256 * 1024
MB = 1 << 20


def rss(pid: int) -> int:
    """:returns: the resident set size of process ``pid`` in bytes (``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def start(processes, tmp_path, ping_interval_ms: int, slow_tls=None):
    """Accounts ``slow`` (served over wss with ``slow_tls``, a TestPki) and ``fast``."""
    ports = dict(zip(("slow", "fast"), free_ports(2), strict=True))
    options = {"maxUnsentBytes": MAX_UNSENT, "pingInterval": ping_interval_ms, "pingTimeout": 3000}
    accounts = {
        name: {"relation": "child", "plugin": "btp", "assetCode": "USD", "assetScale": 9,
               "options": {"listener": {"host": "127.0.0.1", "port": port, "secret": f"{name}-secret"},
                           **options}}
        for name, port in ports.items()
    }
    if slow_tls is not None:
        accounts["slow"]["options"]["listener"].update(cert=slow_tls.server_cert, key=slow_tls.server_key)
    path = tmp_path / "connector.json"
    path.write_text(json.dumps({"ilpAddress": "test.bp", "spread": 0, "accounts": accounts}))
    connector = processes.connector(["--config", str(path)])
    for port in ports.values():
        wait_for_port(port, connector)
    return connector, ports


def login(port: int, secret: str, **kw) -> RawWebSocket:
    ws = RawWebSocket(port, **kw)
    ws.send_binary(encode_frame(auth_message(1, secret)))
    answer = decode_frame(ws.receive_binary())
    assert type(answer).__name__ == "Response", answer
    return ws


def ilp_message(rid: int, packet: bytes) -> bytes:
    return encode_frame(Message(rid, (ProtocolDataEntry("ilp", CONTENT_OCTET_STREAM, packet),)))


def ilp_answer(ws: RawWebSocket):
    frame_ = decode_frame(ws.receive_binary())
    return frame_.request_id, decode_response(find_entry(frame_.protocol_data, "ilp").data)


def assert_account_works(port: int, secret: str) -> None:
    """A fresh login on the account gets its IL-DCP Fulfill at once."""
    ws = login(port, secret, timeout=5)
    expiry = datetime.now(timezone.utc) + timedelta(seconds=10)
    ws.send_binary(ilp_message(7, encode_packet(request_prepare(expiry))))
    rid, answer = ilp_answer(ws)
    assert rid == 7 and type(answer) is Fulfill
    ws.close()


def test_ping_flood_that_is_never_read_stays_bounded_and_is_dropped(processes, tmp_path):
    """A peer flooding pings, never reading the pongs: not read any more, RSS stays flat, dropped."""
    connector, ports = start(processes, tmp_path, ping_interval_ms=3000)  # a stuck peer misses the pings
    pid = connector.proc.pid
    before = rss(pid)
    ws = RawWebSocket(ports["slow"])
    ws.sock.setblocking(False)
    chunk = frame(OP_PING, b"p" * 125) * 512  # 67 KB of pings, each asking for a 127-byte pong
    sent, peak, dropped, pending = 0, before, False, b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            pending = pending or chunk
            n = ws.sock.send(pending)  # may take part of it: keep the frames whole
            pending, sent = pending[n:], sent + n
        except BlockingIOError:
            time.sleep(0.01)
        except (ConnectionResetError, BrokenPipeError):
            dropped = True
            break
        peak = max(peak, rss(pid))
    ws.close()
    assert dropped, f"still connected after sending {sent} bytes of pings\n{connector.output()}"
    assert peak - before < 8 * MB, f"RSS grew by {(peak - before) / MB:.1f} MB ({sent} bytes of pings sent)"
    assert_account_works(ports["fast"], "fast-secret")
    assert_account_works(ports["slow"], "slow-secret")


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_prepares_to_a_peer_that_never_reads_drop_it_and_fail_t01(processes, tmp_path, scheme):
    """8 KB Prepares routed to a peer that never reads: it is dropped past maxUnsentBytes, they are rejected at once."""
    pki = make_test_pki(tmp_path / "pki") if scheme == "wss" else None
    connector, ports = start(processes, tmp_path, ping_interval_ms=0, slow_tls=pki)  # only the cap can drop it
    pid = connector.proc.pid
    tls = ssl.create_default_context(cafile=pki.ca_cert) if pki is not None else None
    reader = login(ports["slow"], "slow-secret", receive_buffer=4096, tls=tls)  # the kernel holds little for it
    sender = login(ports["fast"], "fast-secret", timeout=60)
    before = rss(pid)
    fulfillment = b"\x11" * 32
    condition = hashlib.sha256(fulfillment).digest()
    expiry = datetime.now(timezone.utc) + timedelta(seconds=180)
    count = 1200  # ~10 MB of Prepares for the peer that does not read
    started = time.monotonic()
    for rid in range(1, count + 1):
        sender.send_binary(ilp_message(rid, encode_packet(
            Prepare(1, expiry, condition, "test.bp.slow.x", bytes(8 * 1024)))))
    answers = {}
    while len(answers) < count:
        rid, answer = ilp_answer(sender)  # the 60 s socket timeout: long before the 180 s expiry
        answers[rid] = answer
    elapsed = time.monotonic() - started
    peak = rss(pid)
    assert all(type(a) is Reject for a in answers.values())
    codes = {a.code for a in answers.values()}
    assert codes == {"T01"}, codes  # as for any closed connection
    assert elapsed < 90, elapsed  # rejected as the link dropped, not held until the 180 s expiry (a loaded machine is slow)
    out = connector.full_output()
    dropped = re.findall(r"slow: dropping the BTP connection .* (\d+) bytes queued beyond", out)
    assert len(dropped) == 1 and int(dropped[0]) <= MAX_UNSENT, connector.output()  # the cap held
    with pytest.raises((ConnectionError, OSError)):
        reader.sock.settimeout(5)
        while True:
            reader.receive()
    assert peak - before < 48 * MB, f"RSS grew by {(peak - before) / MB:.1f} MB"
    assert_account_works(ports["fast"], "fast-secret")
    sender.close()
